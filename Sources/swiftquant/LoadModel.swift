import Formats
import Foundation
import Models
import Tokenizers

/// A runnable model with its tokenizer and the file it came from.
struct LoadedModel {
    var model: LlamaModel
    var tokenizer: BPETokenizer
    /// The Jinja chat template the checkpoint carries, if any.
    var chatTemplate: String?
    var loadSeconds: Double

    /// Loads a model for inference. A GGUF file by default computes on its quantized blocks
    /// (`.native`), or with every weight decoded to f32 (`.f32`); a Hugging Face Llama-family
    /// folder runs on its float weights (a GPTQ/AWQ folder on its weights dequantized to f32,
    /// a bitsandbytes 8-bit folder as LLM.int8() on its int8 rows, or dequantized with `.f32`).
    init(path: String, weights: WeightMode = .native) throws {
        let start = Date()
        let ckpt = try Checkpoint(path: path)
        if let gguf = ckpt.gguf {
            model = try LlamaLoader.load(gguf, weights: weights)
            tokenizer = try BPETokenizer(gguf: gguf)
            chatTemplate = gguf.string("tokenizer.chat_template")
        } else {
            let source = try QuantizationSource(anyHuggingFace: path)
            model = try LlamaLoader.load(source: source)
            if weights == .native { try model.runStoredInt8Layers(of: source) }
            tokenizer = try BPETokenizer(source: source)
            chatTemplate = source["tokenizer.chat_template"]?.stringValue
        }
        loadSeconds = Date().timeIntervalSince(start)
    }

    /// The BOS token llama.cpp would put first, if the file asks for one.
    var bos: Int32? { tokenizer.addBOS ? tokenizer.bosID : nil }
}
