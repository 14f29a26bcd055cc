// A GGUF byte-level BPE tokenizer written back as Hugging Face tokenizer.json: the inverse
// of `HFTokenizerMetadata` for the pre-tokenizers it recognises.

import Foundation

/// Hugging Face `tokenizer.json` and `tokenizer_config.json` rebuilt from llama.cpp's
/// `tokenizer.ggml.*` metadata, for exported folders whose source is a GGUF file.
///
/// Only byte-level BPE (`tokenizer.ggml.model` "gpt2") with a pre-tokenizer
/// `HFTokenizerMetadata` recognises is written — "smollm" (`Digits(individual)` then
/// `ByteLevel`), "gpt-2" (`ByteLevel`), "llama-bpe" (Llama 3's `Split` then `ByteLevel`),
/// "qwen2" (Qwen2's `Split` then `ByteLevel`, NFC normalizer) — so that reading the file
/// back gives the same metadata. Tokens of type 3 (control) become special added tokens,
/// type 4 (user-defined) plain added tokens; every token is in the BPE vocabulary. Merges
/// are written as `"left right"` strings. A BOS the metadata asks to add becomes a
/// `TemplateProcessing` post-processor.
struct HFTokenizerExport {
    /// Why the metadata cannot be written as tokenizer.json.
    struct Unsupported: Error { let reason: String }

    let tokens: [String]
    let types: [Int]
    let merges: [String]
    let pre: String
    let source: QuantizationSource
    let contextLength: Int

    init(source: QuantizationSource, contextLength: Int) throws {
        self.source = source
        self.contextLength = contextLength
        let model = source["tokenizer.ggml.model"]?.stringValue ?? "(none)"
        guard model == "gpt2" else {
            throw Unsupported(reason: "tokenizer.ggml.model '\(model)' is not byte-level BPE (gpt2); only those are rebuilt")
        }
        pre = source["tokenizer.ggml.pre"]?.stringValue ?? "default"
        guard Self.preTokenizer(pre) != nil else {
            throw Unsupported(reason: "pre-tokenizer '\(pre)' is not one rebuilt (smollm, gpt-2, llama-bpe, qwen2)")
        }
        guard let t = source["tokenizer.ggml.tokens"]?.stringArrayValue, !t.isEmpty else {
            throw Unsupported(reason: "no tokenizer.ggml.tokens")
        }
        tokens = t
        let ty = source["tokenizer.ggml.token_type"]?.intArrayValue ?? Array(repeating: 1, count: t.count)
        guard ty.count == t.count else { throw Unsupported(reason: "token_type and tokens differ in length") }
        types = ty
        merges = source["tokenizer.ggml.merges"]?.stringArrayValue ?? []
        var seen = Set<String>()
        for token in tokens where !seen.insert(token).inserted {
            throw Unsupported(reason: "token \(JSONText.quoted(token)) appears twice; a BPE vocabulary maps each string once")
        }
    }

    /// `tokenizer.json`.
    func tokenizerJSON() -> JSONValue {
        func obj(_ m: [(String, JSONValue)]) -> JSONValue { .object(m.map { JSONMember(key: $0.0, value: $0.1) }) }
        let added: [JSONValue] = tokens.indices.filter { types[$0] == 3 || types[$0] == 4 }.map { i in
            obj([("id", .int(i)), ("content", .string(tokens[i])), ("single_word", .bool(false)), ("lstrip", .bool(false)),
                 ("rstrip", .bool(false)), ("normalized", .bool(false)), ("special", .bool(types[i] == 3))])
        }
        var post: JSONValue = .null
        if source["tokenizer.ggml.add_bos_token"]?.boolValue == true,
           let bos = source["tokenizer.ggml.bos_token_id"]?.intValue, tokens.indices.contains(bos) {
            let b = tokens[bos]
            let special = obj([("SpecialToken", obj([("id", .string(b)), ("type_id", .int(0))]))])
            func sequence(_ id: String, _ type: Int) -> JSONValue { obj([("Sequence", obj([("id", .string(id)), ("type_id", .int(type))]))]) }
            post = obj([("type", .string("TemplateProcessing")),
                        ("single", .array([special, sequence("A", 0)])),
                        ("pair", .array([special, sequence("A", 0), special, sequence("B", 1)])),
                        ("special_tokens", obj([(b, obj([("id", .string(b)), ("ids", .array([.int(bos)])),
                                                         ("tokens", .array([.string(b)]))]))]))])
        }
        let model = obj([
            ("type", .string("BPE")), ("dropout", .null), ("unk_token", .null), ("continuing_subword_prefix", .null),
            ("end_of_word_suffix", .null), ("fuse_unk", .bool(false)), ("byte_fallback", .bool(false)),
            ("ignore_merges", .bool(pre == "llama-bpe")),
            ("vocab", .object(tokens.enumerated().map { JSONMember(key: $0.element, value: .int($0.offset)) })),
            ("merges", .array(merges.map { .string($0) })),
        ])
        return obj([
            ("version", .string("1.0")), ("truncation", .null), ("padding", .null), ("added_tokens", .array(added)),
            ("normalizer", pre == "qwen2" ? obj([("type", .string("NFC"))]) : .null),
            ("pre_tokenizer", Self.preTokenizer(pre)!), ("post_processor", post),
            ("decoder", obj([("type", .string("ByteLevel")), ("add_prefix_space", .bool(true)),
                             ("trim_offsets", .bool(true)), ("use_regex", .bool(true))])),
            ("model", model),
        ])
    }

    /// `tokenizer_config.json`: special tokens, BOS/EOS flags, chat template.
    func tokenizerConfigJSON() -> JSONValue {
        var m: [String: JSONValue] = [
            "clean_up_tokenization_spaces": .bool(false),
            "model_max_length": .int(contextLength),
            "tokenizer_class": .string("PreTrainedTokenizerFast"),
        ]
        var decoder: [JSONMember] = []
        for i in tokens.indices where types[i] == 3 || types[i] == 4 {
            decoder.append(JSONMember(key: String(i), value: .object([
                JSONMember(key: "content", value: .string(tokens[i])), JSONMember(key: "lstrip", value: .bool(false)),
                JSONMember(key: "normalized", value: .bool(false)), JSONMember(key: "rstrip", value: .bool(false)),
                JSONMember(key: "single_word", value: .bool(false)), JSONMember(key: "special", value: .bool(types[i] == 3)),
            ])))
        }
        m["added_tokens_decoder"] = .object(decoder)
        for (kind, key) in [("bos", "bos_token"), ("eos", "eos_token"), ("unknown", "unk_token"), ("padding", "pad_token")] {
            if let id = source["tokenizer.ggml.\(kind)_token_id"]?.intValue, tokens.indices.contains(id) {
                m[key] = .string(tokens[id])
            }
        }
        for (meta, key) in [("add_bos_token", "add_bos_token"), ("add_eos_token", "add_eos_token"),
                            ("add_space_prefix", "add_prefix_space")] {
            if let b = source["tokenizer.ggml.\(meta)"]?.boolValue { m[key] = .bool(b) }
        }
        if let template = source["tokenizer.chat_template"]?.stringValue { m["chat_template"] = .string(template) }
        return .object(m.keys.sorted().map { JSONMember(key: $0, value: m[$0]!) })
    }

    /// The `pre_tokenizer` object for a llama.cpp pre-tokenizer name.
    static func preTokenizer(_ name: String) -> JSONValue? {
        func obj(_ m: [(String, JSONValue)]) -> JSONValue { .object(m.map { JSONMember(key: $0.0, value: $0.1) }) }
        func byteLevel(regex: Bool) -> JSONValue {
            obj([("type", .string("ByteLevel")), ("add_prefix_space", .bool(false)), ("trim_offsets", .bool(true)),
                 ("use_regex", .bool(regex))])
        }
        func split(_ pattern: String) -> JSONValue {
            obj([("type", .string("Split")), ("pattern", obj([("Regex", .string(pattern))])),
                 ("behavior", .string("Isolated")), ("invert", .bool(false))])
        }
        func sequence(_ items: [JSONValue]) -> JSONValue { obj([("type", .string("Sequence")), ("pretokenizers", .array(items))]) }
        switch name {
        case "smollm":
            return sequence([obj([("type", .string("Digits")), ("individual_digits", .bool(true))]), byteLevel(regex: true)])
        case "gpt-2", "gpt2":
            return byteLevel(regex: true)
        case "llama-bpe", "llama3":
            return sequence([split(HFTokenizerMetadata.llama3Pattern), byteLevel(regex: false)])
        case "qwen2":
            return sequence([split(HFTokenizerMetadata.qwen2Pattern), byteLevel(regex: false)])
        default:
            return nil
        }
    }
}
