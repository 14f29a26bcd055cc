// The model side of an HF quantized export: which tensors a source has, how its rows map
// back to Hugging Face's order, and the config.json and tokenizer files it gets.

import Foundation
import Quantization
import Tensors

/// A `QuantizationSource` seen as the Hugging Face Llama-family model it will be written as.
struct HFExportModel {
    let source: QuantizationSource
    /// "llama" or "qwen2".
    let architecture: String
    /// Whether Q/K rows are in llama.cpp's interleaved order (llama) and must be put back.
    let permutesQK: Bool
    let layerCount: Int, hidden: Int, ffn: Int, heads: Int, kvHeads: Int, headDim: Int
    let vocab: Int, context: Int
    let ropeBase: Float, rmsEps: Float
    private let byName: [String: SourceTensor]
    /// The folder the source came from, when it is a Hugging Face folder.
    let hfFolder: String?

    init(source: QuantizationSource) throws {
        self.source = source
        let path = source.path
        func fail(_ reason: String) -> HFQuantizedError { .invalidCheckpoint(path: path, reason: reason) }
        guard let arch = source["general.architecture"]?.stringValue else { throw fail("no general.architecture") }
        guard arch == "llama" || arch == "qwen2" else {
            throw fail("architecture '\(arch)' cannot be exported (llama, qwen2)")
        }
        architecture = arch
        permutesQK = arch == "llama"
        func int(_ key: String) throws -> Int {
            guard let v = source["\(arch).\(key)"]?.intValue, v > 0 else { throw fail("missing or invalid \(arch).\(key)") }
            return v
        }
        layerCount = try int("block_count")
        hidden = try int("embedding_length")
        ffn = try int("feed_forward_length")
        heads = try int("attention.head_count")
        kvHeads = source["\(arch).attention.head_count_kv"]?.intValue ?? heads
        headDim = source["\(arch).attention.key_length"]?.intValue ?? hidden / heads
        context = source["\(arch).context_length"]?.intValue ?? 2048
        ropeBase = Float(source["\(arch).rope.freq_base"]?.doubleValue ?? 10000)
        rmsEps = Float(source["\(arch).attention.layer_norm_rms_epsilon"]?.doubleValue ?? 1e-5)
        var names: [String: SourceTensor] = [:]
        for t in source.tensors { names[t.name] = t }
        byName = names
        vocab = source["\(arch).vocab_size"]?.intValue ?? source["tokenizer.ggml.tokens"]?.count
            ?? names["token_embd.weight"]?.shape.first ?? 0
        guard kvHeads > 0, headDim > 0, headDim % 2 == 0, heads % kvHeads == 0, vocab > 0 else {
            throw fail("inconsistent attention hyper-parameters")
        }
        if let scaling = source["\(arch).rope.scaling.type"]?.stringValue, scaling != "none" {
            throw fail("RoPE scaling '\(scaling)' cannot be exported")
        }
        if names["rope_freqs.weight"] != nil { throw fail("RoPE frequency factors (rope_freqs.weight) cannot be exported") }
        var isDirectory: ObjCBool = false
        let isFolder = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
        hfFolder = isFolder && FileManager.default.fileExists(atPath: path + "/config.json") ? path : nil
    }

    /// A source tensor by GGUF name.
    func tensor(_ name: String) -> SourceTensor? { byName[name] }

    /// The block projections the source has, in order (`blk.0.attn_q.weight`, …).
    var blockLinearNames: [String] {
        (0..<layerCount).flatMap { l in HFLlamaNames.linears.map { "blk.\(l).\($0).weight" } }.filter { byName[$0] != nil }
    }

    /// Heads whose rows llama.cpp permuted in `tensor`, or nil.
    private func permutedHeads(_ tensor: String) -> Int? {
        guard permutesQK else { return nil }
        if tensor.hasSuffix(".attn_q.weight") || tensor.hasSuffix(".attn_q.bias") { return heads }
        if tensor.hasSuffix(".attn_k.weight") || tensor.hasSuffix(".attn_k.bias") { return kvHeads }
        return nil
    }

    /// For each Hugging Face row, the source (GGUF) row it comes from.
    private func hfToSource(rows: Int, heads: Int) -> [Int] {
        let p = RowPermutation(rows: rows, heads: heads)
        var inverse = [Int](repeating: 0, count: rows)
        for r in 0..<rows { inverse[p.sourceRow(r)] = r }
        return inverse
    }

    /// A quantized layer in Hugging Face row order.
    func toHF(_ m: GroupQuantizedMatrix, tensor: String) -> GroupQuantizedMatrix {
        guard let h = permutedHeads(tensor) else { return m }
        let inverse = hfToSource(rows: m.rows, heads: h)
        return m.permutingRows { inverse[$0] }
    }

    /// A float tensor (`shape[0]` rows) in Hugging Face row order.
    func toHF(_ values: [Float], tensor: String, shape: [Int]) -> [Float] {
        guard let h = permutedHeads(tensor), let rows = shape.first, rows > 0 else { return values }
        let inverse = hfToSource(rows: rows, heads: h), width = values.count / rows
        var out = values
        for r in 0..<rows {
            out.replaceSubrange(r * width..<(r + 1) * width, with: values[inverse[r] * width..<(inverse[r] + 1) * width])
        }
        return out
    }

    /// `config.json`: the source folder's own with `quantization_config` and `torch_dtype`
    /// set, or one built from GGUF metadata. Keys sorted, as transformers writes them.
    func configJSON(quantization: JSONValue, torchDType: String) throws -> JSONValue {
        var members: [String: JSONValue] = [:]
        if let folder = hfFolder {
            let path = folder + "/config.json"
            guard let data = FileManager.default.contents(atPath: path), data.count <= HFConfig.maxFileSize,
                  case .object(let original)? = try? JSONValue.parse(Array(data), maxDepth: 64, allowDuplicateKeys: true) else {
                throw HFQuantizedError.invalidCheckpoint(path: path, reason: "cannot read it as a JSON object")
            }
            for m in original { members[m.key] = m.value }
        } else {
            members = generatedConfig()
        }
        members["quantization_config"] = quantization
        members["torch_dtype"] = .string(torchDType)
        members.removeValue(forKey: "dtype")
        return .object(members.keys.sorted().map { JSONMember(key: $0, value: members[$0]!) })
    }

    private func generatedConfig() -> [String: JSONValue] {
        let qwen = architecture == "qwen2"
        var c: [String: JSONValue] = [
            "architectures": .array([.string(qwen ? "Qwen2ForCausalLM" : "LlamaForCausalLM")]),
            "attention_bias": .bool(qwen || byName["blk.0.attn_q.bias"] != nil),
            "attention_dropout": .number("0.0"),
            "head_dim": .int(headDim),
            "hidden_act": .string("silu"),
            "hidden_size": .int(hidden),
            "initializer_range": .number("0.02"),
            "intermediate_size": .int(ffn),
            "max_position_embeddings": .int(context),
            "model_type": .string(architecture),
            "num_attention_heads": .int(heads),
            "num_hidden_layers": .int(layerCount),
            "num_key_value_heads": .int(kvHeads),
            "rms_norm_eps": .float(rmsEps),
            "rope_scaling": .null,
            "rope_theta": .float(ropeBase),
            "tie_word_embeddings": .bool(byName["output.weight"] == nil),
            "use_cache": .bool(true),
            "vocab_size": .int(vocab),
        ]
        if !qwen { c["mlp_bias"] = .bool(false); c["pretraining_tp"] = .int(1) }
        for (kind, key) in [("bos", "bos_token_id"), ("eos", "eos_token_id"), ("padding", "pad_token_id")] {
            if let id = source["tokenizer.ggml.\(kind)_token_id"]?.intValue { c[key] = .int(id) }
        }
        return c
    }

    /// Writes the tokenizer files; returns their names and notes.
    func writeTokenizer(to folder: String) throws -> (files: [String], notes: [String]) {
        if let from = hfFolder {
            var files: [String] = []
            for name in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
                         "chat_template.jinja", "chat_template.json", "vocab.json", "merges.txt"] {
                let path = from + "/" + name
                guard FileManager.default.fileExists(atPath: path) else { continue }
                guard let data = FileManager.default.contents(atPath: path) else {
                    throw HFQuantizedError.invalidCheckpoint(path: path, reason: "cannot read it")
                }
                try HFQuantizedWriter.writeText(Array(data), to: folder + "/" + name)
                files.append(name)
            }
            return (files, files.contains("tokenizer.json") ? [] : ["the source folder has no tokenizer.json; none written"])
        }
        do {
            let export = try HFTokenizerExport(source: source, contextLength: context)
            try HFQuantizedWriter.writeText(export.tokenizerJSON().text(indent: 0), to: folder + "/tokenizer.json")
            try HFQuantizedWriter.writeText(export.tokenizerConfigJSON().text(indent: 2), to: folder + "/tokenizer_config.json")
            return (["tokenizer.json", "tokenizer_config.json"], [])
        } catch let error as HFTokenizerExport.Unsupported {
            return ([], ["no tokenizer written: \(error.reason)"])
        }
    }
}
