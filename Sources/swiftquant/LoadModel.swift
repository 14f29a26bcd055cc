import Formats
import Foundation
import Models
import Tokenizers

/// A runnable model with its tokenizer and the file it came from.
struct LoadedModel {
    var model: LlamaModel
    var tokenizer: BPETokenizer
    var file: GGUFFile
    var loadSeconds: Double

    /// Loads a GGUF model for inference: by default computing on the file's quantized
    /// blocks (`.native`), or with every weight decoded to f32 (`.f32`).
    init(path: String, weights: WeightMode = .native) throws {
        let start = Date()
        let ckpt = try Checkpoint(path: path)
        guard let gguf = ckpt.gguf else {
            throw ModelError.unsupportedArchitecture(
                path: path, architecture: (ckpt.architecture ?? "unknown") + " in safetensors (convert to GGUF first)")
        }
        file = gguf
        model = try LlamaLoader.load(gguf, weights: weights)
        tokenizer = try BPETokenizer(gguf: gguf)
        loadSeconds = Date().timeIntervalSince(start)
    }

    /// The BOS token llama.cpp would put first, if the file asks for one.
    var bos: Int32? { tokenizer.addBOS ? tokenizer.bosID : nil }
}
