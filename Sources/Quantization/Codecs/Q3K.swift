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

        /// Without importance, ggml's reference encoder: each group's scale by the
        /// x²-weighted symmetric search with per-quant refinement, then the 6-bit scales
        /// against the largest. With importance, llama.cpp's imatrix encoder: the group
        /// search weighted by qw·√(σ² + x²) (σ² twice the block's mean square), then the
        /// 6-bit scales by a weighted search of their own. Either way the quants are then
        /// recomputed from the stored (rounded) scales.
        static func quantize(_ x: UnsafePointer<Float>, count n: Int, into dst: UnsafeMutableRawPointer,
                             importance qw: UnsafePointer<Float>?) {
            // floats: weights 256, scales 16, sw 16; Int8: L 256, Ls 16; lanes: x, w, L, aux
            withUnsafeTemporaryAllocation(of: Int8.self, capacity: 272) { bytes in
                withScratch(floats: 288, bytes: 1, lanes: 64) { floats, _, v in
                    let L = bytes.baseAddress!, Ls = L + 256
                    let weights = floats, scales = floats + 256, sw = floats + 272
                    let vx = v, vw = v + 16, vL = v + 32, vaux = v + 48
                    for blk in 0..<n / 256 {
                        let xb = x + 256 * blk, y = dst + 110 * blk
                        let sc = y + 96
                        for k in 0..<12 { sc.setU8(k, 0) }
                        if let qw {
                            let qb = qw + 256 * blk
                            let sigma2 = 2 * sumOfSquares(xb, 256) / 256
                            for i in 0..<256 { weights[i] = importanceWeight(qb[i], sigma2, xb[i]) }
                            for j in 0..<16 {
                                var sum: Float = 0
                                for l in 0..<16 { sum += weights[16 * j + l] }
                                sw[j] = sum
                            }
                            for half in 0..<2 {  // groups 8·half … 8·half + 7 side by side
                                let g0 = 8 * half
                                loadLanes(xb + 16 * g0, stride: 16, lanes: 8, n: 16, into: vx)
                                loadLanes(weights + 16 * g0, stride: 16, lanes: 8, n: 16, into: vw)
                                let s = LaneSearch.symmetric(16, nmax: 4, vx, weights: vw, vL, vaux)
                                storeLanes(vL, stride: 16, lanes: 8, n: 16, into: L + 16 * g0)
                                for g in 0..<8 { scales[g0 + g] = s[g] }
                            }
                            let d = ScaleSearch.symmetric(16, nmax: 32, scales, Ls, weights: sw)
                            for j in 0..<16 { setScale(sc, j, UInt8(bitPattern: Ls[j])) }
                            y.setF16(108, d)
                        } else {
                            var maxScale: Float = 0, amax: Float = 0
                            for j in 0..<16 {
                                scales[j] = ScaleSearch.symmetricRefined(16, nmax: 4, xb + 16 * j, L + 16 * j)
                                if abs(scales[j]) > amax { amax = abs(scales[j]); maxScale = scales[j] }
                            }
                            if maxScale != 0 {
                                let iscale = -32 / maxScale
                                for j in 0..<16 {
                                    let l = Int8(truncatingIfNeeded: nearestInt(iscale * scales[j]))
                                    setScale(sc, j, UInt8(truncatingIfNeeded: Swift.max(-32, Swift.min(31, l)) + 32))
                                }
                                y.setF16(108, 1 / iscale)
                            } else {
                                y.setF16(108, 0)
                            }
                        }
                        // Requantize against the stored scales; groups with a zero scale
                        // keep the search's quants.
                        let d = UnsafeRawPointer(y).f16(108)
                        for j in 0..<16 {
                            let dl = d * Float(scale(UnsafeRawPointer(sc), j))
                            if dl == 0 { continue }
                            for i in 0..<16 {
                                let l = Swift.max(-4, Swift.min(3, nearestInt(xb[16 * j + i] / dl)))
                                L[16 * j + i] = Int8(truncatingIfNeeded: l + 4)
                            }
                        }
                        // High bits into hmask (weight i: bit i / 32 of byte i % 32), low
                        // two bits into qs.
                        for k in 0..<32 { y.setU8(k, 0) }
                        for i in 0..<256 where L[i] > 3 {
                            y.setU8(i % 32, y.u8(i % 32) | UInt8(1) << (i / 32))
                            L[i] -= 4
                        }
                        L.withMemoryRebound(to: UInt8.self, capacity: 256) { packTwoBits(y + 32, $0) }
                    }
                }
            }
        }

        /// Stores the 6-bit value `l` (scale + 32) of group `j` into the 12-byte field.
        @inline(__always)
        private static func setScale(_ sc: UnsafeMutableRawPointer, _ j: Int, _ l: UInt8) {
            if j < 8 {
                sc.setU8(j, l & 0x0F)
            } else {
                sc.setU8(j - 8, sc.u8(j - 8) | (l & 0x0F) << 4)
            }
            sc.setU8(8 + j % 4, sc.u8(8 + j % 4) | (l >> 4) << (2 * (j / 4)))
        }
    }
}
