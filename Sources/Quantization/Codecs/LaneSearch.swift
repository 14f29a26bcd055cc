// The searches of ScaleSearch (and, in IQ4.swift, IQ4's), run for eight independent groups at once: lane g of
// every vector belongs to group g. Each lane performs exactly the float operations of the
// scalar search in the same order (branches become per-lane selects), so the results are
// bit-identical to it — and to ggml — while the eight dependency chains overlap. The
// candidate scales within one group cannot be batched instead: in ggml's min-scale
// search an accepted candidate moves the minimum the later ones start from.

/// Eight groups' values at one position.
typealias Lanes = SIMD8<Float>
typealias LaneInts = SIMD8<Int32>

/// `nearestInt` per lane.
@inline(__always)
func nearestInt(_ x: Lanes) -> LaneInts {
    let v = x + 12_582_912
    return (unsafeBitCast(v, to: LaneInts.self) & 0x007F_FFFF) &- 0x0040_0000
}

/// |x| per lane (clears the sign bit, as `fabsf`).
@inline(__always)
func magnitude(_ x: Lanes) -> Lanes {
    unsafeBitCast(unsafeBitCast(x, to: SIMD8<UInt32>.self) & 0x7FFF_FFFF, to: Lanes.self)
}

/// −x per lane by flipping the sign bit, as C's unary minus does (Swift's SIMD negation
/// computes 0 − x, which turns +0 into +0 rather than −0).
@inline(__always)
func negated(_ x: Lanes) -> Lanes {
    unsafeBitCast(unsafeBitCast(x, to: SIMD8<UInt32>.self) ^ 0x8000_0000, to: Lanes.self)
}

/// `l` clamped to lo…hi, as a float.
@inline(__always)
func clamped(_ l: LaneInts, _ lo: Int32, _ hi: Int32) -> Lanes {
    Lanes(pointwiseMax(pointwiseMin(l, LaneInts(repeating: hi)), LaneInts(repeating: lo)))
}

/// Lane g of `dst[i]` ← `src[g · stride + i]` for g < `lanes` (0 in the others), i < `n`.
@inline(__always)
func loadLanes(_ src: UnsafePointer<Float>, stride: Int, lanes: Int, n: Int, into dst: UnsafeMutablePointer<Lanes>) {
    if lanes == 8 {  // built from scalars at once: lane-by-lane inserts stall on the stack
        for i in 0..<n {
            let p = src + i
            dst[i] = Lanes(p[0], p[stride], p[2 * stride], p[3 * stride],
                           p[4 * stride], p[5 * stride], p[6 * stride], p[7 * stride])
        }
        return
    }
    for i in 0..<n {
        var v = Lanes.zero
        for g in 0..<lanes { v[g] = src[g * stride + i] }
        dst[i] = v
    }
}

/// `dst[g · stride + i]` ← lane g of `src[i]` (a small integer), g < `lanes`.
@inline(__always)
func storeLanes<T: FixedWidthInteger>(
    _ src: UnsafePointer<Lanes>, stride: Int, lanes: Int, n: Int, into dst: UnsafeMutablePointer<T>
) {
    for i in 0..<n {
        let v = src[i]  // (SIMD8<Int32>(_:) from floats is a slow generic path; go lane by lane)
        for g in 0..<lanes { dst[g * stride + i] = T(truncatingIfNeeded: Int32(v[g])) }
    }
}

/// Stack scratch for an encoder: `floats` Floats, `bytes` bytes and `lanes` eight-lane
/// vectors, valid inside `body`.
@inline(__always)
func withScratch<R>(
    floats: Int, bytes: Int, lanes: Int,
    _ body: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<UInt8>, UnsafeMutablePointer<Lanes>) -> R
) -> R {
    withUnsafeTemporaryAllocation(of: Lanes.self, capacity: lanes) { v in
        withScratch(floats: floats, bytes: bytes) { f, b in body(f, b, v.baseAddress!) }
    }
}

enum LaneSearch {
    /// `ScaleSearch.withMinimum` for eight groups of `n`: values `x[i]` and weights `w[i]`
    /// (i < n, lane = group). Writes the quants (as floats) into `L`, using `aux`.
    static func withMinimum(
        _ n: Int, nmax: Int32, _ x: UnsafePointer<Lanes>, weights w: UnsafePointer<Lanes>,
        _ L: UnsafeMutablePointer<Lanes>, _ aux: UnsafeMutablePointer<Lanes>,
        rmin: Float, rdelta: Float, steps: Int, useMAD: Bool
    ) -> (scale: Lanes, theMin: Lanes) {
        var min = x[0], max = x[0]
        var sumW = w[0]
        var sumX = sumW * x[0]
        for i in 1..<n {
            min.replace(with: x[i], where: x[i] .< min)
            max.replace(with: x[i], where: x[i] .> max)
            sumW += w[i]
            sumX += w[i] * x[i]
        }
        min.replace(with: 0, where: min .> 0)
        let flat = max .== min
        let fnmax = Float(nmax)
        var iscale = fnmax / (max - min)
        var scale = 1 / iscale
        var bestError = Lanes.zero
        for i in 0..<n {
            let l = clamped(nearestInt(iscale * (x[i] - min)), 0, nmax)
            L[i] = l
            let diff = scale * l + min - x[i]
            bestError += w[i] * (useMAD ? magnitude(diff) : diff * diff)
        }
        for step in 0...steps {
            iscale = (rmin + rdelta * Float(step) + fnmax) / (max - min)
            var sumL = Lanes.zero, sumL2 = Lanes.zero, sumXL = Lanes.zero
            for i in 0..<n {
                let l = clamped(nearestInt(iscale * (x[i] - min)), 0, nmax)
                aux[i] = l
                let wl = w[i] * l
                sumL += wl
                sumL2 += wl * l
                sumXL += wl * x[i]
            }
            let D = sumW * sumL2 - sumL * sumL
            var thisScale = (sumW * sumXL - sumX * sumL) / D
            var thisMin = (sumL2 * sumX - sumL * sumXL) / D
            let positive = thisMin .> 0
            thisMin.replace(with: 0, where: positive)
            thisScale.replace(with: sumXL / sumL2, where: positive)
            var error = Lanes.zero
            for i in 0..<n {
                let diff = thisScale * aux[i] + thisMin - x[i]
                error += w[i] * (useMAD ? magnitude(diff) : diff * diff)
            }
            let better = .!flat .& (D .> 0) .& (error .< bestError)
            guard any(better) else { continue }
            for i in 0..<n { L[i].replace(with: aux[i], where: better) }
            bestError.replace(with: error, where: better)
            scale.replace(with: thisScale, where: better)
            min.replace(with: thisMin, where: better)
        }
        if any(flat) {
            for i in 0..<n { L[i].replace(with: 0, where: flat) }
            scale.replace(with: 0, where: flat)
        }
        return (scale, negated(min))
    }

    /// `ScaleSearch.symmetric` for eight groups of `n` (weights x² when `w` is nil).
    /// Writes the quants l + nmax (as floats) into `L`, using `aux`.
    static func symmetric(
        _ n: Int, nmax: Int32, _ x: UnsafePointer<Lanes>, weights w: UnsafePointer<Lanes>?,
        _ L: UnsafeMutablePointer<Lanes>, _ aux: UnsafeMutablePointer<Lanes>
    ) -> Lanes {
        var max = Lanes.zero, amax = Lanes.zero
        for i in 0..<n {
            let ax = magnitude(x[i])
            let larger = ax .> amax
            amax.replace(with: ax, where: larger)
            max.replace(with: x[i], where: larger)
        }
        let zero = amax .< groupMaxEpsilon
        let fnmax = Float(nmax)
        var iscale = -fnmax / max
        var sumlx = Lanes.zero, suml2 = Lanes.zero
        for i in 0..<n {
            let l = clamped(nearestInt(iscale * x[i]), -nmax, nmax - 1)
            L[i] = l + fnmax
            let wi = w?[i] ?? x[i] * x[i]
            sumlx += wi * x[i] * l
            suml2 += wi * l * l
        }
        var scale = (sumlx / suml2).replacing(with: 0, where: suml2 .== 0)
        var best = scale * sumlx
        for step in -9...9 where step != 0 {
            iscale = -(fnmax + 0.1 * Float(step)) / max
            sumlx = .zero; suml2 = .zero
            for i in 0..<n {
                let l = clamped(nearestInt(iscale * x[i]), -nmax, nmax - 1)
                aux[i] = l
                let wi = w?[i] ?? x[i] * x[i]
                sumlx += wi * x[i] * l
                suml2 += wi * l * l
            }
            let better = (suml2 .> 0) .& (sumlx * sumlx .> best * suml2)
            guard any(better) else { continue }
            for i in 0..<n { L[i].replace(with: aux[i] + fnmax, where: better) }
            scale.replace(with: sumlx / suml2, where: better)
            best.replace(with: scale * sumlx, where: better)
        }
        if any(zero) {
            for i in 0..<n { L[i].replace(with: 0, where: zero) }
            scale.replace(with: 0, where: zero)
        }
        return scale
    }
}
