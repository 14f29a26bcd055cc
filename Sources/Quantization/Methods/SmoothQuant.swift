import Foundation
import Tensors

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

extension SmoothQuant {
    /// Squared output error of W8A8 on sample inputs after smoothing by `s`, summed over
    /// the consumers: `Σ ‖X Wᵀ − Q(X/s) Q(W·s)ᵀ‖²`, where weights are int8 per output row and
    /// activations int8 per tensor with the static range `max_j activationMax_j / s_j` or,
    /// when `dynamic`, per row (token). Rounding is simulated in f32 (the int8 product of the
    /// codes times the scales is the same number up to float rounding).
    ///
    /// - Parameters:
    ///   - x: sample inputs, row-major `[n, columns]`.
    ///   - reference: each consumer's `X Wᵀ` (`[n, rows[i]]`), computed once by the caller.
    ///   - s: one factor per input column.
    ///   - activationMax: max |x_j| per column over the calibration data (static ranges).
    public static func w8a8Error(samples x: [Float], n: Int, columns: Int, consumers: [[Float]], rows: [Int],
                                 reference: [[Float]], s: [Float], activationMax: [Float], dynamic: Bool) -> Double {
        var xq = [Float](repeating: 0, count: n * columns)
        let staticScale = (zip(activationMax, s).map { $0 / $1 }.max() ?? 0) / 127
        for r in 0..<n {
            var scale = staticScale
            if dynamic {
                var m: Float = 0
                for c in 0..<columns { m = max(m, abs(x[r * columns + c] / s[c])) }
                scale = m / 127
            }
            guard scale > 0 else { continue }
            for c in 0..<columns {
                let v = (x[r * columns + c] / s[c] / scale).rounded()
                xq[r * columns + c] = min(max(v, -127), 127) * scale
            }
        }
        var total = 0.0
        for (i, w) in consumers.enumerated() {
            let m = rows[i]
            var wq = [Float](repeating: 0, count: m * columns)
            for r in 0..<m {
                var mx: Float = 0
                for c in 0..<columns { mx = max(mx, abs(w[r * columns + c] * s[c])) }
                let scale = mx / 127
                guard scale > 0 else { continue }
                for c in 0..<columns { wq[r * columns + c] = (w[r * columns + c] * s[c] / scale).rounded() * scale }
            }
            var y = [Float](repeating: 0, count: n * m)
            BLAS.gemm(transposeB: true, m: n, n: m, k: columns, xq, lda: columns, wq, ldb: columns, &y, ldc: m)
            for (a, b) in zip(y, reference[i]) { total += Double((a - b) * (a - b)) }
        }
        return total
    }
}
