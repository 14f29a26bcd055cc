import Foundation

/// Rotary position embedding.
///
/// Pairs of dimensions of each query and key head are rotated by an angle
/// `position · base^(-2i/dims)`. GGUF files of the `llama` architecture store Q and K with
/// rows permuted so that the pairs are adjacent (`.interleaved`, ggml's "normal" mode);
/// Hugging Face checkpoints and GGUF `qwen2` pair dimension `i` with `i + dims/2`
/// (`.halves`, the "NeoX" mode).
public struct RoPE: Sendable {
    /// How the rotated dimensions are paired.
    public enum Style: String, Sendable, Codable {
        /// Pairs (2i, 2i+1).
        case interleaved
        /// Pairs (i, i + dims/2).
        case halves
    }

    /// Number of rotated dimensions per head (≤ head size; the rest pass through).
    public let dims: Int
    /// The frequency base (θ).
    public let base: Float
    /// The pairing of dimensions.
    public let style: Style
    private let inverseFrequencies: [Double]
    /// The cosines and sines of the position rotated last: generation rotates the queries
    /// and keys of every layer at one position, so they are computed once per token.
    private let recent = RecentAngles()

    /// A rotary embedding over the first `dims` dimensions of each head.
    public init(dims: Int, base: Float, style: Style) {
        self.dims = dims
        self.base = base
        self.style = style
        inverseFrequencies = (0..<dims / 2).map { i in
            pow(Double(base), -2 * Double(i) / Double(dims))
        }
    }

    /// Rotates `heads` consecutive head vectors of `headDim` floats at `x` for `position`.
    public func apply(_ x: UnsafeMutablePointer<Float>, heads: Int, headDim: Int, position: Int) {
        let half = dims / 2
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * half) { cs in
            if !recent.copy(position: position, into: cs.baseAddress!, count: 2 * half) {
                for i in 0..<half {
                    let angle = Double(position) * inverseFrequencies[i]
                    cs[2 * i] = Float(cos(angle))
                    cs[2 * i + 1] = Float(sin(angle))
                }
                recent.store(position: position, from: cs.baseAddress!, count: 2 * half)
            }
            for h in 0..<heads {
                let v = x + h * headDim
                for i in 0..<half {
                    let c = cs[2 * i], s = cs[2 * i + 1]
                    let (a, b) = style == .interleaved ? (2 * i, 2 * i + 1) : (i, i + half)
                    let x0 = v[a], x1 = v[b]
                    v[a] = x0 * c - x1 * s
                    v[b] = x0 * s + x1 * c
                }
            }
        }
    }
}

/// The (cos, sin) table of one position, shared by the threads that use one `RoPE`.
final class RecentAngles: @unchecked Sendable {
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var position = -1
    private var values: [Float] = []

    init() { pthread_mutex_init(lock, nil) }
    deinit {
        pthread_mutex_destroy(lock)
        lock.deallocate()
    }

    /// Copies the table of `position` into `out` if it is the one stored.
    func copy(position: Int, into out: UnsafeMutablePointer<Float>, count: Int) -> Bool {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        guard position == self.position, values.count == count else { return false }
        values.withUnsafeBufferPointer { out.update(from: $0.baseAddress!, count: count) }
        return true
    }

    /// Stores the table of `position`.
    func store(position: Int, from table: UnsafePointer<Float>, count: Int) {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        self.position = position
        if values.count != count { values = [Float](repeating: 0, count: count) }
        values.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: table, count: count) }
    }
}
