import Tensors

/// Why a codec call was refused.
///
/// Thrown before anything is written to the destination, so a failed call leaves it untouched.
public enum CodecError: Error, Equatable, CustomStringConvertible {
    /// No codec for this type is implemented (yet).
    case unsupportedType(DType)
    /// The weight count is negative, not a whole number of blocks, or so large that its byte
    /// size overflows `Int`.
    case invalidCount(DType, count: Int)
    /// The source holds a different number of bytes than `count` weights of the type need.
    case byteCountMismatch(DType, count: Int, expected: Int, actual: Int)
    /// `quantize` has no encoder for this type (it may still be decodable).
    case unsupportedQuantization(DType)
    /// The row length is not positive, not a whole number of blocks, or does not divide
    /// the weight count.
    case invalidRowLength(DType, rowLength: Int, count: Int)
    /// The importance vector does not have one entry per column (the row length).
    case importanceCountMismatch(expected: Int, actual: Int)

    /// A one-line message naming the type and what is wrong.
    public var description: String {
        switch self {
        case .unsupportedType(let t):
            return "no dequantizer for \(t.rawValue)"
        case .invalidCount(let t, let count) where count >= 0 && count % t.blockSize == 0:
            return "\(t.rawValue): \(count) weights is too many to address"
        case .invalidCount(let t, let count):
            return "\(t.rawValue): \(count) weights is not a whole number of \(t.blockSize)-weight blocks"
        case .byteCountMismatch(let t, let count, let expected, let actual):
            return "\(t.rawValue): \(count) weights need \(expected) bytes, got \(actual)"
        case .unsupportedQuantization(let t):
            return "no quantizer for \(t.rawValue)"
        case .invalidRowLength(let t, let rowLength, let count):
            return "\(t.rawValue): row length \(rowLength) must be a positive multiple of "
                + "\(t.blockSize) that divides the \(count) weights"
        case .importanceCountMismatch(let expected, let actual):
            return "importance has \(actual) values, expected one per column (\(expected))"
        }
    }
}

/// Conversion between GGML storage types and `Float`.
///
/// Each block family lives in its own file under `Codecs/`, with its byte layout documented
/// next to the code (as ggml does beside its block structs). Blocks are read byte-wise and
/// little-endian, so the source may have any alignment (e.g. a memory-mapped GGUF tensor).
/// Results equal the `gguf` Python package's `gguf.quants.dequantize` bit for bit.
public enum Codecs {
    /// Types `dequantize` can decode.
    public static let dequantizableTypes: [DType] = [
        .f32, .f16, .bf16,
        .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1,
        .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_K,
        .iq4_nl, .iq4_xs, .tq1_0, .tq2_0, .mxfp4,
    ]

    /// True when `dequantize` supports `type`.
    public static func canDequantize(_ type: DType) -> Bool {
        dequantizer(for: type) != nil
    }

    /// Decodes `count` weights of `type` from `src` into `dst` (which must have room for
    /// `count` floats), on the calling thread.
    ///
    /// - Parameters:
    ///   - type: the storage type of `src`.
    ///   - src: exactly `type.byteCount(elements: count)` bytes, any alignment.
    ///   - count: the number of weights; a multiple of `type.blockSize`.
    ///   - dst: where the `count` floats go.
    /// - Throws: `CodecError` if the type is unsupported, `count` is not a whole number of
    ///   blocks, or `src` has the wrong size.
    public static func dequantize(
        _ type: DType, from src: UnsafeRawBufferPointer, count: Int,
        into dst: UnsafeMutablePointer<Float>
    ) throws {
        let (decode, blocks) = try validate(type, src: src, count: count)
        guard blocks > 0, let base = src.baseAddress else { return }
        decode(base, blocks, dst)
    }

    /// Decodes `count` weights of `type` from `bytes` into a new array, split over
    /// `Threads.count` threads when the tensor is large.
    ///
    /// - Throws: `CodecError`, as `dequantize(_:from:count:into:)`.
    public static func dequantize(_ type: DType, bytes: UnsafeRawBufferPointer, count: Int) throws -> [Float] {
        let (decode, blocks) = try validate(type, src: bytes, count: count)
        guard blocks > 0, let base = bytes.baseAddress else { return [] }
        return [Float](unsafeUninitializedCapacity: count) { out, initialized in
            let dst = out.baseAddress!
            let threads = count > parallelThreshold ? min(Threads.count, blocks) : 1
            if threads <= 1 {
                decode(base, blocks, dst)
            } else {
                let bytesPerBlock = type.bytesPerBlock, blockSize = type.blockSize
                parallelFor(threads, threads: threads) { k in
                    let lo = blocks * k / threads, hi = blocks * (k + 1) / threads
                    decode(base + lo * bytesPerBlock, hi - lo, dst + lo * blockSize)
                }
            }
            initialized = count
        }
    }

    /// Weights above which the array-returning `dequantize` uses several threads.
    static let parallelThreshold = 1 << 16

    /// Decodes `blocks` consecutive blocks starting at the pointer into the floats.
    typealias BlockDecoder = (UnsafeRawPointer, Int, UnsafeMutablePointer<Float>) -> Void

    static func dequantizer(for type: DType) -> BlockDecoder? {
        switch type {
        case .f32: return F32.dequantize
        case .f16: return F16.dequantize
        case .bf16: return BF16.dequantize
        case .q4_0: return Q4_0.dequantize
        case .q4_1: return Q4_1.dequantize
        case .q5_0: return Q5_0.dequantize
        case .q5_1: return Q5_1.dequantize
        case .q8_0: return Q8_0.dequantize
        case .q8_1: return Q8_1.dequantize
        case .q2_K: return Q2_K.dequantize
        case .q3_K: return Q3_K.dequantize
        case .q4_K: return Q4_K.dequantize
        case .q5_K: return Q5_K.dequantize
        case .q6_K: return Q6_K.dequantize
        case .q8_K: return Q8_K.dequantize
        case .iq4_nl: return IQ4_NL.dequantize
        case .iq4_xs: return IQ4_XS.dequantize
        case .tq1_0: return TQ1_0.dequantize
        case .tq2_0: return TQ2_0.dequantize
        case .mxfp4: return MXFP4.dequantize
        default: return nil
        }
    }

    // MARK: Quantization

    /// Types `quantize` can encode.
    public static let quantizableTypes: [DType] = [
        .f32, .f16, .bf16,
        .q4_0, .q4_1, .q5_0, .q5_1, .q8_0,
        .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_K,
        .iq4_nl, .iq4_xs,
    ]

    /// True when `quantize` supports `type`.
    public static func canQuantize(_ type: DType) -> Bool {
        quantizer(for: type) != nil
    }

    /// Encodes `count` floats from `src` as `type` into `dst` (which must have room for
    /// `type.byteCount(elements: count)` bytes, any alignment), on the calling thread.
    ///
    /// The output is what llama.cpp's `ggml_quantize_chunk` writes for the same input:
    /// without importance, the legacy types, F16 and BF16 equal the `gguf` Python
    /// package's `gguf.quants.quantize` byte for byte, and the k-quants follow ggml's
    /// reference encoders (error-minimising scale searches); with importance, every
    /// type that can use it follows llama.cpp's imatrix-weighted encoders. F32, F16,
    /// BF16, Q8_0 and Q8_K ignore importance, as llama.cpp does. Non-finite inputs give
    /// unspecified (but finite-time, non-trapping) output.
    ///
    /// - Parameters:
    ///   - type: the storage type to produce; see `quantizableTypes`.
    ///   - src: `count` floats: `count / rowLength` rows of `rowLength` weights.
    ///   - count: the number of weights; a multiple of `type.blockSize` and of `rowLength`.
    ///   - dst: where the encoded bytes go.
    ///   - importance: optional per-column weights, `rowLength` of them (an imatrix
    ///     entry: the mean squared activation of each input column), applied to every
    ///     row; the error each weight contributes is scaled by its column's importance.
    ///   - rowLength: weights per row; nil means one row of `count`. It matters only with
    ///     importance (the weighting uses per-row statistics).
    /// - Throws: `CodecError` before writing anything if the type has no encoder, or
    ///   `count` or `rowLength` does not fit the type's blocks.
    public static func quantize(
        _ type: DType, from src: UnsafePointer<Float>, count: Int,
        into dst: UnsafeMutableRawPointer,
        importance: UnsafePointer<Float>? = nil, rowLength: Int? = nil
    ) throws {
        let (encode, rowLength) = try validateQuantize(type, count: count, rowLength: rowLength)
        guard count > 0 else { return }
        let rowBytes = rowLength / type.blockSize * type.bytesPerBlock
        if importance == nil {
            encode(src, count, dst, nil)  // without importance rows don't matter
            return
        }
        for r in 0..<count / rowLength {
            encode(src + r * rowLength, rowLength, dst + r * rowBytes, importance)
        }
    }

    /// Encodes `values` as `type` into a new byte array, rows split over `Threads.count`
    /// threads when the tensor is large. The bytes equal those of the pointer variant.
    ///
    /// - Parameters:
    ///   - type: the storage type to produce; see `quantizableTypes`.
    ///   - values: row-major weights, `values.count / rowLength` rows.
    ///   - rowLength: weights per row; nil means one row.
    ///   - importance: optional per-column weights, one per column (`rowLength` of them).
    /// - Throws: `CodecError` if the type has no encoder, the count or row length does
    ///   not fit the type's blocks, or `importance` has the wrong length.
    public static func quantize(
        _ type: DType, _ values: [Float], rowLength: Int? = nil, importance: [Float]? = nil
    ) throws -> [UInt8] {
        try quantize(type, values, rowLength: rowLength, importance: importance, threads: Threads.count)
    }

    /// The array variant with an explicit thread count (tests use it to force splitting).
    static func quantize(
        _ type: DType, _ values: [Float], rowLength: Int?, importance: [Float]?, threads maxThreads: Int
    ) throws -> [UInt8] {
        let count = values.count
        let (encode, rowLength) = try validateQuantize(type, count: count, rowLength: rowLength)
        if let importance, importance.count != rowLength {
            throw CodecError.importanceCountMismatch(expected: rowLength, actual: importance.count)
        }
        guard count > 0 else { return [] }
        let bytes = count / type.blockSize * type.bytesPerBlock
        // The unit of work: a row with importance (its statistics span the row), else a
        // block, so that even one long row is split.
        let unit = importance == nil ? type.blockSize : rowLength
        let units = count / unit, unitBytes = unit / type.blockSize * type.bytesPerBlock
        return [UInt8](unsafeUninitializedCapacity: bytes) { out, initialized in
            let dst = UnsafeMutableRawPointer(out.baseAddress!)
            values.withUnsafeBufferPointer { src in
                let x = src.baseAddress!
                func encodeUnits(_ lo: Int, _ hi: Int) {
                    if let importance {
                        importance.withUnsafeBufferPointer { qw in
                            for u in lo..<hi {
                                encode(x + u * unit, unit, dst + u * unitBytes, qw.baseAddress!)
                            }
                        }
                    } else if hi > lo {
                        encode(x + lo * unit, (hi - lo) * unit, dst + lo * unitBytes, nil)
                    }
                }
                let threads = count > parallelThreshold ? min(maxThreads, units) : 1
                if threads <= 1 {
                    encodeUnits(0, units)
                } else {
                    parallelFor(threads, threads: threads) { k in
                        encodeUnits(units * k / threads, units * (k + 1) / threads)
                    }
                }
            }
            initialized = bytes
        }
    }

    /// Encodes `count` floats (one row, or with no importance any whole number of blocks)
    /// into the bytes at the destination, weighting errors by the importance of each
    /// column of the row when given.
    typealias RowEncoder = (UnsafePointer<Float>, Int, UnsafeMutableRawPointer, UnsafePointer<Float>?) -> Void

    static func quantizer(for type: DType) -> RowEncoder? {
        switch type {
        case .f32: return F32.quantize
        case .f16: return F16.quantize
        case .bf16: return BF16.quantize
        case .q4_0: return Q4_0.quantize
        case .q4_1: return Q4_1.quantize
        case .q5_0: return Q5_0.quantize
        case .q5_1: return Q5_1.quantize
        case .q8_0: return Q8_0.quantize
        case .q2_K: return Q2_K.quantize
        case .q3_K: return Q3_K.quantize
        case .q4_K: return Q4_K.quantize
        case .q5_K: return Q5_K.quantize
        case .q6_K: return Q6_K.quantize
        case .q8_K: return Q8_K.quantize
        case .iq4_nl: return IQ4_NL.quantize
        case .iq4_xs: return IQ4_XS.quantize
        default: return nil
        }
    }

    /// Checks the arguments; returns the encoder and the row length.
    private static func validateQuantize(
        _ type: DType, count: Int, rowLength: Int?
    ) throws -> (RowEncoder, Int) {
        guard let encode = quantizer(for: type) else { throw CodecError.unsupportedQuantization(type) }
        guard type.byteCount(elements: count) != nil else {
            throw CodecError.invalidCount(type, count: count)
        }
        let r = rowLength ?? count
        if count == 0 && rowLength == nil { return (encode, 0) }
        guard r > 0, r % type.blockSize == 0, count % r == 0 else {
            throw CodecError.invalidRowLength(type, rowLength: r, count: count)
        }
        return (encode, r)
    }

    /// Checks the arguments; returns the decoder and the number of blocks.
    private static func validate(
        _ type: DType, src: UnsafeRawBufferPointer, count: Int
    ) throws -> (BlockDecoder, Int) {
        guard let decode = dequantizer(for: type) else { throw CodecError.unsupportedType(type) }
        guard let expected = type.byteCount(elements: count) else {
            throw CodecError.invalidCount(type, count: count)
        }
        guard src.count == expected else {
            throw CodecError.byteCountMismatch(type, count: count, expected: expected, actual: src.count)
        }
        return (decode, count / type.blockSize)
    }
}

// Little-endian field reads at any alignment. GGUF is little-endian; so is every host we
// build for, where these compile to plain loads.
extension UnsafeRawPointer {
    @inline(__always) func u8(_ offset: Int) -> UInt8 {
        load(fromByteOffset: offset, as: UInt8.self)
    }
    @inline(__always) func i8(_ offset: Int) -> Int8 {
        load(fromByteOffset: offset, as: Int8.self)
    }
    @inline(__always) func u16(_ offset: Int) -> UInt16 {
        UInt16(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }
    @inline(__always) func u32(_ offset: Int) -> UInt32 {
        UInt32(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
    /// An IEEE binary16 field, widened exactly.
    @inline(__always) func f16(_ offset: Int) -> Float {
        Half.f16ToFloat(u16(offset))
    }
    /// An IEEE binary32 field.
    @inline(__always) func f32(_ offset: Int) -> Float {
        Float(bitPattern: u32(offset))
    }
}

// Little-endian field writes at any alignment, for the encoders.
extension UnsafeMutableRawPointer {
    @inline(__always) func setU8(_ offset: Int, _ v: UInt8) {
        storeBytes(of: v, toByteOffset: offset, as: UInt8.self)
    }
    @inline(__always) func setU16(_ offset: Int, _ v: UInt16) {
        storeBytes(of: v.littleEndian, toByteOffset: offset, as: UInt16.self)
    }
    @inline(__always) func setU32(_ offset: Int, _ v: UInt32) {
        storeBytes(of: v.littleEndian, toByteOffset: offset, as: UInt32.self)
    }
    /// Stores `v` rounded to IEEE binary16 (nearest even) and returns the stored value
    /// widened back, which is what a decoder will multiply by.
    @discardableResult
    @inline(__always) func setF16(_ offset: Int, _ v: Float) -> Float {
        let h = Half.floatToF16(v)
        setU16(offset, h)
        return Half.f16ToFloat(h)
    }
    @inline(__always) func u8(_ offset: Int) -> UInt8 {
        load(fromByteOffset: offset, as: UInt8.self)
    }
}
