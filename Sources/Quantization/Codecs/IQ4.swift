import Tensors

// The non-linear 4-bit kinds: a 4-bit index into a fixed 16-entry codebook of int8 values,
// denser near zero (where weights are), times a scale.

extension Codecs {
    /// The IQ4 codebook, shared by IQ4_NL and IQ4_XS (ggml's `kvalues_iq4nl`).
    static let iq4Values: [Int8] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]

    /// IQ4_NL — 18 bytes per 32 weights, Q4_0's layout with a codebook instead of q − 8.
    ///
    ///     offset  size  field
    ///          0     2  d    f16 scale
    ///          2    16  qs   codebook indices: weight j = low(qs[j]), weight j+16 = high(qs[j])
    ///
    /// weight = d × iq4Values[q]
    enum IQ4_NL {
        static func dequantize(_ src: UnsafeRawPointer, blocks n: Int, into dst: UnsafeMutablePointer<Float>) {
            iq4Values.withUnsafeBufferPointer { kv in
                for b in 0..<n {
                    let x = src + b * 18, y = dst + b * 32
                    let d = x.f16(0)
                    for j in 0..<16 {
                        let q = x.u8(2 + j)
                        y[j] = d * Float(kv[Int(q & 0x0F)])
                        y[j + 16] = d * Float(kv[Int(q >> 4)])
                    }
                }
            }
        }
    }

    /// IQ4_XS — 136 bytes per 256 weights: 8 groups of 32, each with a signed 6-bit scale
    /// under an f16 super-block scale, and IQ4_NL's codebook.
    ///
    ///     offset  size  field
    ///          0     2  d         f16 super-scale
    ///          2     2  scales_h  u16: bits 2g…2g+1 are the high 2 bits of group g's scale
    ///          4     4  scales_l  low 4 bits of group g's scale: nibble g % 2 of byte g / 2
    ///          8   128  qs        16 bytes per group g: weight 32g + l = low(qs[16g + l]),
    ///                             weight 32g + 16 + l = high(qs[16g + l]), l < 16
    ///
    /// The 6-bit scale is offset by 32. weight = (d × (scale − 32)) × iq4Values[q]
    enum IQ4_XS {
        static func dequantize(_ src: UnsafeRawPointer, blocks n: Int, into dst: UnsafeMutablePointer<Float>) {
            iq4Values.withUnsafeBufferPointer { kv in
                for b in 0..<n {
                    let x = src + b * 136, y = dst + b * 256
                    let d = x.f16(0)
                    let scalesH = x.u16(2)
                    for g in 0..<8 {
                        let low = (x.u8(4 + g / 2) &>> UInt8(4 * (g % 2))) & 0x0F
                        let high = UInt8(truncatingIfNeeded: scalesH &>> UInt16(2 * g)) & 3
                        let dl = d * Float(Int32(low | high << 4) - 32)
                        let qs = x + 8 + 16 * g, out = y + 32 * g
                        for l in 0..<16 {
                            let q = qs.u8(l)
                            out[l] = dl * Float(kv[Int(q & 0x0F)])
                            out[l + 16] = dl * Float(kv[Int(q >> 4)])
                        }
                    }
                }
            }
        }
    }
}
