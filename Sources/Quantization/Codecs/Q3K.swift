import Tensors

extension Codecs {
    /// Q3_K — 110 bytes per 256 weights: 16 groups of 16 with signed 6-bit scales under an
    /// f16 super-block scale; quants are 3-bit, stored as 2 low bits plus a high-bit mask.
    ///
    ///     offset  size  field
    ///          0    32  hmask   high bits: weight i's is bit i/32 of hmask[i % 32]
    ///         32    64  qs      low 2 bits, laid out as Q2_K's qs
    ///         96    12  scales  sixteen 6-bit scales (see below)
    ///        108     2  d       f16 super-scale
    ///
    /// Scale k (group k = weights 16k…16k+15): low 4 bits are the low nibble of scales[k]
    /// for k < 8, the high nibble of scales[k − 8] otherwise; high 2 bits are bits
    /// 2(k/4)…2(k/4)+1 of scales[8 + k % 4]. The stored value is offset by 32.
    ///
    /// q = low2 − (highbit ? 0 : 4), in −4…3; weight = (d × (scale − 32)) × q
    enum Q3_K {
        static func dequantize(_ src: UnsafeRawPointer, blocks n: Int, into dst: UnsafeMutablePointer<Float>) {
            for b in 0..<n {
                let x = src + b * 110, y = dst + b * 256
                let d = x.f16(108)
                let hmask = x, scales = x + 96
                for h in 0..<2 {
                    let qs = x + 32 + 32 * h
                    for s in 0..<4 {
                        let shift = UInt8(2 * s)
                        let hbit = UInt8(4 * h + s)  // weights 32(4h+s)… take this hmask bit
                        for k in 0..<2 {
                            let g = 8 * h + 2 * s + k
                            let dl = d * Float(scale(scales, g))
                            let out = y + 16 * g
                            for l in 0..<16 {
                                let low = (qs.u8(16 * k + l) &>> shift) & 3
                                let high = (hmask.u8(16 * k + l) &>> hbit) & 1
                                out[l] = dl * Float(Int32(low | high << 2) - 4)
                            }
                        }
                    }
                }
            }
        }

        /// The signed 6-bit scale of group `k` (−32…31).
        @inline(__always)
        static func scale(_ scales: UnsafeRawPointer, _ k: Int) -> Int32 {
            let low = k < 8 ? scales.u8(k) & 0x0F : scales.u8(k - 8) >> 4
            let high = (scales.u8(8 + k % 4) &>> UInt8(2 * (k / 4))) & 3
            return Int32(low | high << 4) - 32
        }
    }
}
