import Tensors

extension Codecs {
    /// Q6_K — 210 bytes per 256 weights: 16 groups of 16 with signed 8-bit scales under an
    /// f16 super-block scale; quants are 6-bit, stored as 4 low bits plus 2 high bits.
    ///
    ///     offset  size  field
    ///          0   128  ql      low 4 bits (see below)
    ///        128    64  qh      high 2 bits (see below)
    ///        192    16  scales  i8 scale of group k (weights 16k…16k+15)
    ///        208     2  d       f16 super-scale
    ///
    /// Weight i = 128h + 32s + l (h < 2, s < 4, l < 32): its low 4 bits are the low (s < 2)
    /// or high (s ≥ 2) nibble of ql[64h + 32(s % 2) + l]; its high 2 bits are bits 2s…2s+1
    /// of qh[32h + l].
    ///
    /// weight = (d × scale) × (q − 32)
    enum Q6_K {
        static func dequantize(_ src: UnsafeRawPointer, blocks n: Int, into dst: UnsafeMutablePointer<Float>) {
            for b in 0..<n {
                let x = src + b * 210, y = dst + b * 256
                let d = x.f16(208)
                for h in 0..<2 {
                    let ql = x + 64 * h, qh = x + 128 + 32 * h
                    for s in 0..<4 {
                        let lowShift = UInt8(4 * (s / 2)), highShift = UInt8(2 * s)
                        let lowBase = 32 * (s % 2)
                        for k in 0..<2 {
                            let g = 8 * h + 2 * s + k
                            let dl = d * Float(x.i8(192 + g))
                            let out = y + 16 * g
                            for l in 16 * k..<16 * k + 16 {
                                let low = (ql.u8(lowBase + l) &>> lowShift) & 0x0F
                                let high = (qh.u8(l) &>> highShift) & 3
                                out[l - 16 * k] = dl * Float(Int32(low | high << 4) - 32)
                            }
                        }
                    }
                }
            }
        }
    }
}
