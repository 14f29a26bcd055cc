// Loading a Hugging Face `tokenizer.json` (the `tokenizers` library's file) for a
// byte-level BPE model. Only what these models use is accepted; anything else is an
// error naming the feature, never a silently different tokenization.

import Foundation

extension BPETokenizer {
    /// Loads a byte-level BPE `tokenizer.json`.
    ///
    /// Reads `model` (type BPE, `vocab`, `merges` as `"a b"` strings or `["a", "b"]`
    /// pairs, `unk_token`, `fuse_unk`, `ignore_merges`), `normalizer` (none or NFC),
    /// `pre_tokenizer` (`ByteLevel`, `Split`, `Digits`, or a `Sequence` of them),
    /// `added_tokens` (special ones become control tokens, the others user-defined; all
    /// are matched literally before pre-tokenization) and `post_processor` (a
    /// `TemplateProcessing` that starts with a special token turns on BOS).
    ///
    /// BOS/EOS/padding come from `config` (default: a `tokenizer_config.json` beside the
    /// file, if there is one): its `bos_token`, `eos_token`, `pad_token`,
    /// `add_bos_token` and `add_eos_token`.
    ///
    /// - Throws: `TokenizerError` naming the file and the problem.
    public convenience init(tokenizerJSON path: String, config: String? = nil) throws {
        let root = try Self.readJSONObject(path)
        func fail(_ reason: String) -> TokenizerError { .invalidFile(path: path, reason: reason) }
        func unsupported(_ what: String) -> TokenizerError { .unsupported("\(path): \(what)") }

        guard let model = root["model"] as? [String: Any] else { throw fail("no \"model\" object") }
        let type = model["type"] as? String ?? (model["merges"] != nil ? "BPE" : "?")
        guard type == "BPE" else { throw unsupported("model type \(type) (only BPE)") }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let value = model[key] as? String, !value.isEmpty { throw unsupported("model.\(key)") }
        }
        if model["byte_fallback"] as? Bool == true {
            throw unsupported("byte_fallback (SentencePiece-style BPE is not implemented)")
        }
        guard let vocab = model["vocab"] as? [String: Any] else { throw fail("model.vocab is not an object") }

        // Vocabulary, then added tokens on top (they may extend it).
        var idToText: [Int: String] = [:]
        idToText.reserveCapacity(vocab.count)
        var maxID = -1
        for (text, value) in vocab {
            guard let id = Self.int(value), id >= 0, id < Int(Int32.max) else {
                throw fail("model.vocab[\(text.debugDescription)] is not a token id")
            }
            idToText[id] = text
            maxID = max(maxID, id)
        }
        var addedTypes: [Int: TokenType] = [:]
        for item in root["added_tokens"] as? [[String: Any]] ?? [] {
            guard let id = Self.int(item["id"]), id >= 0, id < Int(Int32.max),
                  let content = item["content"] as? String else {
                throw fail("added_tokens entry without id/content")
            }
            idToText[id] = content
            addedTypes[id] = item["special"] as? Bool == true ? .control : .userDefined
            maxID = max(maxID, id)
        }
        guard maxID >= 0 else { throw fail("empty vocabulary") }
        var tokens = [String](repeating: "", count: maxID + 1)
        var types = [TokenType](repeating: .unused, count: maxID + 1)
        for (id, text) in idToText {
            tokens[id] = text
            types[id] = addedTypes[id] ?? .normal
        }

        let merges = try Self.mergePairs(model["merges"], fail)
        var options = TextOptions()
        options.fuseUnknown = model["fuse_unk"] as? Bool ?? false
        options.nfc = try Self.wantsNFC(root["normalizer"], unsupported)
        var sawByteLevel = false
        let stages = try Self.stages(root["pre_tokenizer"], isFirst: true, options: &options,
                                     sawByteLevel: &sawByteLevel, unsupported)
        if let decoder = root["decoder"] as? [String: Any], Self.mentionsByteLevel(decoder) { sawByteLevel = true }
        guard sawByteLevel else {
            throw unsupported("no ByteLevel pre-tokenizer or decoder (not a byte-level BPE)")
        }
        var missingByteID: Int32?
        if let unk = model["unk_token"] as? String {
            guard let id = tokens.firstIndex(of: unk) else { throw fail("unk_token \(unk.debugDescription) not in vocab") }
            missingByteID = Int32(id)
        }

        // Special ids: post-processor template first, then tokenizer_config.json.
        var special = Self.template(root["post_processor"])
        let configPath = config ?? (path as NSString).deletingLastPathComponent + "/tokenizer_config.json"
        if config != nil || FileManager.default.fileExists(atPath: configPath) {
            let settings = try Self.readJSONObject(configPath)
            func id(_ key: String) -> Int32? {
                let value = settings[key]
                let text = value as? String ?? (value as? [String: Any])?["content"] as? String
                return text.flatMap { tokens.firstIndex(of: $0) }.map(Int32.init)
            }
            special.bos = special.bos ?? id("bos_token")
            special.eos = special.eos ?? id("eos_token")
            special.pad = id("pad_token")
            if let add = settings["add_bos_token"] as? Bool { special.addBOS = add }
            if let add = settings["add_eos_token"] as? Bool { special.addEOS = add }
        }

        try self.init(tokens: tokens, mergePairs: merges, tokenTypes: types,
                      preTokenizer: PreTokenizer(stages: stages),
                      ignoreMerges: model["ignore_merges"] as? Bool ?? false,
                      bosID: special.bos, eosID: special.eos, unknownID: missingByteID,
                      paddingID: special.pad, addBOS: special.addBOS && special.bos != nil,
                      addEOS: special.addEOS && special.eos != nil,
                      missingByteID: missingByteID, options: options)
    }

    private static func readJSONObject(_ path: String) throws -> [String: Any] {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw TokenizerError.unreadable(path: path, reason: error.localizedDescription)
        }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw TokenizerError.invalidFile(path: path, reason: "not valid JSON: \(error.localizedDescription)")
        }
        guard let dictionary = object as? [String: Any] else {
            throw TokenizerError.invalidFile(path: path, reason: "top level is not a JSON object")
        }
        return dictionary
    }

    private static func int(_ value: Any?) -> Int? {
        if let n = value as? Int { return n }
        if let n = value as? NSNumber { return n.intValue }
        return nil
    }

    private static func mergePairs(_ value: Any?, _ fail: (String) -> TokenizerError) throws -> [(String, String)] {
        guard let list = value as? [Any] else { throw fail("model.merges is not a list") }
        var pairs: [(String, String)] = []
        pairs.reserveCapacity(list.count)
        for (rank, item) in list.enumerated() {
            if let pair = item as? [String], pair.count == 2 {
                pairs.append((pair[0], pair[1]))
            } else if let text = item as? String {
                guard let pair = try? parseMerges([text]).first else { throw fail("merge \(rank) is not \"left right\"") }
                pairs.append(pair)
            } else {
                throw fail("merge \(rank) is neither \"a b\" nor [a, b]")
            }
        }
        return pairs
    }

    private static func wantsNFC(_ value: Any?, _ unsupported: (String) -> TokenizerError) throws -> Bool {
        guard let normalizer = value as? [String: Any] else { return false }  // null: none
        switch normalizer["type"] as? String {
        case "NFC":
            return true
        case "Sequence":
            var nfc = false
            for item in normalizer["normalizers"] as? [Any] ?? [] { nfc = try wantsNFC(item, unsupported) || nfc }
            return nfc
        case let other:
            throw unsupported("normalizer \(other ?? "?")")
        }
    }

    /// Pre-tokenizer JSON → stages. `ByteLevel(use_regex)` is the GPT-2 split.
    private static func stages(_ value: Any?, isFirst: Bool, options: inout TextOptions,
                               sawByteLevel: inout Bool,
                               _ unsupported: (String) -> TokenizerError) throws -> [PreTokenizer.Stage] {
        guard let node = value as? [String: Any] else { return [] }
        switch node["type"] as? String {
        case "Sequence":
            var result: [PreTokenizer.Stage] = []
            for item in node["pretokenizers"] as? [Any] ?? [] {
                result += try stages(item, isFirst: isFirst && result.isEmpty, options: &options,
                                     sawByteLevel: &sawByteLevel, unsupported)
            }
            return result
        case "ByteLevel":
            sawByteLevel = true
            if node["add_prefix_space"] as? Bool == true {
                guard isFirst else { throw unsupported("ByteLevel add_prefix_space after another pre-tokenizer") }
                options.prefixSpace = true
            }
            return node["use_regex"] as? Bool ?? true ? [.gpt2] : []
        case "Digits":
            return [.digits(individual: node["individual_digits"] as? Bool ?? false)]
        case "Split":
            let behavior = node["behavior"] as? String ?? "Isolated"
            guard behavior == "Isolated", node["invert"] as? Bool != true else {
                throw unsupported("Split behavior \(behavior)\(node["invert"] as? Bool == true ? " inverted" : "")")
            }
            let pattern = node["pattern"] as? [String: Any]
            if let regex = pattern?["Regex"] as? String {
                return [try PreTokenizer.Stage(pattern: regex)]
            }
            if let literal = pattern?["String"] as? String {
                return [.regex(try SplitRegex(NSRegularExpression.escapedPattern(for: literal)))]
            }
            throw unsupported("Split without a pattern")
        case let other:
            throw unsupported("pre_tokenizer \(other ?? "?")")
        }
    }

    private static func mentionsByteLevel(_ node: [String: Any]) -> Bool {
        if node["type"] as? String == "ByteLevel" { return true }
        let children = (node["decoders"] as? [Any] ?? []) + (node["pretokenizers"] as? [Any] ?? [])
        return children.contains { ($0 as? [String: Any]).map(mentionsByteLevel) ?? false }
    }

    /// BOS/EOS implied by a `TemplateProcessing` post-processor (possibly in a Sequence).
    private static func template(_ value: Any?) -> (bos: Int32?, eos: Int32?, pad: Int32?, addBOS: Bool, addEOS: Bool) {
        var result: (bos: Int32?, eos: Int32?, pad: Int32?, addBOS: Bool, addEOS: Bool) = (nil, nil, nil, false, false)
        guard let node = value as? [String: Any] else { return result }
        if node["type"] as? String == "Sequence" {
            for item in node["processors"] as? [Any] ?? [] {
                let inner = template(item)
                if inner.addBOS { (result.bos, result.addBOS) = (inner.bos, true) }
                if inner.addEOS { (result.eos, result.addEOS) = (inner.eos, true) }
            }
            return result
        }
        guard node["type"] as? String == "TemplateProcessing", let single = node["single"] as? [[String: Any]],
              let specials = node["special_tokens"] as? [String: Any] else { return result }
        func id(_ item: [String: Any]?) -> Int32? {
            guard let name = (item?["SpecialToken"] as? [String: Any])?["id"] as? String,
                  let entry = specials[name] as? [String: Any], let ids = entry["ids"] as? [Any],
                  let first = ids.first.flatMap(int) else { return nil }
            return Int32(first)
        }
        if let bos = id(single.first) { (result.bos, result.addBOS) = (bos, true) }
        if single.count > 1, let eos = id(single.last) { (result.eos, result.addEOS) = (eos, true) }
        return result
    }
}
