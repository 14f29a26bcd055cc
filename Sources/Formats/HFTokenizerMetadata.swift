// A Hugging Face byte-level BPE tokenizer.json written as llama.cpp's `tokenizer.*` GGUF
// metadata, following the facts of llama.cpp's converter (convert_hf_to_gguf.py and
// gguf-py's SpecialVocab).

import Foundation
import Tensors

/// The `tokenizer.*` metadata llama.cpp's converter writes for a byte-level BPE
/// `tokenizer.json` (GPT-2 style: Llama 3, Qwen2, SmolLM, GPT-2).
///
/// - `tokenizer.ggml.model` is "gpt2".
/// - `tokenizer.ggml.pre` is recognised from the structure of `pre_tokenizer` (llama.cpp
///   hashes the token ids of a test text instead; for these families the structure
///   decides the same): `Sequence[Digits(individual), ByteLevel(regex)]` → "smollm",
///   `ByteLevel(regex)` → "gpt-2", `Sequence[Split(Llama 3 pattern), ByteLevel]` →
///   "llama-bpe", `Sequence[Split(Qwen2 pattern), ByteLevel]` → "qwen2". Anything else is
///   an error rather than a tokenizer llama.cpp would run differently.
/// - `tokens` has `config.json`'s `vocab_size` entries; ids no token uses become
///   `[PAD<id>]` of type 5 (unused). `token_type` is 1 for normal tokens, 3 (control) for
///   added tokens marked special or looking special (`<|…|>`), 4 (user-defined) for other
///   added tokens.
/// - `merges` as `"left right"` strings (a space inside a pair's side becomes U+0120).
/// - BOS/EOS/UNK/padding ids: `tokenizer_config.json`'s `bos_token`… looked up among the
///   added tokens, else `config.json`'s `bos_token_id`…
/// - `add_bos_token`/`add_eos_token`: `tokenizer_config.json` when it says, else a
///   `TemplateProcessing` post-processor; llama.cpp also writes `add_bos_token = false`
///   for Llama-architecture models with a 49152-token vocabulary (SmolLM, Granite).
/// - `add_space_prefix` (llama architecture) from `tokenizer_config.json`'s
///   `add_prefix_space`; `tokenizer.chat_template` from `tokenizer_config.json`, else
///   `chat_template.jinja` or `chat_template.json`.
enum HFTokenizerMetadata {
    /// Largest tokenizer.json read (real ones are up to a few tens of megabytes).
    static let maxFileSize = 512 << 20

    /// Llama 3's pre-tokenizer regex as tokenizer.json spells it.
    static let llama3Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    /// Qwen2's: Llama 3's with single digits.
    static let qwen2Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// Reads `tokenizer.json` (and `tokenizer_config.json`, chat template files) in `folder`.
    /// - Throws: `QuantizeError.unsupportedInput` naming the file.
    static func read(folder: String, architecture: String, vocabSize: Int, config: JSONValue) throws -> [GGUFKeyValue] {
        let path = folder + "/tokenizer.json"
        func fail(_ reason: String) -> QuantizeError { .unsupportedInput(path: path, reason: reason) }
        guard FileManager.default.fileExists(atPath: path) else {
            throw fail("missing; only Hugging Face tokenizer.json (byte-level BPE) tokenizers are read")
        }
        let root = try readJSON(path, required: true)!
        guard case .object = root, let model = root["model"] else { throw fail("no \"model\" object") }
        let type = model["type"]?.stringValue ?? (model["merges"] != nil ? "BPE" : "?")
        guard type == "BPE" else { throw fail("model type \(type) is not supported (byte-level BPE only)") }
        if model["byte_fallback"]?.boolValue == true {
            throw fail("byte_fallback BPE (SentencePiece style, llama.cpp's \"llama\" tokenizer) is not supported")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let s = model[key]?.stringValue, !s.isEmpty { throw fail("model.\(key) is not supported") }
        }
        switch root["normalizer"]?["type"]?.stringValue {
        case nil, "NFC"?: break
        case let other?: throw fail("normalizer \(other) is not supported")
        }
        let pre = try preName(root["pre_tokenizer"], fail)

        // Tokens and their types.
        guard let vocab = model["vocab"]?.objectValue else { throw fail("model.vocab is not an object") }
        var tokens = [String?](repeating: nil, count: vocabSize)
        var types = [Int32](repeating: 1, count: vocabSize)
        func slot(_ value: JSONValue?, _ what: String) throws -> Int {
            guard let id = value?.intValue, id >= 0 else { throw fail("\(what) has no valid id") }
            guard id < vocabSize else { throw fail("\(what) has id \(id), not below config.json's vocab_size \(vocabSize)") }
            return id
        }
        for member in vocab { tokens[try slot(member.value, "token \(member.key.debugDescription)")] = member.key }
        var added: [(content: String, id: Int)] = []
        for item in root["added_tokens"]?.arrayValue ?? [] {
            guard let content = item["content"]?.stringValue else { throw fail("an added token has no content") }
            let id = try slot(item["id"], "added token \(content.debugDescription)")
            tokens[id] = content
            types[id] = item["special"]?.boolValue == true || looksSpecial(content) ? 3 : 4
            added.append((content, id))
        }
        for i in tokens.indices where tokens[i] == nil {
            tokens[i] = "[PAD\(i)]"
            types[i] = 5
        }

        let merges = try mergeStrings(model["merges"], fail)
        var m: [GGUFKeyValue] = [
            GGUFKeyValue("tokenizer.ggml.model", .string("gpt2")),
            GGUFKeyValue("tokenizer.ggml.pre", .string(pre)),
            GGUFKeyValue("tokenizer.ggml.tokens", .stringArray(tokens.map { $0! })),
            GGUFKeyValue("tokenizer.ggml.token_type", .int32Array(types)),
            GGUFKeyValue("tokenizer.ggml.merges", .stringArray(merges)),
        ]

        // Special ids: tokenizer_config.json's tokens among the added ones, then config.json's ids.
        let settings = try readJSON(folder + "/tokenizer_config.json", required: false) ?? .object([])
        for (kind, key) in [("bos", "bos_token_id"), ("eos", "eos_token_id"), ("unk", "unknown_token_id"),
                            ("pad", "padding_token_id")] {
            let entry = settings["\(kind)_token"]
            let content = entry?.stringValue ?? entry?["content"]?.stringValue
            let id = content.flatMap { c in added.first { $0.content == c }?.id } ?? config["\(kind)_token_id"]?.intValue
            if let id, id >= 0, id < vocabSize { m.append(GGUFKeyValue("tokenizer.ggml.\(key)", .uint32(UInt32(id)))) }
        }
        if architecture == "llama", let prefix = settings["add_prefix_space"]?.boolValue {
            m.append(GGUFKeyValue("tokenizer.ggml.add_space_prefix", .bool(prefix)))
        }
        var addBOS: Bool? = architecture == "llama" && vocabSize == 49152 ? false : nil
        let template = templateAdds(root["post_processor"])
        addBOS = template.bos ?? addBOS
        var addEOS = template.eos
        if let b = settings["add_bos_token"]?.boolValue { addBOS = b }
        if let e = settings["add_eos_token"]?.boolValue { addEOS = e }
        if let addBOS { m.append(GGUFKeyValue("tokenizer.ggml.add_bos_token", .bool(addBOS))) }
        if let addEOS { m.append(GGUFKeyValue("tokenizer.ggml.add_eos_token", .bool(addEOS))) }
        if let chat = try chatTemplate(settings, folder: folder) {
            m.append(GGUFKeyValue("tokenizer.chat_template", .string(chat)))
        }
        return m
    }

    /// Parses a JSON file; nil when it is absent and not `required`.
    private static func readJSON(_ path: String, required: Bool) throws -> JSONValue? {
        guard required || FileManager.default.fileExists(atPath: path) else { return nil }
        let mapped: MappedFile
        do {
            mapped = try MappedFile(path: path)
        } catch {
            throw QuantizeError.unsupportedInput(path: path, reason: "cannot read: \(error)")
        }
        guard mapped.count <= maxFileSize else {
            throw QuantizeError.unsupportedInput(path: path, reason: "\(mapped.count) bytes, more than \(maxFileSize)")
        }
        do {
            return try JSONValue.parse(mapped.bytes, maxDepth: 64, allowDuplicateKeys: true)
        } catch {
            throw QuantizeError.unsupportedInput(path: path, reason: "not valid JSON: \(error)")
        }
    }

    /// llama.cpp's `tokenizer.ggml.pre` for a pre-tokenizer, recognised by structure.
    static func preName(_ value: JSONValue?, _ fail: (String) -> QuantizeError) throws -> String {
        func flatten(_ v: JSONValue?) -> [JSONValue] {
            guard let v, v != .null else { return [] }
            if v["type"]?.stringValue == "Sequence" { return (v["pretokenizers"]?.arrayValue ?? []).flatMap(flatten) }
            return [v]
        }
        let stages: [String] = flatten(value).map { stage in
            let type = stage["type"]?.stringValue ?? "?"
            switch type {
            case "ByteLevel":
                if stage["add_prefix_space"]?.boolValue == true { return "ByteLevel(add_prefix_space)" }
                return stage["use_regex"]?.boolValue ?? true ? "ByteLevel(regex)" : "ByteLevel"
            case "Digits":
                return stage["individual_digits"]?.boolValue == true ? "Digits(individual)" : "Digits"
            case "Split":
                let pattern = stage["pattern"]?["Regex"]?.stringValue
                let isolated = (stage["behavior"]?.stringValue ?? "Isolated") == "Isolated"
                    && stage["invert"]?.boolValue != true
                if isolated && pattern == llama3Pattern { return "Split(llama3)" }
                if isolated && pattern == qwen2Pattern { return "Split(qwen2)" }
                return "Split(other)"
            default:
                return type
            }
        }
        switch stages {
        case ["Digits(individual)", "ByteLevel(regex)"]: return "smollm"
        case ["ByteLevel(regex)"]: return "gpt-2"
        case ["Split(llama3)", "ByteLevel"]: return "llama-bpe"
        case ["Split(qwen2)", "ByteLevel"]: return "qwen2"
        default:
            throw fail("pre_tokenizer [\(stages.joined(separator: ", "))] is not one recognised "
                + "(smollm, gpt-2, llama-bpe, qwen2)")
        }
    }

    /// Added tokens llama.cpp treats as control tokens even when not marked special.
    static func looksSpecial(_ text: String) -> Bool {
        ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].contains(text)
            || (text.hasPrefix("<|") && text.hasSuffix("|>") && text.count >= 4)
            || (text.hasPrefix("<｜") && text.hasSuffix("｜>") && text.count >= 4)
            || (text.hasPrefix("<unused") && text.hasSuffix(">"))
    }

    private static func mergeStrings(_ value: JSONValue?, _ fail: (String) -> QuantizeError) throws -> [String] {
        guard let list = value?.arrayValue else { throw fail("model.merges is not a list") }
        return try list.enumerated().map { rank, item in
            if let s = item.stringValue { return s }
            if let pair = item.arrayValue, pair.count == 2, let a = pair[0].stringValue, let b = pair[1].stringValue {
                // gguf-py: a space inside a side is written as U+0120 so that "a b" stays splittable.
                func escape(_ s: String) -> String { s.replacingOccurrences(of: " ", with: "\u{120}") }
                return escape(a) + " " + escape(b)
            }
            throw fail("merge \(rank) is neither \"a b\" nor [a, b]")
        }
    }

    /// BOS/EOS additions implied by a `TemplateProcessing` (possibly inside a `Sequence`):
    /// true where the single-sequence template starts (ends) with a special token, nil
    /// where it says nothing.
    private static func templateAdds(_ value: JSONValue?) -> (bos: Bool?, eos: Bool?) {
        guard let value, value != .null else { return (nil, nil) }
        if value["type"]?.stringValue == "Sequence" {
            var result: (bos: Bool?, eos: Bool?) = (nil, nil)
            for item in value["processors"]?.arrayValue ?? [] {
                let inner = templateAdds(item)
                result = (result.bos ?? inner.bos, result.eos ?? inner.eos)
            }
            return result
        }
        guard value["type"]?.stringValue == "TemplateProcessing",
              let single = value["single"]?.arrayValue, single.count > 1 else { return (nil, nil) }
        return (single[0]["SpecialToken"] != nil ? true : nil, single[single.count - 1]["SpecialToken"] != nil ? true : nil)
    }

    private static func chatTemplate(_ settings: JSONValue, folder: String) throws -> String? {
        switch settings["chat_template"] {
        case .string(let s)?:
            return s
        case .array(let named)?:
            return named.first { $0["name"]?.stringValue == "default" }?["template"]?.stringValue
        default:
            break
        }
        let jinja = folder + "/chat_template.jinja"
        if FileManager.default.fileExists(atPath: jinja) {
            guard let data = FileManager.default.contents(atPath: jinja), let text = String(data: data, encoding: .utf8) else {
                throw QuantizeError.unsupportedInput(path: jinja, reason: "cannot read it as UTF-8")
            }
            return text
        }
        return try readJSON(folder + "/chat_template.json", required: false)?["chat_template"]?.stringValue
    }
}
