/// Watches values stream past (activations during calibration, or weights) and proposes the
/// range a quantizer should cover.
///
/// Observers skip NaN and infinite values. Before anything finite was observed, `range()`
/// is `(0, 0)`. Memory stays bounded however much is observed.
public protocol RangeObserver {
    /// Takes in one batch of values.
    mutating func observe(_ x: UnsafeBufferPointer<Float>)
    /// The proposed range, `min ≤ max`.
    func range() -> (min: Float, max: Float)
}

extension RangeObserver {
    /// Array form of `observe(_:)`.
    public mutating func observe(_ x: [Float]) {
        x.withUnsafeBufferPointer { observe($0) }
    }
}

/// The smallest and largest finite value of a batch, or nil when it has none.
func finiteMinMax(_ x: UnsafeBufferPointer<Float>) -> (min: Float, max: Float)? {
    var mn = Float.infinity, mx = -Float.infinity
    for v in x where v.isFinite {
        mn = min(mn, v)
        mx = max(mx, v)
    }
    return mn <= mx ? (mn, mx) : nil
}

/// The exact smallest and largest value seen.
public struct MinMaxObserver: RangeObserver, Sendable {
    private var seen: (min: Float, max: Float)?

    /// An observer that has seen nothing.
    public init() {}

    /// Widens the range to include the batch.
    public mutating func observe(_ x: UnsafeBufferPointer<Float>) {
        guard let b = finiteMinMax(x) else { return }
        seen = seen.map { (min($0.min, b.min), max($0.max, b.max)) } ?? b
    }

    /// The smallest and largest value seen.
    public func range() -> (min: Float, max: Float) { seen ?? (0, 0) }
}

/// An exponential moving average of each batch's min and max:
/// `running = momentum · running + (1 − momentum) · batch`, starting from the first batch.
/// Outliers in a single batch move it only by `1 − momentum` of their excess.
public struct MovingAverageMinMaxObserver: RangeObserver, Sendable {
    /// The weight kept by the running value at each batch, in [0, 1].
    public let momentum: Float
    private var running: (min: Float, max: Float)?

    /// An observer with the given momentum (0.9 by default).
    public init(momentum: Float = 0.9) {
        precondition((0...1).contains(momentum), "momentum must be in [0, 1]")
        self.momentum = momentum
    }

    /// Blends the batch's min and max into the running ones.
    public mutating func observe(_ x: UnsafeBufferPointer<Float>) {
        guard let b = finiteMinMax(x) else { return }
        let m = momentum
        running = running.map { (m * $0.min + (1 - m) * b.min, m * $0.max + (1 - m) * b.max) } ?? b
    }

    /// The running averages.
    public func range() -> (min: Float, max: Float) { running ?? (0, 0) }
}

/// A uniform random sample of bounded size from everything observed (reservoir sampling
/// with a fixed seed, so the same input gives the same sample). Exact — every value kept —
/// until more than `capacity` values were observed.
public struct Reservoir: Sendable {
    /// The most values kept.
    public let capacity: Int
    /// The kept values, in no particular order.
    public private(set) var values: [Float] = []
    /// How many finite values were observed in all.
    public private(set) var seen = 0
    private var state: UInt64 = 0x5EED_0F5A_4D93_1234

    /// An empty reservoir keeping at most `capacity` values.
    public init(capacity: Int) {
        precondition(capacity > 0, "Reservoir capacity must be positive")
        self.capacity = capacity
    }

    /// Offers every finite value of the batch.
    public mutating func add(_ x: UnsafeBufferPointer<Float>) {
        for v in x where v.isFinite {
            seen += 1
            if values.count < capacity {
                values.append(v)
            } else {
                let j = Int(nextRandom() % UInt64(seen))
                if j < capacity { values[j] = v }
            }
        }
    }

    /// SplitMix64.
    private mutating func nextRandom() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The `q`-quantile (0…1) of ascending `sorted`, interpolating linearly between order
/// statistics.
func quantile(sorted: [Float], _ q: Double) -> Float {
    guard !sorted.isEmpty else { return 0 }
    let position = min(max(q, 0), 1) * Double(sorted.count - 1)
    let i = Int(position), frac = Float(position - Double(i))
    return i + 1 < sorted.count ? sorted[i] + (sorted[i + 1] - sorted[i]) * frac : sorted[i]
}

/// Clips the tails: the range from the `(100 − p)`-th to the `p`-th percentile of the values
/// seen, computed exactly on a bounded random sample (`Reservoir`; exact overall until more
/// than `capacity` values were seen).
public struct PercentileObserver: RangeObserver, Sendable {
    /// The upper percentile, e.g. 99.9 (in 50…100).
    public let percentile: Double
    private var sample: Reservoir

    /// An observer for percentile `p` (99.99 by default) keeping at most `capacity` values.
    public init(percentile p: Double = 99.99, capacity: Int = 1 << 16) {
        precondition((50...100).contains(p), "percentile must be in 50...100")
        percentile = p
        sample = Reservoir(capacity: capacity)
    }

    /// Adds the batch to the sample.
    public mutating func observe(_ x: UnsafeBufferPointer<Float>) { sample.add(x) }

    /// The lower and upper percentiles of the sample.
    public func range() -> (min: Float, max: Float) {
        let s = sample.values.sorted()
        return (quantile(sorted: s, 1 - percentile / 100), quantile(sorted: s, percentile / 100))
    }
}
