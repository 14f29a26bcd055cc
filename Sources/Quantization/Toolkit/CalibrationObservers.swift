import Foundation

/// Chooses how far to clip by trying it: for clipping ratios r = 1/n, 2/n, …, 1 it
/// quantizes the observed values with `grid` over `[r·min, r·max]` and keeps the ratio with
/// the smallest mean squared error (the largest on ties). The error is measured on a bounded
/// random sample (`Reservoir`); min and max are exact.
public struct MSEClippingObserver: RangeObserver, Sendable {
    /// The grid the range is for.
    public let grid: AffineGrid
    /// The number of clipping ratios tried.
    public let candidates: Int
    private var extremes = MinMaxObserver()
    private var sample: Reservoir

    /// An observer tuning the range for `grid`, trying `candidates` ratios (100 by default),
    /// measuring on at most `capacity` values.
    public init(grid: AffineGrid, candidates: Int = 100, capacity: Int = 1 << 16) {
        precondition(candidates > 0, "MSEClippingObserver needs at least one candidate")
        self.grid = grid
        self.candidates = candidates
        sample = Reservoir(capacity: capacity)
    }

    /// Records the batch's extremes and adds it to the sample.
    public mutating func observe(_ x: UnsafeBufferPointer<Float>) {
        extremes.observe(x)
        sample.add(x)
    }

    /// The mean squared error of `grid` over `[min, max]` on the sample.
    public func meanSquaredError(min: Float, max: Float) -> Double {
        let p = grid.parameters(min: min, max: max)
        var sum = 0.0
        for v in sample.values {
            let d = Double(v - grid.fakeQuantize(v, p))
            sum += d * d
        }
        return sample.values.isEmpty ? 0 : sum / Double(sample.values.count)
    }

    /// The clipped range with the smallest error.
    public func range() -> (min: Float, max: Float) {
        let (mn, mx) = extremes.range()
        var best = (min: mn, max: mx), bestError = Double.infinity
        for k in stride(from: candidates, through: 1, by: -1) {
            let r = Float(k) / Float(candidates)
            let e = meanSquaredError(min: r * mn, max: r * mx)
            if e < bestError {
                bestError = e
                best = (r * mn, r * mx)
            }
        }
        return best
    }
}

/// Entropy calibration in the manner of TensorRT's int8 calibrator: a histogram of |x| with
/// `bins` bins (2048), then, for every threshold from `levels` bins up to all of them, the
/// KL divergence between the clipped reference distribution P (values beyond the threshold
/// folded into its last bin) and Q: the kept histogram bins (tail not folded) merged into
/// `levels = 2^(bits−1)` quantization bins and spread back evenly over the bins where P is
/// non-empty. The threshold with the least divergence gives the symmetric range `[−T, T]`
/// (intersected with what was seen). Because Q lacks the folded tail, clipping much of the
/// distribution is penalised, while a threshold below a rare outlier costs little.
///
/// When a batch exceeds the histogram's range,
/// the range doubles as often as needed and adjacent bins merge, so memory stays `bins`.
public struct EntropyObserver: RangeObserver, Sendable {
    /// Bits of the symmetric grid the range is for.
    public let bits: Int
    /// Histogram bins.
    public let bins: Int
    /// Counts of |x| per bin over `[0, histogramMax)`.
    public private(set) var histogram: [Double]
    /// The upper edge of the histogram.
    public private(set) var histogramMax: Float = 0
    private var extremes = MinMaxObserver()

    /// An observer for a `bits`-bit symmetric grid (8 by default) with `bins` bins (2048).
    public init(bits: Int = 8, bins: Int = 2048) {
        precondition((2...16).contains(bits) && bins >= 1 << (bits - 1), "EntropyObserver: bins must be ≥ 2^(bits−1)")
        self.bits = bits
        self.bins = bins
        histogram = [Double](repeating: 0, count: bins)
    }

    /// Adds the batch's magnitudes to the histogram, widening it first if needed.
    public mutating func observe(_ x: UnsafeBufferPointer<Float>) {
        guard let b = finiteMinMax(x) else { return }
        extremes.observe(x)
        let top = max(-b.min, b.max)
        if histogramMax == 0 {
            histogramMax = top
        } else if top > histogramMax {
            var factor = 1
            while histogramMax * Float(factor) < top, factor < bins { factor *= 2 }
            var merged = [Double](repeating: 0, count: bins)
            for i in 0..<bins { merged[i / factor] += histogram[i] }
            histogram = merged
            histogramMax *= Float(factor)
            if histogramMax < top { histogramMax = top }  // a jump beyond bins× the old range
        }
        guard histogramMax > 0 else {
            histogram[0] += Double(x.filter(\.isFinite).count)
            return
        }
        let perUnit = Float(bins) / histogramMax
        for v in x where v.isFinite {
            histogram[min(Int(abs(v) * perUnit), bins - 1)] += 1
        }
    }

    /// The KL divergence (natural log) of the reference and quantized distributions when
    /// the first `threshold` bins are kept (`2^(bits−1) ≤ threshold ≤ bins`).
    public func divergence(threshold: Int) -> Double {
        let levels = 1 << (bits - 1)
        var p = Array(histogram[0..<threshold])
        p[threshold - 1] += histogram[threshold...].reduce(0, +)
        var q = [Double](repeating: 0, count: threshold)
        for j in 0..<levels {
            let lo = j * threshold / levels, hi = (j + 1) * threshold / levels
            var mass = 0.0, nonEmpty = 0
            for i in lo..<hi {
                mass += histogram[i]
                if p[i] > 0 { nonEmpty += 1 }
            }
            guard nonEmpty > 0 else { continue }
            for i in lo..<hi where p[i] > 0 { q[i] = mass / Double(nonEmpty) }
        }
        let pTotal = p.reduce(0, +), qTotal = q.reduce(0, +)
        guard pTotal > 0 else { return 0 }
        guard qTotal > 0 else { return .infinity }
        var kl = 0.0
        for i in 0..<threshold where p[i] > 0 {
            let pi = p[i] / pTotal, qi = max(q[i] / qTotal, Self.floor)
            kl += pi * log(pi / qi)
        }
        return kl
    }

    /// Stands in for a zero probability in Q where P has mass (the folded tail landing in
    /// an otherwise empty quantization bin), so such thresholds are heavily penalised
    /// rather than infinite.
    static let floor = 1e-12

    /// The threshold bin count with the least divergence (the largest on ties).
    public func bestThreshold() -> Int {
        var best = bins, bestKL = Double.infinity
        for t in stride(from: bins, through: 1 << (bits - 1), by: -1) {
            let kl = divergence(threshold: t)
            if kl < bestKL - 1e-12 {
                bestKL = kl
                best = t
            }
        }
        return best
    }

    /// `[−T, T]` for the best threshold T, intersected with the observed range.
    public func range() -> (min: Float, max: Float) {
        guard histogramMax > 0 else { return extremes.range() }
        let t = Float(bestThreshold()) * histogramMax / Float(bins)
        let (mn, mx) = extremes.range()
        return (max(-t, mn), min(t, mx))
    }
}
