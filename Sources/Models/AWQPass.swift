import Foundation
import Quantization

/// What AWQ did at one fold point of one block.
public struct AWQFold: Sendable {
    /// Block index.
    public var layer: Int
    /// Where the scales were folded.
    public var point: FoldPoint
    /// The chosen exponent α of `s = rms(x)^α`.
    public var alpha: Float
    /// Output error of the consumers rounded with the chosen scales, and with none.
    public var error: Double, unscaledError: Double
}

extension LlamaModel {
    /// AWQ's scale step for block `l`, as `SequentialQuantizer.prepareBlock` calls it: at each
    /// fold point (attention norm → q/k/v, MLP norm → gate/up, up → down, and value → output
    /// where the value width equals the output's input width, i.e. without grouped-query
    /// attention) whose consumers (and rescaled producer) all pass `include`, searches α for `s = rms(x)^α` under the
    /// input Hessian with `round(name, weights, rows, columns)` as the target format rounds
    /// the scaled weights, and folds `s` into the block (exact in f32).
    /// Returns the scales by input kind (for `prepareBlock`'s result) and what was chosen.
    public func awqScaleBlock(_ l: Int, hessians: [String: [Float]], include: (String) -> Bool,
                              round: (String, [Float], Int, Int) throws -> [Float]) throws -> (scaled: [String: [Float]], folds: [AWQFold]) {
        var scaled: [String: [Float]] = [:], folds: [AWQFold] = []
        let points: [(FoldPoint, String)] = [(.attentionInput, "attn_q"), (.mlpInput, "ffn_gate"), (.downInput, "ffn_down"),
                                             (.outputInput, "attn_output")]
        for (point, kind) in points {
            let names = point.consumers(layer: l)
            // The producer a fold rescales (up for down, v for output) is written too: it must be included.
            let producer = point == .downInput ? ["blk.\(l).ffn_up.weight"] : point == .outputInput ? ["blk.\(l).attn_v.weight"] : []
            guard (names + producer).allSatisfy(include), let h = hessians[kind] else { continue }
            let n = channelCount(point)
            let layers = names.compactMap { linear(named: $0) }
            guard layers.count == names.count, layers.allSatisfy({ $0.inFeatures == n }) else { continue }
            var weights: [[Float]] = []
            for name in names {
                guard let w = denseWeights(named: name) else { throw FoldError.notDense(layer: name) }
                weights.append(w)
            }
            let rows = layers.map(\.outFeatures)
            let search = try AWQ.searchScales(consumers: weights, rows: rows, columns: n, hessian: h) { i, w in
                try round(names[i], w, rows[i], n)
            }
            try foldScales(search.scales, at: point, layer: l)
            scaled[kind] = search.scales
            folds.append(AWQFold(layer: l, point: point, alpha: search.alpha, error: search.error, unscaledError: search.unscaledError))
        }
        return (scaled, folds)
    }
}
