import Tensors

extension Codecs {
    /// Q5_K — 176 bytes per 256 weights: Q4_K plus a fifth bit per quant.
    ///
    ///     offset  size  field
    ///          0     2  d       f16 super-scale of the scales
    ///          2     2  dmin    f16 super-scale of the mins
    ///          4    12  scales  eight 6-bit scales and mins, packed as Q4_K's
    ///         16    32  qh      high bits: weight i's is bit i/32 of qh[i % 32]
    ///         48   128  qs      low 4 bits, laid out as Q4_K's qs
    ///
    /// weight = (d × scale) × q − (dmin × min), q in 0…31
    enum Q5_K {
        static func dequantize(_ src: UnsafeRawPointer, blocks n: Int, into dst: UnsafeMutablePointer<Float>) {
            for b in 0..<n {
                let x = src + b * 176, y = dst + b * 256
                let d = x.f16(0), dmin = x.f16(2)
                let qh = x + 16
                for c in 0..<4 {
                    let qs = x + 48 + 32 * c
                    let (sc0, m0) = Q4_K.scaleMin(x + 4, 2 * c)
                    let (sc1, m1) = Q4_K.scaleMin(x + 4, 2 * c + 1)
                    let d0 = d * Float(sc0), min0 = dmin * Float(m0)
                    let d1 = d * Float(sc1), min1 = dmin * Float(m1)
                    let bit0 = UInt8(2 * c), bit1 = UInt8(2 * c + 1)
                    let out = y + 64 * c
                    for l in 0..<32 {
                        let q = qs.u8(l), h = qh.u8(l)
                        let q0 = (q & 0x0F) | ((h &>> bit0) & 1) << 4
                        let q1 = (q >> 4) | ((h &>> bit1) & 1) << 4
                        out[l] = d0 * Float(q0) - min0
                        out[l + 32] = d1 * Float(q1) - min1
                    }
                }
            }
        }

        /// Q4_K's encoder with 5-bit quants (see `Q4_K.quantize`); the reference search
        /// tries fewer, closer scales.
        static func quantize(_ x: UnsafePointer<Float>, count n: Int, into dst: UnsafeMutableRawPointer,
                             importance qw: UnsafePointer<Float>?) {
            withScratch(floats: KQuantScales.floats, bytes: KQuantScales.bytes, lanes: KQuantScales.lanes) { f, b, v in
                let scratch = KQuantScales(f, b, v)
                for blk in 0..<n / 256 {
                    let xb = x + 256 * blk, y = dst + 176 * blk
                    scratch.encode(xb, y, importance: qw.map { $0 + 256 * blk }, nmax: 31,
                                   rmin: -0.5, rdelta: 0.1, steps: 15, clampImportanceScales: true)
                    let L = scratch.L
                    for l in 0..<32 {
                        var qh: UInt8 = 0
                        for c in 0..<4 {
                            let q0 = L[64 * c + l], q1 = L[64 * c + 32 + l]
                            qh |= (q0 >> 4) << (2 * c) | (q1 >> 4) << (2 * c + 1)
                            y.setU8(48 + 32 * c + l, (q0 & 0x0F) | (q1 & 0x0F) << 4)
                        }
                        y.setU8(16 + l, qh)
                    }
                }
            }
        }
    }
}
