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

        /// Without importance, ggml's reference encoder: each group's scale and minimum by
        /// the absolute-error search (weights |x|), both quantized to 4 bits against the
        /// block's largest. With importance, llama.cpp's imatrix encoder: the squared-error
        /// search weighted by qw·√(σ² + x²), then the 4-bit scales and minimums fitted by a
        /// weighted search of their own. Either way the quants are then recomputed from
        /// the stored (rounded) scales.
        static func quantize(_ x: UnsafePointer<Float>, count n: Int, into dst: UnsafeMutableRawPointer,
                             importance qw: UnsafePointer<Float>?) {
            // floats: weights 256, scales 16, mins 16, sw 16; bytes: L 256, Ls 16, Lm 16;
            // lanes: x, weights, L, aux (16 each)
            withScratch(floats: 304, bytes: 288, lanes: 64) { f, b, v in
                let weights = f, scales = f + 256, mins = f + 272, sw = f + 288
                let L = b, Ls = b + 256, Lm = b + 272
                let vx = v, vw = v + 16, vL = v + 32, vaux = v + 48
                for blk in 0..<n / 256 {
                    let xb = x + 256 * blk, y = dst + 84 * blk
                    if let qw {
                        let qb = qw + 256 * blk
                        let sigma2 = sumOfSquares(xb, 256) / 256
                        for i in 0..<256 { weights[i] = importanceWeight(qb[i], sigma2, xb[i]) }
                        for j in 0..<16 {
                            var sum: Float = 0
                            for l in 0..<16 { sum += weights[16 * j + l] }
                            sw[j] = sum
                        }
                    } else {
                        for i in 0..<256 { weights[i] = abs(xb[i]) }
                    }
                    for half in 0..<2 {  // groups 8·half … 8·half + 7 side by side
                        let g0 = 8 * half
                        loadLanes(xb + 16 * g0, stride: 16, lanes: 8, n: 16, into: vx)
                        loadLanes(weights + 16 * g0, stride: 16, lanes: 8, n: 16, into: vw)
                        let (s, m) = qw != nil
                            ? LaneSearch.withMinimum(16, nmax: 3, vx, weights: vw, vL, vaux,
                                                     rmin: -0.9, rdelta: 0.05, steps: 36, useMAD: false)
                            : LaneSearch.withMinimum(16, nmax: 3, vx, weights: vw, vL, vaux,
                                                     rmin: -0.5, rdelta: 0.1, steps: 15, useMAD: true)
                        storeLanes(vL, stride: 16, lanes: 8, n: 16, into: L + 16 * g0)
                        for g in 0..<8 { scales[g0 + g] = s[g]; mins[g0 + g] = m[g] }
                    }
                    if qw != nil {
                        let dm = ScaleSearch.positive(16, nmax: 15, scales, Ls, weights: sw)
                        let mm = ScaleSearch.positive(16, nmax: 15, mins, Lm, weights: sw)
                        y.setF16(80, dm)
                        y.setF16(82, mm)
                        for j in 0..<16 { y.setU8(j, Ls[j] | Lm[j] << 4) }
                    } else {
                        var maxScale: Float = 0, maxMin: Float = 0
                        for j in 0..<16 {
                            if scales[j] > maxScale { maxScale = scales[j] }
                            if mins[j] > maxMin { maxMin = mins[j] }
                        }
                        if maxScale > 0 {
                            let iscale = 15 / maxScale
                            for j in 0..<16 { y.setU8(j, UInt8(truncatingIfNeeded: nearestInt(iscale * scales[j]))) }
                            y.setF16(80, maxScale / 15)
                        } else {
                            for j in 0..<16 { y.setU8(j, 0) }
                            y.setF16(80, 0)
                        }
                        if maxMin > 0 {
                            let iscale = 15 / maxMin
                            for j in 0..<16 {
                                y.setU8(j, y.u8(j) | UInt8(truncatingIfNeeded: nearestInt(iscale * mins[j]) << 4))
                            }
                            y.setF16(82, maxMin / 15)
                        } else {
                            y.setF16(82, 0)
                        }
                    }
                    // Requantize against the stored scales; groups with a zero scale keep
                    // the search's quants.
                    let d = UnsafeRawPointer(y).f16(80), dmin = UnsafeRawPointer(y).f16(82)
                    for j in 0..<16 {
                        let sc = y.u8(j)
                        let dl = d * Float(sc & 0x0F)
                        if dl == 0 { continue }
                        let ml = dmin * Float(sc >> 4)
                        for i in 0..<16 {
                            let l = nearestInt((xb[16 * j + i] + ml) / dl)
                            L[16 * j + i] = UInt8(truncatingIfNeeded: Swift.max(0, Swift.min(3, l)))
                        }
                    }
                    packTwoBits(y + 16, L)
                }
            }
        }
    }
}

/// Packs 256 two-bit values (0…3) as Q2_K and Q3_K store them: weight 128h + 32s + l in
/// bits 2s…2s+1 of byte 32h + l.
@inline(__always)
func packTwoBits(_ qs: UnsafeMutableRawPointer, _ L: UnsafePointer<UInt8>) {
    for h in 0..<2 {
        let Lh = L + 128 * h
        for l in 0..<32 {
            qs.setU8(32 * h + l, Lh[l] | Lh[l + 32] << 2 | Lh[l + 64] << 4 | Lh[l + 96] << 6)
        }
    }
}
