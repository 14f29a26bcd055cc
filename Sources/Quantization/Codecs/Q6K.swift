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

        /// ggml's encoder: each group's scale by the weighted symmetric search (weights x²,
        /// or the importance itself when given, as llama.cpp does for Q6_K), the 8-bit
        /// scales against the largest, then the quants recomputed from the stored scales.
        static func quantize(_ x: UnsafePointer<Float>, count n: Int, into dst: UnsafeMutableRawPointer,
                             importance qw: UnsafePointer<Float>?) {
            withUnsafeTemporaryAllocation(of: Int8.self, capacity: 256) { buffer in
                withScratch(floats: 16, bytes: 0, lanes: 64) { scales, _, v in
                    let L = buffer.baseAddress!
                    let vx = v, vw = v + 16, vL = v + 32, vaux = v + 48
                    for blk in 0..<n / 256 {
                        let xb = x + 256 * blk, y = dst + 210 * blk
                        for half in 0..<2 {  // groups 8·half … 8·half + 7 side by side
                            let g0 = 8 * half
                            loadLanes(xb + 16 * g0, stride: 16, lanes: 8, n: 16, into: vx)
                            if let qw { loadLanes(qw + 256 * blk + 16 * g0, stride: 16, lanes: 8, n: 16, into: vw) }
                            let s = LaneSearch.symmetric(16, nmax: 32, vx, weights: qw == nil ? nil : UnsafePointer(vw), vL, vaux)
                            storeLanes(vL, stride: 16, lanes: 8, n: 16, into: L + 16 * g0)
                            for g in 0..<8 { scales[g0 + g] = s[g] }
                        }
                        var maxScale: Float = 0, maxAbsScale: Float = 0
                        for j in 0..<16 where abs(scales[j]) > maxAbsScale {
                            maxAbsScale = abs(scales[j]); maxScale = scales[j]
                        }
                        if maxAbsScale < groupMaxEpsilon {
                            y.initializeMemory(as: UInt8.self, repeating: 0, count: 210)
                            continue
                        }
                        let iscale = -128 / maxScale
                        let d = y.setF16(208, 1 / iscale)
                        for j in 0..<16 {
                            y.setU8(192 + j, UInt8(truncatingIfNeeded: Swift.min(127, nearestInt(iscale * scales[j]))))
                        }
                        // Requantize against the stored scales; groups with a zero scale
                        // keep the search's quants.
                        for j in 0..<16 {
                            let dl = d * Float(UnsafeRawPointer(y).i8(192 + j))
                            if dl == 0 { continue }
                            for i in 0..<16 {
                                let l = Swift.max(-32, Swift.min(31, nearestInt(xb[16 * j + i] / dl)))
                                L[16 * j + i] = Int8(truncatingIfNeeded: l + 32)
                            }
                        }
                        // Low nibbles: weights 128h + l and + 64 share ql[64h + l], + 32 and
                        // + 96 share ql[64h + 32 + l]; high 2-bit pairs: qh[32h + l].
                        for h in 0..<2 {
                            let Lh = L + 128 * h
                            for l in 0..<32 {
                                let q1 = UInt8(bitPattern: Lh[l]), q2 = UInt8(bitPattern: Lh[l + 32])
                                let q3 = UInt8(bitPattern: Lh[l + 64]), q4 = UInt8(bitPattern: Lh[l + 96])
                                y.setU8(64 * h + l, (q1 & 0x0F) | (q3 & 0x0F) << 4)
                                y.setU8(64 * h + 32 + l, (q2 & 0x0F) | (q4 & 0x0F) << 4)
                                y.setU8(128 + 32 * h + l, q1 >> 4 | (q2 >> 4) << 2 | (q3 >> 4) << 4 | (q4 >> 4) << 6)
                            }
                        }
                    }
                }
            }
        }
    }
}
