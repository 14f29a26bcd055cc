import Tensors

extension Codecs {
    /// Q4_K — 144 bytes per 256 weights: 8 groups of 32, each with a 6-bit scale and a 6-bit
    /// minimum, under two f16 super-block scales.
    ///
    ///     offset  size  field
    ///          0     2  d       f16 super-scale of the scales
    ///          2     2  dmin    f16 super-scale of the mins
    ///          4    12  scales  eight 6-bit scales and eight 6-bit mins (see `scaleMin`)
    ///         16   128  qs      4-bit quants (see below)
    ///
    /// Weight i = 64c + 32h + l (c < 4, h < 2, l < 32) is the low (h = 0) or high (h = 1)
    /// nibble of qs[32c + l]; its group is i / 32.
    ///
    /// weight = (d × scale) × q − (dmin × min)
    enum Q4_K {
        static func dequantize(_ src: UnsafeRawPointer, blocks n: Int, into dst: UnsafeMutablePointer<Float>) {
            for b in 0..<n {
                let x = src + b * 144, y = dst + b * 256
                let d = x.f16(0), dmin = x.f16(2)
                for c in 0..<4 {
                    let qs = x + 16 + 32 * c
                    let (sc0, m0) = scaleMin(x + 4, 2 * c)
                    let (sc1, m1) = scaleMin(x + 4, 2 * c + 1)
                    let d0 = d * Float(sc0), min0 = dmin * Float(m0)
                    let d1 = d * Float(sc1), min1 = dmin * Float(m1)
                    let out = y + 64 * c
                    for l in 0..<32 {
                        let q = qs.u8(l)
                        out[l] = d0 * Float(q & 0x0F) - min0
                        out[l + 32] = d1 * Float(q >> 4) - min1
                    }
                }
            }
        }

        /// Scale and minimum `j` (0…7, each 0…63) of the 12-byte packed field shared by Q4_K
        /// and Q5_K. Bytes 0–3 hold scales 0–3 in their low 6 bits, bytes 4–7 mins 0–3; for
        /// j ≥ 4, byte 8 + (j − 4) holds the low 4 bits of scale j (low nibble) and of min j
        /// (high nibble), and the top 2 bits of bytes j − 4 and j give their high 2 bits.
        @inline(__always)
        static func scaleMin(_ s: UnsafeRawPointer, _ j: Int) -> (UInt8, UInt8) {
            if j < 4 {
                return (s.u8(j) & 63, s.u8(j + 4) & 63)
            }
            let packed = s.u8(j + 4)
            return ((packed & 0x0F) | (s.u8(j - 4) >> 6) << 4,
                    (packed >> 4) | (s.u8(j) >> 6) << 4)
        }
    }
}
