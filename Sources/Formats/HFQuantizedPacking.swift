// How GPTQ and AWQ checkpoints pack integer codes into int32 tensors. These are facts of
// the formats (the layouts AutoGPTQ/GPTQModel and AutoAWQ write and transformers, vLLM and
// their kernels read); the code is this project's own.

import Quantization

/// Packing and unpacking of the int32 tensors of GPTQ and AWQ checkpoints.
///
/// **GPTQ** (`qweight` `[in·bits/32, out]`, `qzeros` `[groups, out·bits/32]`): values are
/// laid out as one continuous little-endian bit stream along the packed dimension — value
/// `k` occupies stream bits `k·bits ..< (k+1)·bits`, stream bit `s` being bit `s % 32` of
/// word `s / 32`. For 2, 4 and 8 bits that is `32/bits` values per word, lowest bits first;
/// for 3 bits 32 values fill 3 words and values 10 and 21 straddle word boundaries.
/// `qweight` packs along the input dimension (column `o` of `qweight` holds output row `o`
/// of the weight), `qzeros` along the output dimension. Both dimensions must be multiples
/// of 32, as AutoGPTQ's shapes (`in // 32 * bits`) assume.
///
/// **AWQ GEMM** (`qweight` `[in, out/8]`, `qzeros` `[groups, out/8]`, 4 bits only): packs
/// along the output dimension, 8 values per word, interleaved: nibble `k` (bits
/// `4k ..< 4k+4`) of word `j` holds output column `8j + awqOrder[k]`.
enum HFQuantizedPacking {
    /// AWQ's interleaving: nibble `k` holds column `awqOrder[k]` of its eight.
    static let awqOrder = [0, 2, 4, 6, 1, 3, 5, 7]

    /// Packs 32 values (each below `2^bits`, read through `value`) into `bits` words, as
    /// one continuous bit stream.
    @inline(__always)
    static func packBlock(bits: Int, _ value: (Int) -> UInt32, _ store: (Int, UInt32) -> Void) {
        var acc: UInt64 = 0, filled = 0, word = 0
        for k in 0..<32 {
            acc |= UInt64(value(k)) << UInt64(filled)
            filled += bits
            if filled >= 32 {
                store(word, UInt32(truncatingIfNeeded: acc))
                word += 1
                acc >>= 32
                filled -= 32
            }
        }
    }

    /// Unpacks 32 values from the `bits` words of a block (read through `word`).
    @inline(__always)
    static func unpackBlock(bits: Int, _ word: (Int) -> UInt32, _ store: (Int, UInt32) -> Void) {
        var acc: UInt64 = 0, available = 0, next = 0
        let mask = UInt64((1 << bits) - 1)
        for k in 0..<32 {
            if available < bits {
                acc |= UInt64(word(next)) << UInt64(available)
                next += 1
                available += 32
            }
            store(k, UInt32(acc & mask))
            acc >>= UInt64(bits)
            available -= bits
        }
    }

    /// GPTQ `qweight`, row-major `[columns·bits/32, rows]`, from a matrix's codes.
    /// Requires `columns % 32 == 0`.
    static func gptqQWeight(_ m: GroupQuantizedMatrix) -> [Int32] {
        let rows = m.rows, columns = m.columns, bits = m.bits
        var out = [Int32](repeating: 0, count: columns / 32 * bits * rows)
        m.codes.withUnsafeBufferPointer { codes in
            out.withUnsafeMutableBufferPointer { words in
                for o in 0..<rows {
                    let row = codes.baseAddress! + o * columns
                    for block in 0..<columns / 32 {
                        packBlock(bits: bits, { UInt32(row[block * 32 + $0]) }) { w, v in
                            words[(block * bits + w) * rows + o] = Int32(bitPattern: v)
                        }
                    }
                }
            }
        }
        return out
    }

    /// Codes (row-major `[rows, columns]`) from a GPTQ `qweight` `[columns·bits/32, rows]`.
    static func gptqCodes(_ qweight: [Int32], rows: Int, columns: Int, bits: Int) -> [UInt8] {
        var codes = [UInt8](repeating: 0, count: rows * columns)
        qweight.withUnsafeBufferPointer { words in
            codes.withUnsafeMutableBufferPointer { out in
                for o in 0..<rows {
                    for block in 0..<columns / 32 {
                        unpackBlock(bits: bits, { UInt32(bitPattern: words[(block * bits + $0) * rows + o]) }) { k, v in
                            out[o * columns + block * 32 + k] = UInt8(v)
                        }
                    }
                }
            }
        }
        return codes
    }

    /// GPTQ `qzeros` `[groups, rows·bits/32]`: each zero point minus `offset` (1 for
    /// checkpoint format v1, 0 for v2), kept to its low `bits` bits. Requires `rows % 32 == 0`.
    static func gptqQZeros(_ m: GroupQuantizedMatrix, offset: Int32) -> [Int32] {
        let rows = m.rows, groups = m.groups, bits = m.bits, perRow = rows / 32 * bits
        let mask = UInt32((1 << bits) - 1)
        var out = [Int32](repeating: 0, count: groups * perRow)
        for g in 0..<groups {
            for block in 0..<rows / 32 {
                packBlock(bits: bits, { UInt32(bitPattern: m.zeroPoints[(block * 32 + $0) * groups + g] - offset) & mask }) { w, v in
                    out[g * perRow + block * bits + w] = Int32(bitPattern: v)
                }
            }
        }
        return out
    }

    /// Stored zero points (row-major `[rows, groups]`, before adding any offset) from a GPTQ
    /// `qzeros` `[groups, rows·bits/32]`.
    static func gptqStoredZeros(_ qzeros: [Int32], rows: Int, groups: Int, bits: Int) -> [Int32] {
        let perRow = rows / 32 * bits
        var out = [Int32](repeating: 0, count: rows * groups)
        for g in 0..<groups {
            for block in 0..<rows / 32 {
                unpackBlock(bits: bits, { UInt32(bitPattern: qzeros[g * perRow + block * bits + $0]) }) { k, v in
                    out[(block * 32 + k) * groups + g] = Int32(v)
                }
            }
        }
        return out
    }

    /// Packs eight 4-bit values in AWQ's interleaved order.
    @inline(__always)
    static func awqWord(_ value: (Int) -> UInt32) -> Int32 {
        var w: UInt32 = 0
        for k in 0..<8 { w |= (value(awqOrder[k]) & 0xF) << UInt32(4 * k) }
        return Int32(bitPattern: w)
    }

    /// AWQ `qweight` `[columns, rows/8]`. Requires `rows % 8 == 0` and 4 bits.
    static func awqQWeight(_ m: GroupQuantizedMatrix) -> [Int32] {
        let rows = m.rows, columns = m.columns, perRow = rows / 8
        var out = [Int32](repeating: 0, count: columns * perRow)
        m.codes.withUnsafeBufferPointer { codes in
            for i in 0..<columns {
                for j in 0..<perRow {
                    out[i * perRow + j] = awqWord { UInt32(codes[(j * 8 + $0) * columns + i]) }
                }
            }
        }
        return out
    }

    /// AWQ `qzeros` `[groups, rows/8]`.
    static func awqQZeros(_ m: GroupQuantizedMatrix) -> [Int32] {
        let rows = m.rows, groups = m.groups, perRow = rows / 8
        var out = [Int32](repeating: 0, count: groups * perRow)
        for g in 0..<groups {
            for j in 0..<perRow {
                out[g * perRow + j] = awqWord { UInt32(bitPattern: m.zeroPoints[(j * 8 + $0) * groups + g]) }
            }
        }
        return out
    }

    /// Unpacks an AWQ-packed `[n, m/8]` tensor into `[m, n]` values (transposed back, so
    /// `qweight` gives row-major codes and `qzeros` gives `[rows, groups]` zero points).
    static func awqUnpackTransposed(_ packed: [Int32], n: Int, m: Int) -> [UInt32] {
        let perRow = m / 8
        var out = [UInt32](repeating: 0, count: m * n)
        packed.withUnsafeBufferPointer { words in
            out.withUnsafeMutableBufferPointer { values in
                for i in 0..<n {
                    for j in 0..<perRow {
                        let w = UInt32(bitPattern: words[i * perRow + j])
                        for k in 0..<8 { values[(j * 8 + awqOrder[k]) * n + i] = (w >> UInt32(4 * k)) & 0xF }
                    }
                }
            }
        }
        return out
    }

    /// bitsandbytes: the scale of a row whose stored `SCB` (max |w|) is `absmax`.
    static func scale(absmax: Float) -> Float { absmax / 127 }

    /// bitsandbytes: the `SCB` to store for a row of scale `scale`, chosen so that
    /// `scale(absmax:)` gives `scale` back exactly (the product rounds to a neighbour of
    /// the one value that does, when it is not that value itself).
    static func absmax(scale: Float) -> Float {
        let a = scale * 127
        for candidate in [a, a.nextUp, a.nextDown] where Self.scale(absmax: candidate) == scale { return candidate }
        return a
    }
}
