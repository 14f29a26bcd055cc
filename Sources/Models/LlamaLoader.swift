import Formats
import Quantization
import Tensors

/// How a loader keeps a checkpoint's weights.
public enum WeightMode: String, Sendable, CaseIterable {
    /// Decode every weight to f32 (the full-precision reference path).
    case f32
    /// Keep each 2-D block-quantized weight in its file type as a `QuantizedLinear` (a view
    /// of the memory-mapped file) when it has a dot-product kernel; everything else is
    /// decoded to f32.
    case native
}

/// Builds a `LlamaModel` from a GGUF file (llama.cpp's tensor names and metadata).
public enum LlamaLoader {
    /// Architectures whose GGUF layout is the Llama one, and how they pair RoPE dimensions.
    static let architectures: [String: RoPE.Style] = ["llama": .interleaved, "mistral": .interleaved, "qwen2": .halves]

    /// Reads the hyper-parameters from `{arch}.*` metadata.
    public static func hyperparameters(_ file: GGUFFile) throws -> LlamaHyperparameters {
        let path = file.path
        guard let arch = file.architecture else { throw ModelError.missingMetadata(path: path, key: "general.architecture") }
        guard let style = architectures[arch] else { throw ModelError.unsupportedArchitecture(path: path, architecture: arch) }
        func int(_ k: String) throws -> Int {
            guard let v = file.int("\(arch).\(k)") else { throw ModelError.missingMetadata(path: path, key: "\(arch).\(k)") }
            return v
        }
        let hidden = try int("embedding_length"), heads = try int("attention.head_count")
        let vocab = file.int("\(arch).vocab_size") ?? file.stringArray("tokenizer.ggml.tokens")?.count
            ?? file.tensor(named: "token_embd.weight")?.shape.first ?? 0
        let headDim = file.int("\(arch).attention.key_length") ?? (heads > 0 ? hidden / heads : 0)
        let hp = LlamaHyperparameters(
            vocabSize: vocab, hiddenSize: hidden, intermediateSize: try int("feed_forward_length"),
            layerCount: try int("block_count"), headCount: heads,
            kvHeadCount: file.int("\(arch).attention.head_count_kv") ?? heads, headDim: headDim,
            ropeDims: file.int("\(arch).rope.dimension_count") ?? headDim,
            ropeBase: file.float("\(arch).rope.freq_base") ?? 10000, ropeStyle: style,
            rmsEps: file.float("\(arch).attention.layer_norm_rms_epsilon") ?? 1e-5,
            contextLength: file.int("\(arch).context_length") ?? 2048)
        if let problem = hp.validationError() { throw ModelError.invalidHyperparameters(path: path, reason: problem) }
        return hp
    }

    /// Loads every weight. With `.f32` (the full-precision reference path) quantized weights
    /// are decoded to f32; with `.native` the 2-D quantized ones stay in their file type
    /// (see `WeightMode`). f32 tensors are used in place from the memory map either way.
    public static func load(_ file: GGUFFile, weights: WeightMode = .f32) throws -> LlamaModel {
        let hp = try hyperparameters(file)
        let d = hp.hiddenSize, f = hp.intermediateSize
        let qw = hp.headCount * hp.headDim, kvw = hp.kvHeadCount * hp.headDim

        func info(_ name: String, _ shape: [Int]) throws -> GGUFTensorInfo {
            guard let t = file.tensor(named: name) else { throw ModelError.missingTensor(path: file.path, name: name) }
            guard t.shape == shape else {
                throw ModelError.wrongShape(path: file.path, name: name, expected: shape, actual: t.shape)
            }
            return try checked(t)
        }
        /// Every tensor the model uses is scanned once for NaN/inf floats and block scales
        /// (as llama.cpp's row validation does), so corruption fails the load, not the output.
        func checked(_ t: GGUFTensorInfo) throws -> GGUFTensorInfo {
            if let bad = Codecs.firstCorruptBlock(t.type, bytes: file.data(for: t), count: t.elementCount) {
                throw ModelError.corruptTensor(path: file.path, name: t.name, reason: bad.description)
            }
            return t
        }
        func storage(_ t: GGUFTensorInfo) throws -> FloatStorage {
            let bytes = file.data(for: t)
            if t.type == .f32, let base = bytes.baseAddress, Int(bitPattern: base) % 4 == 0 {
                return FloatStorage(borrowing: file, pointer: base.assumingMemoryBound(to: Float.self),
                                    count: t.elementCount)
            }
            guard Codecs.canDequantize(t.type) else {
                throw ModelError.unsupportedTensorType(path: file.path, name: t.name, type: t.type.rawValue)
            }
            return FloatStorage(try Codecs.dequantize(t.type, bytes: bytes, count: t.elementCount))
        }
        func vector(_ name: String, _ n: Int) throws -> [Float] {
            let s = try storage(try info(name, [n]))
            return s.withPointer { Array(UnsafeBufferPointer(start: $0, count: n)) }
        }
        func optionalVector(_ name: String, _ n: Int) throws -> [Float]? {
            file.tensor(named: name) == nil ? nil : try vector(name, n)
        }
        func linear(_ name: String, out: Int, in inF: Int, bias: String? = nil) throws -> any Linear & EmbeddingTable {
            let t = try info(name, [out, inF])
            let b = try bias.flatMap { try optionalVector($0, out) }
            if weights == .native, QuantizedLinear.hasKernel(t.type), inF % t.type.blockSize == 0 {
                return try QuantizedLinear(type: t.type, outFeatures: out, inFeatures: inF,
                                           borrowing: file.data(for: t), owner: file, bias: b)
            }
            return DenseLinear(weight: try storage(t), outFeatures: out, inFeatures: inF, bias: b)
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
        let head = file.tensor(named: "output.weight") == nil
            ? embedding : try linear("output.weight", out: hp.vocabSize, in: d)
        return LlamaModel(hp: hp, embedding: embedding, blocks: blocks,
                          outputNorm: try vector("output_norm.weight", d), head: head)
    }
}
