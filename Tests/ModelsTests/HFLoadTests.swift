import Foundation
import Testing
import Evaluation
import Formats
@testable import Models
import Tensors
import Tokenizers

/// The Hugging Face folders `scripts/fixtures/hf_smollm2.py` builds from the SmolLM2 GGUF.
enum HFSmolLM2 {
    static let folder = RealModel.root.appendingPathComponent(".cache/fixtures/hf-smollm2").path
    static let sharded = folder + "/bf16-sharded"
    static let wikitext = RealModel.root.deletingLastPathComponent().appendingPathComponent("shared/data/wikitext-2/test.txt")

    /// The folder at `path`; fails the test, naming the script, when it was not built.
    static func require(_ path: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        try #require(FileManager.default.fileExists(atPath: path + "/config.json"),
                     "missing \(path): run `python3 scripts/fixtures/hf_smollm2.py` (after `bash scripts/fetch-models.sh`)",
                     sourceLocation: sourceLocation)
        return path
    }

    /// A fixed prompt's tokens, from the GGUF's tokenizer.
    static func tokens() throws -> [Int32] {
        let (_, tokenizer) = try RealModel.model.get()
        return tokenizer.encode("The capital of France is Paris. The quick brown fox jumps over the lazy dog 12\n",
                                addBOS: false, parseSpecial: false)
    }

    static func logits(_ model: LlamaModel, _ tokens: [Int32]) -> [Float] {
        model.forward(tokens, cache: model.makeCache(capacity: 64), logitsFrom: 0)
    }

    static func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }
}

@Suite(.serialized) struct HFLoadRealModelTests {
    @Test func smolLM2FromTheHuggingFaceFolderGivesTheGGUFLogits() throws {
        let source = try QuantizationSource(huggingFace: try HFSmolLM2.require(HFSmolLM2.folder))
        #expect(try LlamaLoader.hyperparameters(source) == LlamaLoader.hyperparameters(try RealModel.open()))
        let model = try LlamaLoader.load(source: source)
        let (reference, _) = try RealModel.model.get()
        let tokens = try HFSmolLM2.tokens()
        #expect(tokens.count > 15)
        let diff = HFSmolLM2.maxDifference(HFSmolLM2.logits(model, tokens), HFSmolLM2.logits(reference, tokens))
        print("SmolLM2 from the HF folder vs from the GGUF: max |Δ logit| = \(diff) over \(tokens.count) positions")
        #expect(diff <= 1e-5)
    }

    @Test func ggufThroughTheSourcePathLoadsTheSameModel() throws {
        let model = try LlamaLoader.load(source: QuantizationSource(gguf: try RealModel.open()))
        let (reference, _) = try RealModel.model.get()
        let tokens = try HFSmolLM2.tokens()
        #expect(HFSmolLM2.maxDifference(HFSmolLM2.logits(model, tokens), HFSmolLM2.logits(reference, tokens)) <= 1e-5)
    }

    @Test func shardedBF16FolderPredictsLikeTheF32Model() throws {
        let model = try LlamaLoader.load(source: QuantizationSource(huggingFace: try HFSmolLM2.require(HFSmolLM2.sharded)))
        let (reference, _) = try RealModel.model.get()
        let tokens = try HFSmolLM2.tokens()
        var mine = HFSmolLM2.logits(model, tokens), theirs = HFSmolLM2.logits(reference, tokens)
        let vocab = reference.hp.vocabSize
        logSoftmaxRows(&mine, rows: tokens.count, width: vocab)
        logSoftmaxRows(&theirs, rows: tokens.count, width: vocab)
        func argmax(_ x: [Float], _ row: Int) -> Int {
            let r = x[(row * vocab)..<((row + 1) * vocab)]
            return r.indices.max { r[$0] < r[$1] }! - row * vocab
        }
        let agree = (0..<tokens.count).filter { argmax(mine, $0) == argmax(theirs, $0) }.count
        // Log-probabilities of the tokens that actually follow.
        let follow = (0..<tokens.count - 1).map { j in
            abs(mine[j * vocab + Int(tokens[j + 1])] - theirs[j * vocab + Int(tokens[j + 1])])
        }.max()!
        print("SmolLM2 BF16 shards vs f32: top-1 agreement \(agree)/\(tokens.count), max |Δ log p(next)| = \(follow)")
        #expect(agree >= tokens.count - 2)
        #expect(follow < 0.25)
        // "Paris" after "The capital of France is".
        #expect(argmax(mine, 4) == Int(tokens[5]))
    }

    @Test func tokenizerFromTheHuggingFaceFolderEncodesWikitextLikeTheGGUF() throws {
        let folder = try HFSmolLM2.require(HFSmolLM2.folder)
        try #require(FileManager.default.fileExists(atPath: HFSmolLM2.wikitext.path),
                     "missing \(HFSmolLM2.wikitext.path): the shared data folder must sit beside the repository")
        let text = String(decoding: try Data(contentsOf: HFSmolLM2.wikitext), as: UTF8.self)
        let gguf = try BPETokenizer(gguf: try RealModel.open())
        let expected = gguf.encode(text, addBOS: nil, parseSpecial: true)
        #expect(expected.count > 250_000)
        let fromMetadata = try BPETokenizer(source: QuantizationSource(huggingFace: folder))
        let fromJSON = try BPETokenizer(tokenizerJSON: folder + "/tokenizer.json")
        for tokenizer in [fromMetadata, fromJSON] {
            #expect(tokenizer.encode(text, addBOS: nil, parseSpecial: true) == expected)
            #expect(tokenizer.addBOS == gguf.addBOS && tokenizer.bosID == gguf.bosID && tokenizer.eosID == gguf.eosID)
            #expect(tokenizer.paddingID == gguf.paddingID)
        }
        #expect(fromMetadata.tokens == gguf.tokens && fromMetadata.tokenTypes == gguf.tokenTypes)
        #expect(fromMetadata.unknownID == gguf.unknownID)
    }
}

/// Tiny random Hugging Face folders: loading them must give what the same weights give in
/// Hugging Face's own layout with rotate-half RoPE.
@Suite struct HFLoadTinyTests {
    static let tinyTokenizer = RealModel.root.appendingPathComponent("Tests/Fixtures/tokenizers/tiny-bpe-tokenizer.json").path

    @Test(arguments: ["llama", "mistral", "qwen2"])
    func loadedModelMatchesTheRotateHalfReference(modelType: String) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sq-hf-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let hidden = 16, heads = 2, kvHeads = 1, hd = 8, ff = 24, vocab = 420, layers = 2
        let bias = modelType == "qwen2", tied = modelType != "mistral"
        let config = """
            {"model_type": "\(modelType)", "hidden_size": \(hidden), "intermediate_size": \(ff),
             "num_hidden_layers": \(layers), "num_attention_heads": \(heads), "num_key_value_heads": \(kvHeads),
             "vocab_size": \(vocab), "max_position_embeddings": 64, "rms_norm_eps": 1e-06, "rope_theta": 100.0,
             "tie_word_embeddings": \(tied), "attention_bias": \(bias)}
            """
        try Data(config.utf8).write(to: URL(fileURLWithPath: folder + "/config.json"))
        try FileManager.default.copyItem(atPath: Self.tinyTokenizer, toPath: folder + "/tokenizer.json")

        var rng = SplitMix64(seed: 7)
        var writer = SafeTensorsWriter()
        func tensor(_ name: String, _ shape: [Int], around center: Float = 0, scale: Float = 0.3) throws -> [Float] {
            let values = (0..<shape.reduce(1, *)).map { _ in center + (Float(rng.nextDouble()) * 2 - 1) * scale }
            try writer.add(name, shape: shape, floats: values)
            return values
        }
        func linear(_ name: String, _ o: Int, _ i: Int, bias b: String? = nil) throws -> DenseLinear {
            let w = try tensor(name, [o, i])
            return DenseLinear(Tensor(shape: [o, i], data: w), bias: try b.map { try tensor($0, [o], scale: 0.5) })
        }
        let embedding = try linear("model.embed_tokens.weight", vocab, hidden)
        var blocks: [LlamaBlock] = []
        for l in 0..<layers {
            let p = "model.layers.\(l)."
            blocks.append(LlamaBlock(
                attentionNorm: try tensor(p + "input_layernorm.weight", [hidden], around: 1, scale: 0.1),
                query: try linear(p + "self_attn.q_proj.weight", heads * hd, hidden, bias: bias ? p + "self_attn.q_proj.bias" : nil),
                key: try linear(p + "self_attn.k_proj.weight", kvHeads * hd, hidden, bias: bias ? p + "self_attn.k_proj.bias" : nil),
                value: try linear(p + "self_attn.v_proj.weight", kvHeads * hd, hidden, bias: bias ? p + "self_attn.v_proj.bias" : nil),
                output: try linear(p + "self_attn.o_proj.weight", hidden, heads * hd),
                mlpNorm: try tensor(p + "post_attention_layernorm.weight", [hidden], around: 1, scale: 0.1),
                gate: try linear(p + "mlp.gate_proj.weight", ff, hidden),
                up: try linear(p + "mlp.up_proj.weight", ff, hidden),
                down: try linear(p + "mlp.down_proj.weight", hidden, ff)))
        }
        let outputNorm = try tensor("model.norm.weight", [hidden], around: 1, scale: 0.1)
        let head = tied ? embedding : try linear("lm_head.weight", vocab, hidden)
        try writer.write(to: folder + "/model.safetensors")

        let source = try QuantizationSource(huggingFace: folder)
        let loaded = try LlamaLoader.load(source: source)
        #expect(loaded.hp.ropeStyle == (modelType == "qwen2" ? .halves : .interleaved))
        var hp = loaded.hp
        hp.ropeStyle = .halves  // Hugging Face's layout
        #expect(hp == LlamaHyperparameters(vocabSize: vocab, hiddenSize: hidden, intermediateSize: ff, layerCount: layers,
                                           headCount: heads, kvHeadCount: kvHeads, headDim: hd, ropeBase: 100,
                                           ropeStyle: .halves, rmsEps: 1e-6, contextLength: 64))
        let reference = LlamaModel(hp: hp, embedding: embedding, blocks: blocks, outputNorm: outputNorm, head: head)
        let tokens: [Int32] = [5, 17, 300, 42, 8, 8, 1, 419, 29, 30, 200, 3]
        let diff = HFSmolLM2.maxDifference(HFSmolLM2.logits(loaded, tokens), HFSmolLM2.logits(reference, tokens))
        #expect(diff <= 1e-5, "\(modelType): max |Δ logit| = \(diff)")
        // The same weights with the other RoPE pairing differ: the test can fail.
        if modelType != "qwen2" {
            let wrong = LlamaModel(hp: loaded.hp, embedding: embedding, blocks: blocks, outputNorm: outputNorm, head: head)
            #expect(HFSmolLM2.maxDifference(HFSmolLM2.logits(wrong, tokens), HFSmolLM2.logits(reference, tokens)) > 1e-3)
        }
        #expect(try BPETokenizer(source: source).vocabSize == vocab)
    }

    @Test func ropeScalingIsRefusedRatherThanIgnored() throws {
        let source = QuantizationSource(path: "scaled", metadata: [
            GGUFKeyValue("general.architecture", .string("llama")),
            GGUFKeyValue("llama.embedding_length", .uint32(8)), GGUFKeyValue("llama.attention.head_count", .uint32(2)),
            GGUFKeyValue("llama.feed_forward_length", .uint32(8)), GGUFKeyValue("llama.block_count", .uint32(1)),
            GGUFKeyValue("llama.vocab_size", .uint32(4)), GGUFKeyValue("llama.rope.scaling.type", .string("linear")),
        ], tensors: [])
        #expect(throws: ModelError.invalidHyperparameters(path: "scaled", reason: "RoPE scaling is not implemented by LlamaModel")) {
            _ = try LlamaLoader.load(source: source)
        }
        var missing = source
        missing.metadata.removeLast()
        #expect(throws: ModelError.missingTensor(path: "scaled", name: "token_embd.weight")) {
            _ = try LlamaLoader.load(source: missing)
        }
    }
}
