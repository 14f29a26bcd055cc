import Formats

extension BPETokenizer {
    /// Builds the tokenizer a GGUF file describes in its `tokenizer.ggml.*` metadata.
    ///
    /// - Throws: `TokenizerError.invalidFile` naming the file when the metadata is missing
    ///   or is not a byte-level BPE (`tokenizer.ggml.model` other than "gpt2"), and the
    ///   errors of the array initializer for inconsistent vocabularies.
    public convenience init(gguf file: GGUFFile) throws {
        let model = file.string("tokenizer.ggml.model") ?? ""
        guard model == "gpt2" else {
            throw TokenizerError.invalidFile(
                path: file.path, reason: model.isEmpty ? "no tokenizer.ggml.model in the metadata"
                    : "tokenizer model '\(model)' is not supported yet (only byte-level BPE, 'gpt2')")
        }
        guard let tokens = file.stringArray("tokenizer.ggml.tokens") else {
            throw TokenizerError.invalidFile(path: file.path, reason: "no tokenizer.ggml.tokens array")
        }
        let merges = file.stringArray("tokenizer.ggml.merges") ?? []
        let types = file.intArray("tokenizer.ggml.token_type").map { $0.map { Int32(truncatingIfNeeded: $0) } }
        func id(_ key: String) -> Int32? { file.int(key).map { Int32(truncatingIfNeeded: $0) } }
        do {
            try self.init(tokens: tokens, merges: merges, tokenTypes: types,
                          pre: file.string("tokenizer.ggml.pre") ?? "default",
                          bosID: id("tokenizer.ggml.bos_token_id"), eosID: id("tokenizer.ggml.eos_token_id"),
                          unknownID: id("tokenizer.ggml.unknown_token_id"),
                          paddingID: id("tokenizer.ggml.padding_token_id"),
                          addBOS: file.bool("tokenizer.ggml.add_bos_token") ?? false,
                          addEOS: file.bool("tokenizer.ggml.add_eos_token") ?? false)
        } catch let e as TokenizerError {
            throw TokenizerError.invalidFile(path: file.path, reason: e.description)
        }
    }
}
