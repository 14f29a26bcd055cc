import Tensors

// The non-linear 4-bit kinds: a 4-bit index into a fixed 16-entry codebook of int8 values,
// denser near zero (where weights are), times a scale.

extension Codecs {
    /// The IQ4 codebook, shared by IQ4_NL and IQ4_XS (ggml's `kvalues_iq4nl`).
    static let iq4Values: [Int8] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]
    /// `iq4Values` as floats, for the encoders.
    static let iq4FloatValues: [Float] = iq4Values.map { Float($0) }

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

        /// llama.cpp's encoder (`quantize_iq4_nl`): the block's scale by `IQ4.groupScale`,
        /// stored as f16, and the indices recomputed from the unrounded scale.
        static func quantize(_ x: UnsafePointer<Float>, count n: Int, into dst: UnsafeMutableRawPointer,
                             importance qw: UnsafePointer<Float>?) {
            iq4FloatValues.withUnsafeBufferPointer { kv in
                withScratch(floats: 256, bytes: 32, lanes: 64) { w, L, v in
                    let kv = kv.baseAddress!, vx = v, vw = v + 32
                    for b0 in stride(from: 0, to: n / 32, by: 8) {  // eight blocks side by side
                        let lanes = Swift.min(8, n / 32 - b0), xb = x + 32 * b0
                        for g in 0..<lanes {
                            IQ4.weights(xb + 32 * g, importance: qw.map { $0 + 32 * (b0 + g) },
                                        sigma2: sumOfSquares(xb + 32 * g, 32) * (Float(2) / 32), into: w + 32 * g)
                        }
                        loadLanes(xb, stride: 32, lanes: lanes, n: 32, into: vx)
                        loadLanes(w, stride: 32, lanes: lanes, n: 32, into: vw)
                        let scales = LaneSearch.iq4Scale(vx, weights: vw, kv)
                        for g in 0..<lanes {
                            let d = scales[g], xg = xb + 32 * g, y = dst + 18 * (b0 + g)
                            y.setF16(0, d)
                            let id: Float = d != 0 ? 1 / d : 0
                            IQ4.nearestIndices(xg, scale: id, n: 32, into: L)
                            IQ4.packNibbles(y + 2, L, groups: 1)
                        }
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

        /// llama.cpp's encoder (`quantize_iq4_xs`): each group's scale by `IQ4.groupScale`,
        /// then 6-bit group scales against the largest and the indices recomputed from them.
        static func quantize(_ x: UnsafePointer<Float>, count n: Int, into dst: UnsafeMutableRawPointer,
                             importance qw: UnsafePointer<Float>?) {
            iq4FloatValues.withUnsafeBufferPointer { kv in
                withScratch(floats: 256, bytes: 256, lanes: 64) { w, L, v in
                    let kv = kv.baseAddress!, vx = v, vw = v + 32
                    for blk in 0..<n / 256 {
                        let xb = x + 256 * blk, y = dst + 136 * blk
                        IQ4.weights(xb, importance: qw.map { $0 + 256 * blk },
                                    sigma2: sumOfSquares(xb, 256) * (Float(2) / 256), into: w, count: 256)
                        loadLanes(xb, stride: 32, lanes: 8, n: 32, into: vx)  // the eight groups side by side
                        loadLanes(w, stride: 32, lanes: 8, n: 32, into: vw)
                        let scales = LaneSearch.iq4Scale(vx, weights: vw, kv)
                        var maxScale: Float = 0, amaxScale: Float = 0
                        for g in 0..<8 where abs(scales[g]) > amaxScale {
                            amaxScale = abs(scales[g]); maxScale = scales[g]
                        }
                        let d = -maxScale / 32
                        y.setF16(0, d)
                        let id: Float = d != 0 ? 1 / d : 0
                        var scalesH: UInt16 = 0, scalesL: UInt32 = 0
                        for g in 0..<8 {
                            let l = Swift.max(-32, Swift.min(31, nearestInt(id * scales[g])))
                            let dl = d * Float(l)  // the f32 super-scale, as llama.cpp does
                            let idl: Float = dl != 0 ? 1 / dl : 0
                            IQ4.nearestIndices(xb + 32 * g, scale: idl, n: 32, into: L + 32 * g)
                            let biased = UInt32(l + 32)
                            scalesL |= (biased & 0x0F) << (4 * g)
                            scalesH |= UInt16(biased >> 4) << (2 * g)
                        }
                        y.setU16(2, scalesH)
                        y.setU32(4, scalesL)
                        IQ4.packNibbles(y + 8, L, groups: 8)
                    }
                }
            }
        }
    }
}

/// The search both IQ4 encoders share (llama.cpp's `quantize_row_iq4_nl_impl`).
enum IQ4 {
    /// The error weights of `count` values: x², or qw·√(σ² + x²) with importance.
    @inline(__always)
    static func weights(_ x: UnsafePointer<Float>, importance qw: UnsafePointer<Float>?, sigma2: Float,
                        into w: UnsafeMutablePointer<Float>, count: Int = 32) {
        if let qw {
            for j in 0..<count { w[j] = importanceWeight(qw[j], sigma2, x[j]) }
        } else {
            for j in 0..<count { w[j] = x[j] * x[j] }
        }
    }

    /// Index of the codebook entry nearest to `x` (binary search, ties to the upper entry
    /// when the two distances compare equal in float), as ggml's `best_index_int8`.
    @inline(__always)
    static func bestIndex(_ x: Float, _ kv: UnsafePointer<Float>) -> UInt8 {
        if x <= kv[0] { return 0 }
        if x >= kv[15] { return 15 }
        var lo = 0, hi = 15
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if x < kv[mid] { hi = mid } else { lo = mid }
        }
        return UInt8(x - kv[hi - 1] < kv[hi] - x ? hi - 1 : hi)
    }

    /// The scale of one group of 32 for the codebook: starting from the scale that maps
    /// the largest-magnitude weight onto −127, tries the 15 scales that map it onto
    /// −127 − 7…−127 + 7, each refitted by least squares with error weights `weight`
    /// (x², or qw·√(σ² + x²) with importance), and keeps the one explaining the most
    /// weighted energy. Writes the indices of the starting scale into `L` (the encoders
    /// recompute them) and returns the scale; 0 for an all-zero group. The encoders run
    /// `LaneSearch.iq4Scale`, this search for eight groups at once; this is its reference.
    static func groupScale(
        _ xb: UnsafePointer<Float>, weights weight: UnsafePointer<Float>,
        _ L: UnsafeMutablePointer<UInt8>, _ kv: UnsafePointer<Float>
    ) -> Float {
        var amax: Float = 0, max: Float = 0
        for j in 0..<32 where abs(xb[j]) > amax {
            amax = abs(xb[j]); max = xb[j]
        }
        if amax < groupMaxEpsilon { return 0 }
        var d = -max / kv[0]
        var id = 1 / d
        var sumqx: Float = 0, sumq2: Float = 0
        for j in 0..<32 {
            let l = bestIndex(id * xb[j], kv)
            L[j] = l
            let q = kv[Int(l)], w = weight[j]
            sumqx += w * q * xb[j]
            sumq2 += w * q * q
        }
        d = sumq2 > 0 ? sumqx / sumq2 : 0
        var best = d * sumqx
        for step in -7...7 {
            id = Float(step - 127) / max
            sumqx = 0; sumq2 = 0
            for j in 0..<32 {
                let q = kv[Int(bestIndex(id * xb[j], kv))], w = weight[j]
                sumqx += w * q * xb[j]
                sumq2 += w * q * q
            }
            if sumq2 > 0 && sumqx * sumqx > best * sumq2 {
                d = sumqx / sumq2
                best = d * sumqx
            }
        }
        return d
    }

    /// Packs 32·`groups` 4-bit indices: group g's weight l (l < 16) in the low nibble of
    /// byte 16g + l, weight l + 16 in its high nibble.
    @inline(__always)
    static func packNibbles(_ qs: UnsafeMutableRawPointer, _ L: UnsafePointer<UInt8>, groups: Int) {
        for g in 0..<groups {
            for j in 0..<16 {
                qs.setU8(16 * g + j, L[32 * g + j] | L[32 * g + 16 + j] << 4)
            }
        }
    }
}

// The IQ4 scale search for eight groups at once (see LaneSearch.swift).
extension LaneSearch {
    /// `IQ4.groupScale` for eight groups of 32 with weights `w` (already x² or
    /// qw·√(σ² + x²)). Returns the scales only; callers recompute the indices.
    static func iq4Scale(_ x: UnsafePointer<Lanes>, weights w: UnsafePointer<Lanes>,
                         _ kv: UnsafePointer<Float>) -> Lanes {
        IQ4.laneMidpoints.withUnsafeBufferPointer { mid in
            IQ4.laneSteps.withUnsafeBufferPointer { steps in
                iq4Scale(x, weights: w, kv, mid.baseAddress!, steps.baseAddress!)
            }
        }
    }

    private static func iq4Scale(_ x: UnsafePointer<Lanes>, weights w: UnsafePointer<Lanes>,
                                 _ kv: UnsafePointer<Float>, _ mid: UnsafePointer<Lanes>,
                                 _ steps: UnsafePointer<Lanes>) -> Lanes {
        var max = Lanes.zero, amax = Lanes.zero
        for j in 0..<32 {
            let ax = magnitude(x[j])
            let larger = ax .> amax
            amax.replace(with: ax, where: larger)
            max.replace(with: x[j], where: larger)
        }
        let zero = amax .< groupMaxEpsilon
        var d = negated(max) / kv[0]
        var id = 1 / d
        var sumqx = Lanes.zero, sumq2 = Lanes.zero
        for j in 0..<32 {
            let q = nearestValue(id * x[j], kv, mid, steps)
            let wq = w[j] * q
            sumqx += wq * x[j]
            sumq2 += wq * q
        }
        d = (sumqx / sumq2).replacing(with: 0, where: .!(sumq2 .> 0))
        var best = d * sumqx
        for step in -7...7 {
            id = Float(step - 127) / max
            sumqx = .zero; sumq2 = .zero
            for j in 0..<32 {
                let q = nearestValue(id * x[j], kv, mid, steps)
                let wq = w[j] * q
                sumqx += wq * x[j]
                sumq2 += wq * q
            }
            let better = (sumq2 .> 0) .& (sumqx * sumqx .> best * sumq2)
            d.replace(with: sumqx / sumq2, where: better)
            best.replace(with: d * sumqx, where: better)
        }
        return d.replacing(with: 0, where: zero)
    }

    /// The codebook value `IQ4.bestIndex` picks, per lane, given the codebook `kv`, its
    /// `midpoints` and `steps` (see `IQ4.midpoints`) broadcast to all lanes: kv[0] plus
    /// the steps of the midpoints at or below x; NaN, which the binary search sends to the
    /// last entry, is handled apart.
    @inline(__always)
    static func nearestValue(_ x: Lanes, _ kv: UnsafePointer<Float>, _ midpoints: UnsafePointer<Lanes>,
                             _ steps: UnsafePointer<Lanes>) -> Lanes {
        var q = Lanes(repeating: kv[0])
        for k in 0..<15 {
            q += Lanes.zero.replacing(with: steps[k], where: x .>= midpoints[k])
        }
        return q.replacing(with: kv[15], where: x .!= x)
    }
}

extension IQ4 {
    /// Midpoints between neighbouring codebook entries: (kv[k] + kv[k + 1]) / 2, exact.
    ///
    /// ggml's tie-break `x − lo < hi − x` (`bestIndex`) equals `x < (lo + hi)/2` for every
    /// float x between neighbours lo and hi: where the two sides are close they are
    /// computed exactly, and elsewhere rounding cannot reorder them. So the nearest entry's
    /// index is the number of midpoints at or below x (NaN apart).
    static let midpoints: [Float] = (0..<15).map { (Codecs.iq4FloatValues[$0] + Codecs.iq4FloatValues[$0 + 1]) / 2 }
    /// Gaps between neighbouring codebook entries.
    static let steps: [Float] = (0..<15).map { Codecs.iq4FloatValues[$0 + 1] - Codecs.iq4FloatValues[$0] }
    static let laneMidpoints: [Lanes] = midpoints.map { Lanes(repeating: $0) }
    static let laneSteps: [Lanes] = steps.map { Lanes(repeating: $0) }

    /// `bestIndex` of `scale · x[j]` for j < `n` (a multiple of 8), eight at a time.
    @inline(__always)
    static func nearestIndices(_ x: UnsafePointer<Float>, scale: Float, n: Int, into L: UnsafeMutablePointer<UInt8>) {
        laneMidpoints.withUnsafeBufferPointer { mid in
            let mid = mid.baseAddress!
            for j0 in stride(from: 0, to: n, by: 8) {
                let v = scale * UnsafeRawPointer(x + j0).loadUnaligned(as: Lanes.self)
                var index = LaneInts.zero
                for k in 0..<15 {
                    index &+= LaneInts.zero.replacing(with: 1, where: v .>= mid[k])
                }
                index.replace(with: 15, where: v .!= v)
                for l in 0..<8 { L[j0 + l] = UInt8(truncatingIfNeeded: index[l]) }
            }
        }
    }
}
