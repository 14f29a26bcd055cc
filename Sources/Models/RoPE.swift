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
            for i in 0..<half {
                let angle = Double(position) * inverseFrequencies[i]
                cs[2 * i] = Float(cos(angle))
                cs[2 * i + 1] = Float(sin(angle))
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
