import Tensors

/// Where a per-channel scale vector `s` can be folded without changing the model's function:
/// the producer of a set of input channels is divided by `s` and every consumer's weight
/// columns are multiplied by it. AWQ and SmoothQuant use these pairs to move quantization
/// difficulty between activations and weights at no inference cost.
public enum FoldPoint: String, CaseIterable, Sendable, Codable {
    /// Attention RMSNorm → query, key, value (channels: the hidden size).
    case attentionInput
    /// MLP RMSNorm → gate, up (channels: the hidden size).
    case mlpInput
    /// Up projection's rows → down projection's columns (channels: the intermediate size;
    /// exact because down's input is silu(gate) ⊙ up, linear in up).
    case downInput
    /// Value projection's rows → output projection's columns (channels: the KV width; each
    /// output column takes the scale of the value row its head reads, so grouped-query
    /// attention is handled).
    case outputInput

    /// The GGUF names of the consumer layers of block `l`.
    public func consumers(layer l: Int) -> [String] {
        let p = "blk.\(l)."
        switch self {
        case .attentionInput: return [p + "attn_q.weight", p + "attn_k.weight", p + "attn_v.weight"]
        case .mlpInput: return [p + "ffn_gate.weight", p + "ffn_up.weight"]
        case .downInput: return [p + "ffn_down.weight"]
        case .outputInput: return [p + "attn_output.weight"]
        }
    }
}

/// Why a scale could not be folded.
public enum FoldError: Error, CustomStringConvertible, Equatable {
    /// A layer involved is not an f32 `DenseLinear`.
    case notDense(layer: String)
    /// The scale vector has the wrong length for the fold point.
    case wrongLength(point: FoldPoint, expected: Int, actual: Int)
    /// A scale is zero, negative or not finite.
    case invalidScale(index: Int, value: Float)
    /// No calibration statistics were gathered for a layer the method needs.
    case noStatistics(layer: String)

    /// A one-line message.
    public var description: String {
        switch self {
        case .notDense(let l): return "layer \(l) does not hold f32 weights; scales fold only into full-precision layers"
        case let .wrongLength(p, e, a): return "\(p.rawValue) scales need \(e) values, got \(a)"
        case let .invalidScale(i, v): return "scale \(i) is \(v); scales must be positive and finite"
        case .noStatistics(let l): return "no calibration statistics for \(l); run calibration text through the model first"
        }
    }
}

extension LlamaModel {
    /// The f32 weights of block linear `name`, when the layer is a `DenseLinear`
    /// (a model loaded with `.f32` weights).
    public func denseWeights(named name: String) -> [Float]? {
        guard let dense = linear(named: name) as? DenseLinear else { return nil }
        return dense.weight.array
    }

    /// Every block's norm weights by GGUF name (`blk.L.attn_norm.weight`, `blk.L.ffn_norm.weight`):
    /// what a file must hold in place of the source's once scales were folded into them.
    public var normTensors: [String: [Float]] {
        var norms: [String: [Float]] = [:]
        for (l, b) in blocks.enumerated() {
            norms["blk.\(l).attn_norm.weight"] = b.attentionNorm
            norms["blk.\(l).ffn_norm.weight"] = b.mlpNorm
        }
        return norms
    }

    /// Number of channels scaled at `point`.
    public func channelCount(_ point: FoldPoint) -> Int {
        switch point {
        case .attentionInput, .mlpInput: return hp.hiddenSize
        case .downInput: return hp.intermediateSize
        case .outputInput: return hp.kvHeadCount * hp.headDim
        }
    }

    /// Folds `s` at `point` of block `l`: the producer's output channel `j` is divided by
    /// `s[j]` and each consumer's input column `j` multiplied by it, so the block computes
    /// the same function (up to float rounding) while the consumers' inputs shrink by `s`.
    /// Layers must be f32 `DenseLinear`s.
    public func foldScales(_ s: [Float], at point: FoldPoint, layer l: Int) throws {
        let n = channelCount(point)
        guard s.count == n else { throw FoldError.wrongLength(point: point, expected: n, actual: s.count) }
        if let j = s.firstIndex(where: { !($0 > 0 && $0.isFinite) }) { throw FoldError.invalidScale(index: j, value: s[j]) }
        let p = "blk.\(l)."
        // Check every layer before changing any, so a refusal leaves the model untouched.
        var consumers: [(String, DenseLinear)] = []
        for name in point.consumers(layer: l) {
            guard let d = linear(named: name) as? DenseLinear else { throw FoldError.notDense(layer: name) }
            consumers.append((name, d))
        }
        var producer: (String, DenseLinear)?
        switch point {
        case .downInput, .outputInput:
            let name = p + (point == .downInput ? "ffn_up.weight" : "attn_v.weight")
            guard let d = linear(named: name) as? DenseLinear else { throw FoldError.notDense(layer: name) }
            producer = (name, d)
        case .attentionInput, .mlpInput:
            break
        }

        switch point {
        case .attentionInput: blocks[l].attentionNorm = zip(blocks[l].attentionNorm, s).map { $0 / $1 }
        case .mlpInput: blocks[l].mlpNorm = zip(blocks[l].mlpNorm, s).map { $0 / $1 }
        case .downInput, .outputInput:
            let (name, d) = producer!
            replaceLinear(named: name, with: d.scalingRows(by: s.map { 1 / $0 }))
        }
        for (name, d) in consumers {
            let columnScale: [Float]
            if point == .outputInput {
                // Output column c belongs to query head c / headDim, which reads KV head
                // head / (heads per KV head); its value row is kvHead·headDim + c % headDim.
                let hd = hp.headDim, group = hp.headCount / hp.kvHeadCount
                columnScale = (0..<d.inFeatures).map { c in s[(c / hd / group) * hd + c % hd] }
            } else {
                columnScale = s
            }
            replaceLinear(named: name, with: d.scalingColumns(by: columnScale))
        }
    }
}

extension DenseLinear {
    /// A copy whose input column `j` is multiplied by `s[j]`.
    public func scalingColumns(by s: [Float]) -> DenseLinear {
        var w = weight.array
        for r in 0..<outFeatures {
            for c in 0..<inFeatures { w[r * inFeatures + c] *= s[c] }
        }
        return DenseLinear(weight: FloatStorage(w), outFeatures: outFeatures, inFeatures: inFeatures, bias: bias)
    }

    /// A copy whose output row `j` (and bias entry) is multiplied by `s[j]`.
    public func scalingRows(by s: [Float]) -> DenseLinear {
        var w = weight.array
        for r in 0..<outFeatures {
            for c in 0..<inFeatures { w[r * inFeatures + c] *= s[r] }
        }
        return DenseLinear(weight: FloatStorage(w), outFeatures: outFeatures, inFeatures: inFeatures,
                           bias: bias.map { zip($0, s).map { $0 * $1 } })
    }
}
