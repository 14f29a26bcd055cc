/// Keys and values of every past position, per layer, for incremental decoding.
///
/// Layout per layer: `[position][kvHead][headDim]`, so one position's keys are contiguous
/// and a head's keys are a strided matrix BLAS can read directly.
public final class KVCache {
    /// Positions stored so far.
    public private(set) var count = 0
    /// Positions the cache can hold.
    public let capacity: Int
    let rowWidth: Int
    var keys: [[Float]]
    var values: [[Float]]

    /// An empty cache for `hp`, holding up to `capacity` positions.
    public init(_ hp: LlamaHyperparameters, capacity: Int) {
        self.capacity = capacity
        rowWidth = hp.kvHeadCount * hp.headDim
        keys = Array(repeating: [Float](repeating: 0, count: capacity * rowWidth), count: hp.layerCount)
        values = keys
    }

    /// Forgets every position (the buffers are kept).
    public func reset() { count = 0 }

    /// Drops positions from `newCount` on.
    public func truncate(to newCount: Int) { count = min(count, max(0, newCount)) }

    func advance(by n: Int) { count += n }
}
