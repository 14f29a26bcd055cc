import Quantization
import Tensors

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

/// What the automatic SmoothQuant search chose at one fold point of one block.
public struct SmoothQuantChoice: Sendable, Codable {
    /// Block index.
    public var layer: Int
    /// Where the factors were folded.
    public var point: FoldPoint
    /// The chosen α.
    public var alpha: Float
    /// Simulated W8A8 output error on the samples at the chosen α and at α = 0.5.
    public var error: Double, errorAtHalf: Double
}

extension LlamaModel {
    /// Runs each batch from an empty cache and returns up to `maxRows` input rows of each
    /// fold point's statistics layer (the first consumer: q, gate, down, output) per block;
    /// the layers are restored afterwards.
    public func foldPointInputSamples(over batches: [[Int32]], maxRows: Int) -> ActivationSamples {
        let samples = ActivationSamples(maxRows: maxRows)
        let names = Set(blocks.indices.flatMap { l in FoldPoint.allCases.map { $0.statisticsLayer(l) } })
        let original = blocks
        defer { blocks = original }
        sampleInputs(into: samples, where: names.contains)
        for batch in batches where !batch.isEmpty { _ = forward(batch, cache: makeCache(capacity: batch.count)) }
        return samples
    }

    /// SmoothQuant with α chosen per block and fold point: for each α in {0, 0.1, …, 1} the
    /// consumers' W8A8 outputs on `samples` (inputs sampled under the statistics layers' names,
    /// before any folding) are compared with their f32 outputs (`SmoothQuant.w8a8Error`, static
    /// per-tensor or `dynamic` per-token activations), and the best α's factors are folded.
    /// The model must hold f32 weights and must not have been smoothed since sampling.
    public func smoothActivationsSearchingAlpha(statistics: ActivationStatistics, samples: ActivationSamples, dynamic: Bool,
                                                points: [FoldPoint] = FoldPoint.allCases) throws -> [SmoothQuantChoice] {
        var choices: [SmoothQuantChoice] = []
        for l in blocks.indices {
            for point in points {
                let consumers = point.consumers(layer: l)
                let statsName = point.statisticsLayer(l)
                guard let inputMax = statistics.maxAbs[statsName] else { throw FoldError.noStatistics(layer: statsName) }
                guard let x = samples.rows[statsName], let columns = samples.columns[statsName] else {
                    throw FoldError.noStatistics(layer: statsName)
                }
                var weights: [[Float]] = []
                for name in consumers {
                    guard let w = denseWeights(named: name) else { throw FoldError.notDense(layer: name) }
                    weights.append(w)
                }
                let rows = consumers.map { linear(named: $0)!.outFeatures }
                let n = x.count / columns
                let reference: [[Float]] = zip(weights, rows).map { w, m in
                    var y = [Float](repeating: 0, count: n * m)
                    BLAS.gemm(transposeB: true, m: n, n: m, k: columns, x, lda: columns, w, ldb: columns, &y, ldc: m)
                    return y
                }
                let channelMax = perChannelMax(inputMax, at: point)
                let weightMax = perChannelMax(SmoothQuant.columnMax(weights, columns: columns), at: point)
                var best: (alpha: Float, s: [Float], error: Double)?
                var atHalf = 0.0
                for step in 0...10 {
                    let alpha = Float(step) / 10
                    let s = SmoothQuant.factors(activationMax: channelMax, weightMax: weightMax, alpha: alpha)
                    let perColumn = (0..<columns).map { s[channel(ofColumn: $0, at: point)] }
                    let e = SmoothQuant.w8a8Error(samples: x, n: n, columns: columns, consumers: weights, rows: rows,
                                                  reference: reference, s: perColumn, activationMax: inputMax, dynamic: dynamic)
                    if step == 5 { atHalf = e }
                    if best == nil || e < best!.error { best = (alpha, s, e) }
                }
                try foldScales(best!.s, at: point, layer: l)
                choices.append(SmoothQuantChoice(layer: l, point: point, alpha: best!.alpha, error: best!.error, errorAtHalf: atHalf))
            }
        }
        return choices
    }
}

extension LlamaModel {
    /// SmoothQuant on calibration `batches`: input statistics over all of them, then the
    /// factors folded with a fixed `alpha`, or (nil) with α searched per block and fold point
    /// on up to 1024 input rows sampled from the first two batches, for `dynamic` (per-token)
    /// or static activations. Returns the search's choices (empty for a fixed α).
    @discardableResult
    public func smoothActivations(over batches: [[Int32]], alpha: Float?, dynamic: Bool) throws -> [SmoothQuantChoice] {
        let statistics = inputStatistics(over: batches)
        guard alpha == nil else {
            try smoothActivations(statistics: statistics, alpha: { _ in alpha! })
            return []
        }
        let samples = foldPointInputSamples(over: Array(batches.prefix(2)), maxRows: 1024)
        return try smoothActivationsSearchingAlpha(statistics: statistics, samples: samples, dynamic: dynamic)
    }
}

extension SmoothQuantChoice {
    /// `α searched at 120 fold points: mean 0.92 (attentionInput 0.82, …); simulated W8A8 error 0.074× α = 0.5's`.
    public static func summary(_ choices: [SmoothQuantChoice]) -> String {
        let mean = choices.reduce(0) { $0 + $1.alpha } / Float(max(choices.count, 1))
        let byPoint = FoldPoint.allCases.compactMap { p -> String? in
            let a = choices.filter { $0.point == p }.map(\.alpha)
            return a.isEmpty ? nil : String(format: "%@ %.2f", p.rawValue, a.reduce(0, +) / Float(a.count))
        }
        let ratio = choices.reduce(0) { $0 + $1.error } / max(choices.reduce(0) { $0 + $1.errorAtHalf }, .leastNormalMagnitude)
        return String(format: "α searched at %d fold points: mean %.2f (", choices.count, mean) + byPoint.joined(separator: ", ")
            + String(format: "); simulated W8A8 error %.3f× α = 0.5's", ratio)
    }
}
