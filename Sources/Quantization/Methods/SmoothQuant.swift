import Foundation

/// SmoothQuant (Xiao et al., 2023): activations of LLMs have a few channels with very large
/// magnitudes, which ruin a per-tensor int8 activation scale, while weights are easy to
/// quantize. Dividing activation channel `j` by `s_j` and multiplying weight column `j` by
/// it leaves the product unchanged and moves the difficulty: with
/// `s_j = max|X_j|^α / max|W_j|^(1−α)` both sides end with comparable ranges (α = 0.5 splits
/// it evenly; larger α pushes more onto the weights).
public enum SmoothQuant {
    /// The smoothing factors for one set of input channels.
    ///
    /// - Parameters:
    ///   - activationMax: max |x_j| per channel over the calibration tokens.
    ///   - weightMax: max |W_ij| per input column over every consumer layer's rows.
    ///   - alpha: migration strength in [0, 1].
    /// - Returns: one positive, finite factor per channel. Channels that never fired or
    ///   have all-zero weights get 1 (nothing to balance), and factors are clamped to
    ///   [1e-4, 1e4] so a near-dead channel cannot blow up its weights.
    public static func factors(activationMax: [Float], weightMax: [Float], alpha: Float) -> [Float] {
        precondition(activationMax.count == weightMax.count, "one activation and one weight maximum per channel")
        let a = Double(min(max(alpha, 0), 1))
        return zip(activationMax, weightMax).map { x, w in
            guard x > 0, w > 0, x.isFinite, w.isFinite else { return 1 }
            let s = pow(Double(x), a) / pow(Double(w), 1 - a)
            return Float(min(max(s, 1e-4), 1e4))
        }
    }

    /// max |W_ij| over the rows of every matrix in `weights` (each row-major with `columns`
    /// columns), per column.
    public static func columnMax(_ weights: [[Float]], columns: Int) -> [Float] {
        var m = [Float](repeating: 0, count: columns)
        for w in weights {
            precondition(w.count % columns == 0, "weights must have whole rows")
            for r in 0..<(w.count / columns) {
                for c in 0..<columns { m[c] = max(m[c], abs(w[r * columns + c])) }
            }
        }
        return m
    }
}
