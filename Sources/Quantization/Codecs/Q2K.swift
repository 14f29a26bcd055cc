import Tensors

extension Codecs {
    /// Q2_K — 84 bytes per 256 weights: 16 groups of 16, each with a 4-bit scale and a
    /// 4-bit minimum, under two f16 super-block scales.
    ///
    ///     offset  size  field
    ///          0    16  scales  byte g (group g = weights 16g…16g+15): low nibble scale, high nibble min
    ///         16    64  qs      2-bit quants, four per byte (see below)
    ///         80     2  d       f16 super-scale of the scales
    ///         82     2  dmin    f16 super-scale of the mins
    ///
    /// Weight i = 128h + 32s + l (h < 2, s < 4, l < 32) is bits 2s…2s+1 of qs[32h + l].
    ///
    /// weight = (d × scale) × q − (dmin × min)
    enum Q2_K {
        static func dequantize(_ src: UnsafeRawPointer, blocks n: Int, into dst: UnsafeMutablePointer<Float>) {
            for b in 0..<n {
                let x = src + b * 84, y = dst + b * 256
                let d = x.f16(80), dmin = x.f16(82)
                for h in 0..<2 {
                    let qs = x + 16 + 32 * h
                    for s in 0..<4 {
                        let shift = UInt8(2 * s)
                        for k in 0..<2 {  // two groups of 16 per run of 32
                            let g = 8 * h + 2 * s + k
                            let sc = x.u8(g)
                            let dl = d * Float(sc & 0x0F), ml = dmin * Float(sc >> 4)
                            let out = y + 16 * g
                            for l in 0..<16 {
                                out[l] = dl * Float((qs.u8(16 * k + l) &>> shift) & 3) - ml
                            }
                        }
                    }
                }
            }
        }
    }
}
