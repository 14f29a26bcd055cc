import Formats
import Quantization
import Tensors

extension LlamaLoader {
    /// Reads the hyper-parameters from a source's `{arch}.*` metadata (the same keys as
    /// `hyperparameters(_:)` reads from a GGUF file).
    public static func hyperparameters(_ source: QuantizationSource) throws -> LlamaHyperparameters {
        let path = source.path
        guard let arch = source["general.architecture"]?.stringValue else {
            throw ModelError.missingMetadata(path: path, key: "general.architecture")
        }
        guard let style = architectures[arch] else { throw ModelError.unsupportedArchitecture(path: path, architecture: arch) }
        func optionalInt(_ k: String) -> Int? { source["\(arch).\(k)"]?.intValue }
        func optionalFloat(_ k: String) -> Float? { source["\(arch).\(k)"]?.doubleValue.map { Float($0) } }
        func int(_ k: String) throws -> Int {
            guard let v = optionalInt(k) else { throw ModelError.missingMetadata(path: path, key: "\(arch).\(k)") }
            return v
        }
        let hidden = try int("embedding_length"), heads = try int("attention.head_count")
        let vocab = optionalInt("vocab_size") ?? source["tokenizer.ggml.tokens"]?.count
            ?? source.tensors.first { $0.name == "token_embd.weight" }?.shape.first ?? 0
        let headDim = optionalInt("attention.key_length") ?? (heads > 0 ? hidden / heads : 0)
        let hp = LlamaHyperparameters(
            vocabSize: vocab, hiddenSize: hidden, intermediateSize: try int("feed_forward_length"),
            layerCount: try int("block_count"), headCount: heads,
            kvHeadCount: optionalInt("attention.head_count_kv") ?? heads, headDim: headDim,
            ropeDims: optionalInt("rope.dimension_count") ?? headDim,
            ropeBase: optionalFloat("rope.freq_base") ?? 10000, ropeStyle: style,
            rmsEps: optionalFloat("attention.layer_norm_rms_epsilon") ?? 1e-5,
            contextLength: optionalInt("context_length") ?? 2048)
        if let problem = hp.validationError() { throw ModelError.invalidHyperparameters(path: path, reason: problem) }
        return hp
    }

    /// Loads a model from any `QuantizationSource` — a GGUF file, or a Hugging Face folder
    /// through `QuantizationSource(huggingFace:)` — with every weight as f32.
    ///
    /// Tensors are read through their `SourceTensor` accessors: f32 ones are used in place
    /// (a view of the mapped file, kept alive by the model), others are decoded to f32.
    /// Memory stays one copy of the weights at most, however the source stores them.
    ///
    /// ```swift
    /// let source = try QuantizationSource(huggingFace: "SmolLM2-135M-Instruct")
    /// let model = try LlamaLoader.load(source: source)
    /// let tokenizer = try BPETokenizer(source: source)
    /// ```
    /// - Throws: `ModelError` naming the source (unsupported architecture, missing or
    ///   wrongly shaped tensors, RoPE scaling the model does not implement), and the
    ///   source's decoding errors.
    public static func load(source: QuantizationSource) throws -> LlamaModel {
        let hp = try hyperparameters(source)
        let path = source.path
        let scaling = source["\(source["general.architecture"]?.stringValue ?? "").rope.scaling.type"]?.stringValue
        if source.tensors.contains(where: { $0.name == "rope_freqs.weight" }) || (scaling != nil && scaling != "none") {
            throw ModelError.invalidHyperparameters(path: path, reason: "RoPE scaling is not implemented by LlamaModel")
        }
        let d = hp.hiddenSize, f = hp.intermediateSize
        let qw = hp.headCount * hp.headDim, kvw = hp.kvHeadCount * hp.headDim
        var byName: [String: SourceTensor] = [:]
        for t in source.tensors where byName[t.name] == nil { byName[t.name] = t }
        // Borrowed weights point into buffers the source owns (its mapping, or bytes its
        // accessors built): the model keeps the whole source alive.
        let keeper = SourceKeeper(source)

        func tensor(_ name: String, _ shape: [Int]) throws -> SourceTensor {
            guard let t = byName[name] else { throw ModelError.missingTensor(path: path, name: name) }
            guard t.shape == shape else { throw ModelError.wrongShape(path: path, name: name, expected: shape, actual: t.shape) }
            return t
        }
        func storage(_ t: SourceTensor) throws -> FloatStorage {
            if t.type == .f32 {
                let bytes = try t.raw()
                if bytes.count == t.elementCount * 4, let base = bytes.baseAddress, Int(bitPattern: base) % 4 == 0 {
                    return FloatStorage(borrowing: keeper, pointer: base.assumingMemoryBound(to: Float.self),
                                        count: t.elementCount)
                }
            }
            let values = try t.decode()
            guard values.count == t.elementCount else {
                throw ModelError.unsupportedTensorType(path: path, name: t.name, type: t.type.rawValue)
            }
            return FloatStorage(values)
        }
        func vector(_ name: String, _ n: Int) throws -> [Float] {
            try storage(try tensor(name, [n])).withPointer { Array(UnsafeBufferPointer(start: $0, count: n)) }
        }
        func optionalVector(_ name: String, _ n: Int) throws -> [Float]? {
            byName[name] == nil ? nil : try vector(name, n)
        }
        func linear(_ name: String, out: Int, in inF: Int, bias: String? = nil) throws -> DenseLinear {
            DenseLinear(weight: try storage(try tensor(name, [out, inF])), outFeatures: out, inFeatures: inF,
                        bias: try bias.flatMap { try optionalVector($0, out) })
        }

        let embedding = try linear("token_embd.weight", out: hp.vocabSize, in: d)
        var blocks: [LlamaBlock] = []
        for l in 0..<hp.layerCount {
            let p = "blk.\(l)."
            blocks.append(LlamaBlock(
                attentionNorm: try vector(p + "attn_norm.weight", d),
                query: try linear(p + "attn_q.weight", out: qw, in: d, bias: p + "attn_q.bias"),
                key: try linear(p + "attn_k.weight", out: kvw, in: d, bias: p + "attn_k.bias"),
                value: try linear(p + "attn_v.weight", out: kvw, in: d, bias: p + "attn_v.bias"),
                output: try linear(p + "attn_output.weight", out: d, in: qw),
                mlpNorm: try vector(p + "ffn_norm.weight", d),
                gate: try linear(p + "ffn_gate.weight", out: f, in: d),
                up: try linear(p + "ffn_up.weight", out: f, in: d),
                down: try linear(p + "ffn_down.weight", out: d, in: f)))
        }
        let head = byName["output.weight"] == nil ? embedding : try linear("output.weight", out: hp.vocabSize, in: d)
        return LlamaModel(hp: hp, embedding: embedding, blocks: blocks,
                          outputNorm: try vector("output_norm.weight", d), head: head)
    }
}

/// Holds a source (its mapped files and any bytes its accessors built) for as long as
/// weights borrowed from it are in use.
private final class SourceKeeper: @unchecked Sendable {
    let source: QuantizationSource
    init(_ source: QuantizationSource) { self.source = source }
}
