import Quantization

extension FoldPoint {
    /// The layer whose input statistics describe this point's channels (all consumers of a
    /// point see the same input).
    func statisticsLayer(_ l: Int) -> String { consumers(layer: l)[0] }
}

extension LlamaModel {
    /// For `point` of block `l`: which consumer input column maps to which scaled channel
    /// (identity except at the value→output fold, where query heads share KV channels).
    func channel(ofColumn c: Int, at point: FoldPoint) -> Int {
        guard point == .outputInput else { return c }
        let hd = hp.headDim, group = hp.headCount / hp.kvHeadCount
        return (c / hd / group) * hd + c % hd
    }

    /// Per-channel max over consumer input columns of `values` (one per column), folded
    /// onto the point's channels.
    func perChannelMax(_ values: [Float], at point: FoldPoint) -> [Float] {
        var m = [Float](repeating: 0, count: channelCount(point))
        for (c, v) in values.enumerated() {
            let j = channel(ofColumn: c, at: point)
            m[j] = max(m[j], v)
        }
        return m
    }

    /// SmoothQuant: folds `s = max|X|^α / max|W|^(1−α)` into every block at `points`, using
    /// the input maxima gathered in `statistics` (from `captureInputs` over calibration
    /// text, under GGUF layer names). Returns the factors by "blk.L.point". The model must
    /// hold f32 weights. `alpha` may differ per block: `alpha(l)`.
    @discardableResult
    public func smoothActivations(statistics: ActivationStatistics, alpha: (Int) -> Float,
                                  points: [FoldPoint] = FoldPoint.allCases) throws -> [String: [Float]] {
        var applied: [String: [Float]] = [:]
        for l in blocks.indices {
            for point in points {
                let consumers = point.consumers(layer: l)
                guard let inputMax = statistics.maxAbs[point.statisticsLayer(l)] else {
                    throw FoldError.noStatistics(layer: point.statisticsLayer(l))
                }
                var weights: [[Float]] = []
                for name in consumers {
                    guard let w = denseWeights(named: name) else { throw FoldError.notDense(layer: name) }
                    weights.append(w)
                }
                let columns = linear(named: consumers[0])!.inFeatures
                let s = SmoothQuant.factors(activationMax: perChannelMax(inputMax, at: point),
                                            weightMax: perChannelMax(SmoothQuant.columnMax(weights, columns: columns), at: point),
                                            alpha: alpha(l))
                try foldScales(s, at: point, layer: l)
                applied["blk.\(l).\(point.rawValue)"] = s
            }
        }
        return applied
    }
}
