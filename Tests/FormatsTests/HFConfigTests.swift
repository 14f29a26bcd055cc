#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Testing
@testable import Formats

/// `config.json` decoding.
@Suite struct HFConfigTests {
    func decode(_ json: String) throws -> HFConfig { try HFConfig(data: Data(json.utf8), path: "cfg.json") }

    @Test func realMiniLMConfig() throws {
        let config = try HFConfig(contentsOf: try SafeTensorsFixtures.miniLMFolder() + "/config.json")
        #expect(config.modelType == "bert")
        guard case .bert(let bert) = config else {
            Issue.record("expected bert, got \(config)")
            return
        }
        #expect(bert == BertConfig(hiddenSize: 384, numHiddenLayers: 6, numAttentionHeads: 12,
                                   intermediateSize: 1536, maxPositionEmbeddings: 512, vocabSize: 30522,
                                   typeVocabSize: 2, layerNormEps: 1e-12, hiddenAct: "gelu"))
    }

    /// SmolLM2-135M's config (as on the Hub), with a list of EOS ids and rope_scaling added.
    static let smolLM2 = """
    {
      "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
      "bos_token_id": 1, "eos_token_id": [2, 0], "hidden_act": "silu", "hidden_size": 576,
      "initializer_range": 0.041666666666666664, "intermediate_size": 1536,
      "max_position_embeddings": 8192, "model_type": "llama", "num_attention_heads": 9,
      "num_hidden_layers": 30, "num_key_value_heads": 3, "pretraining_tp": 1,
      "rms_norm_eps": 1e-05, "rope_scaling": {"factor": 8.0, "rope_type": "llama3", "low_freq_factor": 1.0},
      "rope_theta": 100000, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
      "transformers_version": "4.42.3", "use_cache": true, "vocab_size": 49152
    }
    """

    @Test func llamaConfig() throws {
        guard case .llama(let c) = try decode(Self.smolLM2) else {
            Issue.record("not decoded as llama")
            return
        }
        #expect(c.modelType == "llama")
        #expect(c.hiddenSize == 576 && c.intermediateSize == 1536 && c.numHiddenLayers == 30)
        #expect(c.numAttentionHeads == 9 && c.numKeyValueHeads == 3 && c.headDim == 64)
        #expect(c.rmsNormEps == 1e-5 && c.ropeTheta == 100000)
        #expect(c.maxPositionEmbeddings == 8192 && c.vocabSize == 49152)
        #expect(c.tieWordEmbeddings && !c.attentionBias)
        #expect(c.bosTokenID == 1 && c.eosTokenIDs == [2, 0])
        #expect(c.torchDType == "bfloat16")
    }

    @Test func llamaDefaults() throws {
        let common = #"{"model_type":"qwen2","hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"#
            + #""num_attention_heads":4,"vocab_size":100,"eos_token_id":7,"dtype":"float16","head_dim":32,"#
        let json = common + #""rope_scaling":null}"#
        guard case .llama(let c) = try decode(json) else {
            Issue.record("qwen2 not decoded as llama family")
            return
        }
        #expect(c.numKeyValueHeads == 4)  // defaults to the head count
        #expect(c.headDim == 32)  // explicit head_dim wins over hidden / heads
        #expect(c.ropeTheta == 10000 && c.rmsNormEps == 1e-6 && c.maxPositionEmbeddings == 2048)
        #expect(!c.tieWordEmbeddings && c.attentionBias)  // qwen2 has q/k/v biases
        #expect(c.bosTokenID == nil && c.eosTokenIDs == [7])
        #expect(c.torchDType == "float16")
        // rope_theta inside rope_parameters (newer transformers).
        let nested = common + #""rope_parameters":{"rope_theta":5e5}}"#
        guard case .llama(let c2) = try decode(nested) else { return }
        #expect(c2.ropeTheta == 500000)
    }

    @Test func otherModelTypes() throws {
        #expect(try decode(#"{"model_type":"gpt2","n_embd":768}"#) == .other(modelType: "gpt2"))
        #expect(try decode(#"{"model_type":"gemma"}"#).modelType == "gemma")
    }

    @Test func invalidConfigs() throws {
        let base = #""model_type":"llama","hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"vocab_size":100"#
        let cases: [(String, String, String)] = [
            ("not json", "{", "invalid"),
            ("not an object", "[1]", "invalid"),
            ("no model_type", #"{"hidden_size":3}"#, "missingField"),
            ("missing heads", "{" + base + "}", "missingField"),
            ("zero heads", "{" + base + #","num_attention_heads":0}"#, "invalidValue"),
            ("string size", "{" + base + #","num_attention_heads":"4"}"#, "invalidValue"),
            ("negative layers", #"{"model_type":"bert","hidden_size":8,"num_hidden_layers":-1,"num_attention_heads":2,"intermediate_size":4,"vocab_size":9}"#, "invalidValue"),
            ("heads do not divide", "{" + base + #","num_attention_heads":3}"#, "invalidValue"),
            ("kv heads do not divide", "{" + base + #","num_attention_heads":4,"num_key_value_heads":3}"#, "invalidValue"),
            ("absurd vocab", #"{"model_type":"llama","hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"vocab_size":1000000000000}"#, "invalidValue"),
            ("negative eps", "{" + base + #","num_attention_heads":4,"rms_norm_eps":-1}"#, "invalidValue"),
        ]
        for (what, json, expected) in cases {
            do {
                _ = try decode(json)
                Issue.record("\(what): accepted")
            } catch let error as HFConfigError {
                #expect(SafeTensorsFixtures.caseName(error) == expected, "\(what): \(error)")
                #expect(error.description.hasPrefix("cfg.json: ") && !error.description.contains("\n"), "\(error)")
            }
        }
        #expect(throws: HFConfigError.self) { try HFConfig(contentsOf: "/nonexistent/config.json") }
    }
}
