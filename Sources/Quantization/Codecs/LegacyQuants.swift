import Tensors

// ggml's first block formats: 32 weights per block, one f16 scale (and for the `_1` kinds
// an f16 offset), 4, 5 or 8 bits per quant. All multi-byte fields are little-endian; `f16`
// is IEEE binary16.
//
// The 4- and 5-bit kinds split a block in halves: byte j of `qs` holds weight j in its low
// nibble and weight j + 16 in its high nibble.

extension Codecs {
    /// Q4_0 — 18 bytes per 32 weights, symmetric 4-bit.
    ///
    ///     offset  size  field
    ///          0     2  d    f16 scale
    ///          2    16  qs   nibbles: weight j = low(qs[j]), weight j+16 = high(qs[j])
    ///
    /// weight = d × (q − 8)
    enum Q4_0 {
        static func dequantize(_ src: UnsafeRawPointer, blocks n: Int, into dst: UnsafeMutablePointer<Float>) {
            for b in 0..<n {
                let x = src + b * 18, y = dst + b * 32
                let d = x.f16(0)
                for j in 0..<16 {
                    let q = x.u8(2 + j)
                    y[j] = d * Float(Int32(q & 0x0F) - 8)
                    y[j + 16] = d * Float(Int32(q >> 4) - 8)
                }
            }
        }
    }

    /// Q4_1 — 20 bytes per 32 weights, 4-bit with a minimum.
    ///
    ///     offset  size  field
    ///          0     2  d    f16 scale
    ///          2     2  m    f16 minimum
    ///          4    16  qs   nibbles, as Q4_0
    ///
    /// weight = d × q + m  (q in 0…15; product rounded, then sum rounded: no fused multiply-add)
    enum Q4_1 {
        static func dequantize(_ src: UnsafeRawPointer, blocks n: Int, into dst: UnsafeMutablePointer<Float>) {
            for b in 0..<n {
                let x = src + b * 20, y = dst + b * 32
                let d = x.f16(0), m = x.f16(2)
                for j in 0..<16 {
                    let q = x.u8(4 + j)
                    y[j] = d * Float(q & 0x0F) + m
                    y[j + 16] = d * Float(q >> 4) + m
                }
            }
        }
    }

    /// Q5_0 — 22 bytes per 32 weights, symmetric 5-bit.
    ///
    ///     offset  size  field
    ///          0     2  d    f16 scale
    ///          2     4  qh   u32: bit j is the fifth (high) bit of weight j
    ///          6    16  qs   low four bits, nibbles as Q4_0
    ///
    /// weight = d × (q − 16)
    enum Q5_0 {
        static func dequantize(_ src: UnsafeRawPointer, blocks n: Int, into dst: UnsafeMutablePointer<Float>) {
            for b in 0..<n {
                let x = src + b * 22, y = dst + b * 32
                let d = x.f16(0)
                let qh = x.u32(2)
                for j in 0..<16 {
                    let q = x.u8(6 + j)
                    // Masks rather than per-lane shifts: these vectorise without AVX2.
                    let lo = (q & 0x0F) | (qh & (1 << j) != 0 ? 16 : 0)
                    let hi = (q >> 4) | (qh & (1 << (j + 16)) != 0 ? 16 : 0)
                    y[j] = d * Float(Int32(lo) - 16)
                    y[j + 16] = d * Float(Int32(hi) - 16)
                }
            }
        }
    }

    /// Q5_1 — 24 bytes per 32 weights, 5-bit with a minimum.
    ///
    ///     offset  size  field
    ///          0     2  d    f16 scale
    ///          2     2  m    f16 minimum
    ///          4     4  qh   u32: bit j is the fifth (high) bit of weight j
    ///          8    16  qs   low four bits, nibbles as Q4_0
    ///
    /// weight = d × q + m  (q in 0…31; no fused multiply-add)
    enum Q5_1 {
        static func dequantize(_ src: UnsafeRawPointer, blocks n: Int, into dst: UnsafeMutablePointer<Float>) {
            for b in 0..<n {
                let x = src + b * 24, y = dst + b * 32
                let d = x.f16(0), m = x.f16(2)
                let qh = x.u32(4)
                for j in 0..<16 {
                    let q = x.u8(8 + j)
                    // Masks rather than per-lane shifts: these vectorise without AVX2.
                    let lo = (q & 0x0F) | (qh & (1 << j) != 0 ? 16 : 0)
                    let hi = (q >> 4) | (qh & (1 << (j + 16)) != 0 ? 16 : 0)
                    y[j] = d * Float(lo) + m
                    y[j + 16] = d * Float(hi) + m
                }
            }
        }
    }

    /// Q8_0 — 34 bytes per 32 weights, symmetric 8-bit.
    ///
    ///     offset  size  field
    ///          0     2  d    f16 scale
    ///          2    32  qs   i8 quants, weight j = qs[j]
    ///
    /// weight = d × q
    enum Q8_0 {
        static func dequantize(_ src: UnsafeRawPointer, blocks n: Int, into dst: UnsafeMutablePointer<Float>) {
            for b in 0..<n {
                let x = src + b * 34, y = dst + b * 32
                let d = x.f16(0)
                for j in 0..<32 {
                    y[j] = d * Float(x.i8(2 + j))
                }
            }
        }
    }

    /// Q8_1 — 36 bytes per 32 weights: Q8_0 plus a precomputed sum, used by ggml for the
    /// activations in dot products with the `_1` kinds.
    ///
    ///     offset  size  field
    ///          0     2  d    f16 scale
    ///          2     2  s    f16 d × Σ qs (not needed to decode)
    ///          4    32  qs   i8 quants, weight j = qs[j]
    ///
    /// weight = d × q. (The `gguf` Python package still sizes this block at 40 bytes, from
    /// when d and s were f32; ggml's struct and `DType` use 36.)
    enum Q8_1 {
        static func dequantize(_ src: UnsafeRawPointer, blocks n: Int, into dst: UnsafeMutablePointer<Float>) {
            for b in 0..<n {
                let x = src + b * 36, y = dst + b * 32
                let d = x.f16(0)
                for j in 0..<32 {
                    y[j] = d * Float(x.i8(4 + j))
                }
            }
        }
    }
}
