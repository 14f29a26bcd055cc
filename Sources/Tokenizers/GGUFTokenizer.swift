import Formats

extension BPETokenizer {
    /// Builds the tokenizer a GGUF file describes in its `tokenizer.ggml.*` metadata.
    ///
    /// - Throws: `TokenizerError.invalidFile` naming the file when the metadata is missing
    ///   or is not a byte-level BPE (`tokenizer.ggml.model` other than "gpt2"), and the
    ///   errors of the array initializer for inconsistent vocabularies.
    public convenience init(gguf file: GGUFFile) throws {
        try self.init(metadata: file.metadata, path: file.path)
    }

    /// Builds the tokenizer a `QuantizationSource` describes (a GGUF file, or a Hugging Face
    /// folder mapped to llama.cpp's `tokenizer.ggml.*` metadata).
    ///
    /// - Throws: as `init(metadata:path:)`.
    public convenience init(source: QuantizationSource) throws {
        try self.init(metadata: source.metadata, path: source.path)
    }

    /// Builds the tokenizer that GGUF-style `tokenizer.ggml.*` metadata describes; `path`
    /// names the file in errors.
    ///
    /// - Throws: `TokenizerError.invalidFile` naming `path` when the metadata is missing or
    ///   is not a byte-level BPE (`tokenizer.ggml.model` other than "gpt2"), and the errors
    ///   of the array initializer for inconsistent vocabularies.
    public convenience init(metadata: [GGUFKeyValue], path: String) throws {
        var index: [String: GGUFValue] = [:]
        for entry in metadata where index[entry.key] == nil { index[entry.key] = entry.value }
        let model = index["tokenizer.ggml.model"]?.stringValue ?? ""
        guard model == "gpt2" else {
            throw TokenizerError.invalidFile(
                path: path, reason: model.isEmpty ? "no tokenizer.ggml.model in the metadata"
                    : "tokenizer model '\(model)' is not supported yet (only byte-level BPE, 'gpt2')")
        }
        guard let tokens = index["tokenizer.ggml.tokens"]?.stringArrayValue else {
            throw TokenizerError.invalidFile(path: path, reason: "no tokenizer.ggml.tokens array")
        }
        let merges = index["tokenizer.ggml.merges"]?.stringArrayValue ?? []
        let types = index["tokenizer.ggml.token_type"]?.intArrayValue.map { $0.map { Int32(truncatingIfNeeded: $0) } }
        func id(_ key: String) -> Int32? { index[key]?.intValue.map { Int32(truncatingIfNeeded: $0) } }
        do {
            try self.init(tokens: tokens, merges: merges, tokenTypes: types,
                          pre: index["tokenizer.ggml.pre"]?.stringValue ?? "default",
                          bosID: id("tokenizer.ggml.bos_token_id"), eosID: id("tokenizer.ggml.eos_token_id"),
                          unknownID: id("tokenizer.ggml.unknown_token_id"),
                          paddingID: id("tokenizer.ggml.padding_token_id"),
                          addBOS: index["tokenizer.ggml.add_bos_token"]?.boolValue ?? false,
                          addEOS: index["tokenizer.ggml.add_eos_token"]?.boolValue ?? false)
        } catch let e as TokenizerError {
            throw TokenizerError.invalidFile(path: path, reason: e.description)
        }
    }
}
