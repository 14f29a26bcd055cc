import Foundation
import Tensors

/// Activation-aware weight quantization (AWQ, Lin et al., 2023): a few input channels carry
/// large activations, and the weights that multiply them matter most. Scaling those weight
/// columns up by `s` (and the activations down by `s`, folded into the preceding norm or
/// layer so inference pays nothing) makes their rounding error relatively smaller. The
/// scale is `s = a^α` for a per-channel activation magnitude `a`, with α searched on
/// calibration data; then each group's clipping range is searched too.
///
/// Errors are measured on the layer outputs through the inputs' second moment `H = 2·XᵀX/n`
/// (`Σ_r δ_r H δ_rᵀ` for `δ = W − Ŵ`), the same statistic GPTQ uses, so one calibration pass
/// serves both; the activation magnitude is the per-channel RMS, `√(H_jj / 2)`.
public enum AWQ {
    /// Result of the scale search at one fold point.
    public struct ScaleSearch: Sendable {
        /// The per-channel factors (activations are divided by them, weight columns multiplied).
        public var scales: [Float]
        /// The chosen exponent.
        public var alpha: Float
        /// Output error with the chosen scales and with none (α = 0), summed over the consumers.
        public var error: Double, unscaledError: Double
    }

    /// Searches α ∈ {0, 1/gridPoints, …, 1} for the consumers of one input (each `rows[i] ×
    /// columns`, row-major) under round-to-nearest on `grid`, minimising the summed output error.
    public static func searchScales(consumers: [[Float]], rows: [Int], columns n: Int, hessian h: [Float],
                                    grid: AffineGPTQGrid, gridPoints: Int = 20) -> ScaleSearch {
        searchScales(consumers: consumers, rows: rows, columns: n, hessian: h, gridPoints: gridPoints) { i, scaled in
            GPTQ.roundToNearest(weights: scaled, rows: rows[i], columns: n, grid: grid)
        }
    }

    /// Searches α as above with any rounding: `round(i, w)` returns consumer `i`'s scaled
    /// weights `w` as the target format stores them (e.g. a GGUF type's encode–decode, so
    /// each consumer of a mix is judged by its own type).
    public static func searchScales(consumers: [[Float]], rows: [Int], columns n: Int, hessian h: [Float],
                                    gridPoints: Int = 20, round: (Int, [Float]) throws -> [Float]) rethrows -> ScaleSearch {
        let magnitude = (0..<n).map { max((h[$0 * n + $0] / 2).squareRoot(), 1e-8) }
        var best = ScaleSearch(scales: [Float](repeating: 1, count: n), alpha: 0, error: .infinity, unscaledError: 0)
        for step in 0...gridPoints {
            let alpha = Float(step) / Float(gridPoints)
            var s = magnitude.map { pow($0, alpha) }
            // Centre the scales geometrically so they neither inflate nor shrink the weights overall.
            let norm = (s.max()! * s.min()!).squareRoot()
            s = s.map { max($0 / norm, 1e-4) }
            var error = 0.0
            for (i, (w, r)) in zip(consumers, rows).enumerated() {
                var scaled = w
                for i in 0..<r { for j in 0..<n { scaled[i * n + j] *= s[j] } }
                var q = try round(i, scaled)
                for i in 0..<r { for j in 0..<n { q[i * n + j] /= s[j] } }
                error += GPTQ.outputError(w, q, rows: r, columns: n, hessian: h)
            }
            if step == 0 { best.unscaledError = error }
            if error < best.error { best = ScaleSearch(scales: s, alpha: alpha, error: error, unscaledError: best.unscaledError) }
        }
        return best
    }

    /// Round-to-nearest on `grid` with each (row, group)'s range shrunk by the ratio from
    /// `ratios` that minimises that group's output error under the diagonal block of `h`
    /// (AWQ's clipping search: outliers inside a group stop wasting the grid's levels).
    /// Returns the rounded weights with each group's parameters (identity `g_idx`), ready to
    /// be packed as a checkpoint; `loss` is the summed per-group output error.
    public static func clippedRoundToNearest(weights w: [Float], rows: Int, columns n: Int, hessian h: [Float],
                                             grid: AffineGPTQGrid,
                                             ratios: [Float] = [1, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7]) -> GPTQResult<AffineParameters> {
        let g = grid.groupSize > 0 ? min(grid.groupSize, n) : n
        var out = w
        var parameters: [[AffineParameters]] = []
        var loss = 0.0
        var candidate = [Float](repeating: 0, count: g), delta = [Float](repeating: 0, count: g)
        for start in stride(from: 0, to: n, by: g) {
            let len = min(g, n - start)
            var groupParameters: [AffineParameters] = []
            groupParameters.reserveCapacity(rows)
            for r in 0..<rows {
                let row = r * n + start
                var lo = Float.infinity, hi = -Float.infinity
                for k in 0..<len { lo = min(lo, w[row + k]); hi = max(hi, w[row + k]) }
                var bestError = Double.infinity
                var bestParameters: AffineParameters?
                for ratio in ratios {
                    var p = grid.grid.parameters(min: lo * ratio, max: hi * ratio, scaleType: grid.scaleType)
                    if !grid.grid.symmetric && p.zeroPoint < grid.minimumZeroPoint {
                        p.zeroPoint = min(grid.minimumZeroPoint, grid.grid.qmax)
                    }
                    for k in 0..<len {
                        candidate[k] = grid.grid.fakeQuantize(w[row + k], p)
                        delta[k] = w[row + k] - candidate[k]
                    }
                    // δ_g · H_gg · δ_gᵀ
                    var e = 0.0
                    for a in 0..<len where delta[a] != 0 {
                        var t: Float = 0
                        let hr = (start + a) * n + start
                        for b in 0..<len { t += h[hr + b] * delta[b] }
                        e += Double(delta[a] * t)
                    }
                    if e < bestError || bestParameters == nil {
                        bestError = e
                        bestParameters = p
                        for k in 0..<len { out[row + k] = candidate[k] }
                    }
                }
                groupParameters.append(bestParameters!)
                loss += bestError
            }
            parameters.append(groupParameters)
        }
        return GPTQResult(weights: out, groupParameters: parameters,
                          groupIndex: (0..<n).map { Int32($0 / g) }, order: Array(0..<n), loss: loss)
    }
}
