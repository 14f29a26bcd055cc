import Tensors

// The scale searches behind ggml's k-quant and IQ4 quantizers (ggml-quants.c), shared by
// the per-type encoders. Each one picks, for a small group of weights, the quants L and
// the scale (and minimum) that make d·L (+ m) closest to the weights in a weighted
// least-squares sense, trying a few candidate scales and refitting each.
//
// Every function performs the same float operations in the same order as its ggml
// counterpart (no fused multiply-add, sums accumulated left to right), so the encoders
// built on them reproduce llama.cpp's bytes exactly; keep it that way when editing.
// The encoders run most searches eight groups at a time (LaneSearch.swift); the scalar
// versions here are their reference (QuantizeSearchTests compares the two bit for bit)
// and serve the one-off searches over a block's sub-scales.

/// Rounds to the nearest integer, ties to even, by ggml's trick of adding 1.5 × 2^23 and
/// reading the mantissa. Exact for |x| ≤ 2^22; beyond that (or for NaN) the result is
/// meaningless but defined, as in ggml, which keeps hostile input from trapping.
@inline(__always)
func nearestInt(_ x: Float) -> Int32 {
    let v = x + 12_582_912
    return Int32(bitPattern: v.bitPattern & 0x007F_FFFF) - 0x0040_0000
}

/// C's float → integer conversion (truncation toward zero) for values that should be in
/// −2^31…2^31; NaN and out-of-range values give 0 instead of trapping.
@inline(__always)
func truncatedInt(_ x: Float) -> Int32 {
    x > -2_147_483_648 && x < 2_147_483_648 ? Int32(x) : 0
}

/// Groups whose largest magnitude is below this count as all zero (ggml's GROUP_MAX_EPS).
let groupMaxEpsilon: Float = 1e-15

enum ScaleSearch {
    /// Symmetric quants l ∈ −nmax…nmax−1 for `n` weights: starts from the scale that maps
    /// the largest-magnitude weight to −nmax, then tries the 18 scales that map it to
    /// −(nmax ± 0.1k), k = 1…9, keeping the one whose least-squares refit explains the most
    /// weighted energy (max (Σwxl)²/Σwl²). Weights default to x² (ggml's `rmse_type` 1).
    ///
    /// Writes `l + nmax` into `L` and returns the refitted scale (ggml's `make_qx_quants`).
    static func symmetric(
        _ n: Int, nmax: Int32, _ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<Int8>,
        weights qw: UnsafePointer<Float>?
    ) -> Float {
        var max: Float = 0, amax: Float = 0
        for i in 0..<n {
            let ax = abs(x[i])
            if ax > amax { amax = ax; max = x[i] }
        }
        if amax < groupMaxEpsilon {
            for i in 0..<n { L[i] = 0 }
            return 0
        }
        let fmax = Float(nmax)
        var iscale = -fmax / max
        var sumlx: Float = 0, suml2: Float = 0
        for i in 0..<n {
            let l = Swift.max(-nmax, Swift.min(nmax - 1, nearestInt(iscale * x[i])))
            L[i] = Int8(truncatingIfNeeded: l + nmax)
            let w = qw?[i] ?? x[i] * x[i]
            let fl = Float(l)
            sumlx += w * x[i] * fl
            suml2 += w * fl * fl
        }
        var scale = suml2 != 0 ? sumlx / suml2 : 0
        var best = scale * sumlx
        for step in -9...9 where step != 0 {
            iscale = -(fmax + 0.1 * Float(step)) / max
            sumlx = 0; suml2 = 0
            for i in 0..<n {
                let l = Swift.max(-nmax, Swift.min(nmax - 1, nearestInt(iscale * x[i])))
                let w = qw?[i] ?? x[i] * x[i]
                let fl = Float(l)
                sumlx += w * x[i] * fl
                suml2 += w * fl * fl
            }
            if suml2 > 0 && sumlx * sumlx > best * suml2 {
                for i in 0..<n {
                    let l = Swift.max(-nmax, Swift.min(nmax - 1, nearestInt(iscale * x[i])))
                    L[i] = Int8(truncatingIfNeeded: l + nmax)
                }
                scale = sumlx / suml2
                best = scale * sumlx
            }
        }
        return scale
    }

    /// Symmetric quants l ∈ −nmax…nmax−1 with x²-weighted error, refined coordinate-wise:
    /// up to five sweeps moving single quants to the value the current least-squares
    /// scale suggests whenever that raises (Σwxl)²/Σwl² (ggml's `make_q3_quants` with
    /// `do_rmse`). Writes `l + nmax` into `L`; returns the scale.
    static func symmetricRefined(
        _ n: Int, nmax: Int32, _ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<Int8>
    ) -> Float {
        var max: Float = 0, amax: Float = 0
        for i in 0..<n {
            let ax = abs(x[i])
            if ax > amax { amax = ax; max = x[i] }
        }
        if amax < groupMaxEpsilon {
            for i in 0..<n { L[i] = 0 }
            return 0
        }
        let iscale = -Float(nmax) / max
        var sumlx: Float = 0, suml2: Float = 0
        for i in 0..<n {
            let l = Swift.max(-nmax, Swift.min(nmax - 1, nearestInt(iscale * x[i])))
            L[i] = Int8(truncatingIfNeeded: l)
            let w = x[i] * x[i]
            sumlx += w * x[i] * Float(l)
            suml2 += w * Float(l) * Float(l)
        }
        for _ in 0..<5 {
            var changed = 0
            for i in 0..<n {
                let w = x[i] * x[i]
                let li = Float(L[i])
                var slx = sumlx - w * x[i] * li
                guard slx > 0 else { continue }
                var sl2 = suml2 - w * li * li
                let newL = Swift.max(-nmax, Swift.min(nmax - 1, nearestInt(x[i] * sl2 / slx)))
                if newL != Int32(L[i]) {
                    slx += w * x[i] * Float(newL)
                    sl2 += w * Float(newL) * Float(newL)
                    if sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        L[i] = Int8(truncatingIfNeeded: newL)
                        sumlx = slx; suml2 = sl2
                        changed += 1
                    }
                }
            }
            if changed == 0 { break }
        }
        for i in 0..<n { L[i] &+= Int8(truncatingIfNeeded: nmax) }
        return suml2 > 0 ? sumlx / suml2 : 0
    }

    /// Asymmetric quants l ∈ 0…nmax with a minimum: x ≈ scale·l − theMin. Starts from the
    /// min/max grid, then tries `steps + 1` scales (nmax + rmin + k·rdelta)/(max − min),
    /// for each refitting scale and minimum by weighted least squares (the minimum held at
    /// ≤ 0), and keeps the candidate with the smallest weighted error, squared or absolute
    /// (`useMAD`). ggml's `make_qkx2_quants`, and `make_qkx3_quants` with weights given.
    ///
    /// Writes the quants into `L` (using `Laux` as scratch); returns (scale, theMin ≥ 0).
    static func withMinimum(
        _ n: Int, nmax: Int32, _ x: UnsafePointer<Float>, weights: UnsafePointer<Float>,
        _ L: UnsafeMutablePointer<UInt8>, _ Laux: UnsafeMutablePointer<UInt8>,
        rmin: Float, rdelta: Float, steps: Int, useMAD: Bool
    ) -> (scale: Float, theMin: Float) {
        var min = x[0], max = x[0]
        var sumW = weights[0]
        var sumX = sumW * x[0]
        for i in 1..<n {
            if x[i] < min { min = x[i] }
            if x[i] > max { max = x[i] }
            let w = weights[i]
            sumW += w
            sumX += w * x[i]
        }
        if min > 0 { min = 0 }
        if max == min {
            for i in 0..<n { L[i] = 0 }
            return (0, -min)
        }
        let fnmax = Float(nmax)
        var iscale = fnmax / (max - min)
        var scale = 1 / iscale
        var bestError: Float = 0
        for i in 0..<n {
            let l = Swift.max(0, Swift.min(nmax, nearestInt(iscale * (x[i] - min))))
            L[i] = UInt8(truncatingIfNeeded: l)
            let diff = scale * Float(l) + min - x[i]
            bestError += weights[i] * (useMAD ? abs(diff) : diff * diff)
        }
        if steps < 1 { return (scale, -min) }
        for step in 0...steps {
            iscale = (rmin + rdelta * Float(step) + fnmax) / (max - min)
            var sumL: Float = 0, sumL2: Float = 0, sumXL: Float = 0
            for i in 0..<n {
                let l = Swift.max(0, Swift.min(nmax, nearestInt(iscale * (x[i] - min))))
                Laux[i] = UInt8(truncatingIfNeeded: l)
                let w = weights[i], fl = Float(l)
                sumL += w * fl
                sumL2 += w * fl * fl
                sumXL += w * fl * x[i]
            }
            let D = sumW * sumL2 - sumL * sumL
            guard D > 0 else { continue }
            var thisScale = (sumW * sumXL - sumX * sumL) / D
            var thisMin = (sumL2 * sumX - sumL * sumXL) / D
            if thisMin > 0 {
                thisMin = 0
                thisScale = sumXL / sumL2
            }
            var error: Float = 0
            for i in 0..<n {
                let diff = thisScale * Float(Laux[i]) + thisMin - x[i]
                error += weights[i] * (useMAD ? abs(diff) : diff * diff)
            }
            if error < bestError {
                for i in 0..<n { L[i] = Laux[i] }
                bestError = error
                scale = thisScale
                min = thisMin
            }
        }
        return (scale, -min)
    }

    /// Quantizes non-negative values (the sub-block scales or minimums of a super-block)
    /// to l ∈ 0…nmax under one scale, with importance `weights`: tries the max-based scale
    /// and eight nearby ones, keeps the lowest weighted error, then refines single quants
    /// as `symmetricRefined` does (ggml's `make_qp_quants`). Writes `L`; returns the scale.
    static func positive(
        _ n: Int, nmax: Int32, _ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<UInt8>,
        weights: UnsafePointer<Float>
    ) -> Float {
        var max: Float = 0
        for i in 0..<n { max = max > x[i] ? max : x[i] }
        if max < groupMaxEpsilon {
            for i in 0..<n { L[i] = 0 }
            return 0
        }
        let fnmax = Float(nmax)
        var iscale = fnmax / max
        for i in 0..<n { L[i] = UInt8(truncatingIfNeeded: nearestInt(iscale * x[i])) }
        let scale = 1 / iscale
        var bestMSE: Float = 0
        for i in 0..<n {
            let diff = x[i] - scale * Float(L[i])
            bestMSE += weights[i] * diff * diff
        }
        for step in -4...4 where step != 0 {
            let iscaleStep = (0.1 * Float(step) + fnmax) / max
            let scaleStep = 1 / iscaleStep
            var mse: Float = 0
            for i in 0..<n {
                let l = Swift.min(nmax, nearestInt(iscaleStep * x[i]))
                let diff = x[i] - scaleStep * Float(l)
                mse += weights[i] * diff * diff
            }
            if mse < bestMSE {
                bestMSE = mse
                iscale = iscaleStep
            }
        }
        var sumlx: Float = 0, suml2: Float = 0
        for i in 0..<n {
            let l = Swift.min(nmax, nearestInt(iscale * x[i]))
            L[i] = UInt8(truncatingIfNeeded: l)
            let w = weights[i], fl = Float(l)
            sumlx += w * x[i] * fl
            suml2 += w * fl * fl
        }
        for _ in 0..<5 {
            var changed = 0
            for i in 0..<n {
                let w = weights[i], li = Float(L[i])
                var slx = sumlx - w * x[i] * li
                var sl2 = suml2 - w * li * li
                guard slx > 0 && sl2 > 0 else { continue }
                let newL = Swift.min(nmax, nearestInt(x[i] * sl2 / slx))
                if newL != Int32(L[i]) {
                    slx += w * x[i] * Float(newL)
                    sl2 += w * Float(newL) * Float(newL)
                    if slx * slx * suml2 > sumlx * sumlx * sl2 {
                        L[i] = UInt8(truncatingIfNeeded: newL)
                        sumlx = slx; suml2 = sl2
                        changed += 1
                    }
                }
            }
            if changed == 0 { break }
        }
        return suml2 > 0 ? sumlx / suml2 : 0
    }
}

/// Stack scratch for an encoder: `floats` Floats and `bytes` bytes, valid inside `body`.
@inline(__always)
func withScratch<R>(
    floats: Int, bytes: Int,
    _ body: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<UInt8>) -> R
) -> R {
    withUnsafeTemporaryAllocation(of: Float.self, capacity: Swift.max(1, floats)) { f in
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Swift.max(1, bytes)) { b in
            body(f.baseAddress!, b.baseAddress!)
        }
    }
}

/// Σ x² of `n` floats, accumulated left to right (ggml's order).
@inline(__always)
func sumOfSquares(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var s: Float = 0
    for i in 0..<n { s += x[i] * x[i] }
    return s
}

/// The importance weight llama.cpp gives weight x under imatrix entry q: q·√(σ² + x²).
@inline(__always)
func importanceWeight(_ q: Float, _ sigma2: Float, _ x: Float) -> Float {
    q * (sigma2 + x * x).squareRoot()
}
