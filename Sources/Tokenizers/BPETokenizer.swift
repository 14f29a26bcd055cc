// Byte-level BPE (GPT-2, Llama 3, Qwen2, SmolLM …): special tokens are cut out, the
// rest is pre-tokenized into words, each word's UTF-8 bytes are merged by rank into
// tokens. Vocabulary entries are stored in GPT-2's byte-level spelling ("Ġthe"); this
// type converts them to bytes once, at construction, and then works on bytes only.

import Foundation

/// A byte-level BPE tokenizer, built from a GGUF's vocabulary arrays or a Hugging Face
/// `tokenizer.json`.
public final class BPETokenizer: Tokenizer {
    /// Vocabulary entries by id, in their stored spelling.
    public let tokens: [String]
    /// The type of each vocabulary entry.
    public let tokenTypes: [TokenType]
    /// How text is cut into words before merging.
    public let preTokenizer: PreTokenizer
    /// Whether a word that is itself a vocabulary entry skips merging (Llama 3).
    public let ignoreMerges: Bool
    /// Number of merge rules in use.
    public var mergeCount: Int { merges.count }
    /// Number of token ids.
    public var vocabSize: Int { tokens.count }
    /// Beginning-of-sequence token.
    public let bosID: Int32?
    /// End-of-sequence token.
    public let eosID: Int32?
    /// Unknown-token id, as recorded in the model.
    public let unknownID: Int32?
    /// Padding token.
    public let paddingID: Int32?
    /// Whether `encode` prepends BOS by default.
    public let addBOS: Bool
    /// Whether `encode` appends EOS.
    public let addEOS: Bool

    private let textToID: [String: Int32]
    private let merges: MergeTable
    /// `byteTokens[b]`: the token spelling the single byte `b`, or -1.
    private let byteTokens: [Int32]
    /// Bytes of every token, concatenated; token `i` is `bytes[offsets[i]..<offsets[i + 1]]`.
    private let bytes: [UInt8]
    private let offsets: [Int]
    private let specials: SpecialTokenMatcher
    private let wholeWords: [[UInt8]: Int32]
    private let cache = WordCache()
    /// What a byte without a token becomes: dropped (`nil`), or this id.
    private let missingByteID: Int32?
    private let options: TextOptions

    /// Text handling that some tokenizer.json files ask for.
    struct TextOptions: Sendable {
        /// Apply Unicode NFC before pre-tokenizing (Qwen2's normalizer).
        var nfc = false
        /// Prepend a space to text that does not start with one (`add_prefix_space`).
        var prefixSpace = false
        /// Collapse consecutive unknown tokens into one (`fuse_unk`).
        var fuseUnknown = false
    }

    /// Builds a tokenizer from the arrays a GGUF file stores.
    ///
    /// - Parameters:
    ///   - tokens: `tokenizer.ggml.tokens`; the id of a token is its index.
    ///   - merges: `tokenizer.ggml.merges`, `"left right"` strings; rank is the index.
    ///   - tokenTypes: `tokenizer.ggml.token_type` (llama.cpp numbering); `nil` means all
    ///     normal. Control (3) and user-defined (4) tokens are matched literally in text.
    ///   - pre: `tokenizer.ggml.pre` ("gpt-2", "llama-bpe", "qwen2", "smollm", …).
    ///   - bosID: `tokenizer.ggml.bos_token_id`.
    ///   - eosID: `tokenizer.ggml.eos_token_id`.
    ///   - unknownID: `tokenizer.ggml.unknown_token_id`.
    ///   - paddingID: `tokenizer.ggml.padding_token_id`.
    ///   - addBOS: `tokenizer.ggml.add_bos_token`.
    ///   - addEOS: `tokenizer.ggml.add_eos_token`.
    /// - Throws: `TokenizerError` for an unknown `pre`, mismatched array lengths,
    ///   a malformed merge or an out-of-range special id.
    public convenience init(tokens: [String], merges: [String], tokenTypes: [Int32]? = nil,
                            pre: String, bosID: Int32? = nil, eosID: Int32? = nil,
                            unknownID: Int32? = nil, paddingID: Int32? = nil,
                            addBOS: Bool = false, addEOS: Bool = false) throws {
        let preTokenizer = try PreTokenizer(ggufName: pre)
        // llama.cpp skips merging for words already in the vocabulary for these presets,
        // as Llama 3's tokenizer.json does with `ignore_merges`.
        let ignoreMerges = ["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
                            "midm-2.0", "lfm2"].contains(pre)
        try self.init(tokens: tokens, mergePairs: try Self.parseMerges(merges),
                      tokenTypes: (tokenTypes ?? []).map(TokenType.init(gguf:)),
                      preTokenizer: preTokenizer, ignoreMerges: ignoreMerges,
                      bosID: bosID, eosID: eosID, unknownID: unknownID, paddingID: paddingID,
                      addBOS: addBOS, addEOS: addEOS)
    }

    /// Builds a tokenizer with an explicit pre-tokenizer.
    ///
    /// - Parameters:
    ///   - tokens: vocabulary entries in byte-level spelling; id = index.
    ///   - mergePairs: merge rules `(left, right)`; rank = index. Rules naming a token the
    ///     vocabulary lacks are ignored, as they can never apply.
    ///   - tokenTypes: one per token, or empty for all normal.
    ///   - preTokenizer: how text is cut into words.
    ///   - ignoreMerges: emit a word that is a vocabulary entry as that entry directly.
    ///   - bosID: beginning-of-sequence token.
    ///   - eosID: end-of-sequence token.
    ///   - unknownID: the unknown token.
    ///   - paddingID: padding token.
    ///   - addBOS: prepend BOS by default.
    ///   - addEOS: append EOS.
    /// - Throws: `TokenizerError.invalidVocabulary` if the arrays are inconsistent.
    public convenience init(tokens: [String], mergePairs: [(String, String)], tokenTypes: [TokenType] = [],
                            preTokenizer: PreTokenizer, ignoreMerges: Bool = false,
                            bosID: Int32? = nil, eosID: Int32? = nil, unknownID: Int32? = nil,
                            paddingID: Int32? = nil, addBOS: Bool = false, addEOS: Bool = false) throws {
        try self.init(tokens: tokens, mergePairs: mergePairs, tokenTypes: tokenTypes,
                      preTokenizer: preTokenizer, ignoreMerges: ignoreMerges, bosID: bosID,
                      eosID: eosID, unknownID: unknownID, paddingID: paddingID, addBOS: addBOS,
                      addEOS: addEOS, missingByteID: nil, options: TextOptions())
    }

    init(tokens: [String], mergePairs: [(String, String)], tokenTypes: [TokenType],
         preTokenizer: PreTokenizer, ignoreMerges: Bool, bosID: Int32?, eosID: Int32?,
         unknownID: Int32?, paddingID: Int32?, addBOS: Bool, addEOS: Bool,
         missingByteID: Int32?, options: TextOptions) throws {
        guard !tokens.isEmpty, tokens.count < Int(Int32.max) else {
            throw TokenizerError.invalidVocabulary("\(tokens.count) tokens")
        }
        guard tokenTypes.isEmpty || tokenTypes.count == tokens.count else {
            throw TokenizerError.invalidVocabulary("\(tokens.count) tokens but \(tokenTypes.count) token types")
        }
        for (name, id) in [("bos", bosID), ("eos", eosID), ("unknown", unknownID), ("padding", paddingID),
                           ("missing-byte", missingByteID)] {
            if let id, id < 0 || Int(id) >= tokens.count {
                throw TokenizerError.invalidVocabulary("\(name) id \(id) outside 0..<\(tokens.count)")
            }
        }
        let types = tokenTypes.isEmpty ? Array(repeating: TokenType.normal, count: tokens.count) : tokenTypes
        self.tokens = tokens
        self.tokenTypes = types
        self.preTokenizer = preTokenizer
        self.ignoreMerges = ignoreMerges
        self.bosID = bosID
        self.eosID = eosID
        self.unknownID = unknownID
        self.paddingID = paddingID
        self.addBOS = addBOS
        self.addEOS = addEOS
        self.missingByteID = missingByteID
        self.options = options

        var textToID: [String: Int32] = [:]
        textToID.reserveCapacity(tokens.count)
        var bytes: [UInt8] = []
        var offsets = [0]
        var byteTokens = [Int32](repeating: -1, count: 256)
        var wholeWords: [[UInt8]: Int32] = [:]
        var specialList: [(text: String, id: Int32, always: Bool)] = []
        for (i, text) in tokens.enumerated() {
            let id = Int32(i)
            if textToID[text] == nil { textToID[text] = id }
            let spelled = Self.bytes(of: text, type: types[i])
            bytes.append(contentsOf: spelled)
            offsets.append(bytes.count)
            switch types[i] {
            case .normal, .undefined:
                if spelled.count == 1 && byteTokens[Int(spelled[0])] < 0 { byteTokens[Int(spelled[0])] = id }
                if ignoreMerges && wholeWords[spelled] == nil { wholeWords[spelled] = id }
            case .control, .unknown:
                specialList.append((text, id, false))
            case .userDefined:
                specialList.append((text, id, true))
            case .unused, .byte:
                break
            }
        }
        var table = MergeTable()
        for (rank, (left, right)) in mergePairs.enumerated() {
            guard let l = textToID[left], let r = textToID[right], let m = textToID[left + right] else { continue }
            table.add(left: l, right: r, merged: m, rank: rank)
        }
        self.textToID = textToID
        self.bytes = bytes
        self.offsets = offsets
        self.byteTokens = byteTokens
        self.wholeWords = wholeWords
        self.merges = table
        self.specials = SpecialTokenMatcher(specialList)
    }

    /// Splits GGUF-style `"left right"` merge strings.
    static func parseMerges(_ merges: [String]) throws -> [(String, String)] {
        try merges.enumerated().map { rank, merge in
            guard let space = merge.firstIndex(of: " "), space != merge.startIndex,
                  merge.index(after: space) != merge.endIndex else {
                throw TokenizerError.invalidVocabulary("merge \(rank) is not \"left right\": \(merge.debugDescription)")
            }
            return (String(merge[..<space]), String(merge[merge.index(after: space)...]))
        }
    }

    /// The bytes a vocabulary entry stands for.
    private static func bytes(of text: String, type: TokenType) -> [UInt8] {
        switch type {
        case .normal, .undefined:
            // A spelling outside the byte-level alphabet stands for its own UTF-8.
            return ByteLevel.decode(text) ?? Array(text.utf8)
        case .byte:
            // "<0x0A>"
            if text.utf8.count == 6, text.hasPrefix("<0x"), text.hasSuffix(">"),
               let value = UInt8(text.dropFirst(3).prefix(2), radix: 16) {
                return [value]
            }
            return Array(text.utf8)
        case .unused:
            return []
        case .control, .unknown, .userDefined:
            return Array(text.utf8)
        }
    }

    // MARK: Encoding

    /// Turns text into token ids.
    ///
    /// - Parameters:
    ///   - text: the text to encode.
    ///   - addBOS: prepend BOS; `nil` uses the model's `addBOS`.
    ///   - parseSpecial: match control tokens written in the text (`<|im_start|>`) as
    ///     single tokens, as Hugging Face `tokenizers` always does; user-defined tokens are
    ///     matched either way. Pass `false` for untrusted text.
    public func encode(_ text: String, addBOS: Bool?, parseSpecial: Bool) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(text.utf8.count / 3 + 2)
        if addBOS ?? self.addBOS, let bosID { out.append(bosID) }
        var text = text
        var scratch = Scratch()
        text.withUTF8 { utf8 in
            specials.forEachSegment(utf8, parseSpecial: parseSpecial) { segment in
                switch segment {
                case .token(let id):
                    out.append(id)
                case .text(let range):
                    encodeText(UnsafeBufferPointer(rebasing: utf8[range]), &scratch, into: &out)
                }
            }
        }
        if addEOS, let eosID { out.append(eosID) }
        return out
    }

    /// Buffers reused across the words of one `encode` call.
    private struct Scratch {
        var text = ScalarText()
        var pieces: [Range<Int>] = []
        var symbols: [Int32] = []
    }

    /// Encodes plain text (no special tokens in it).
    private func encodeText(_ utf8: UnsafeBufferPointer<UInt8>, _ scratch: inout Scratch,
                            into out: inout [Int32]) {
        if options.nfc || (options.prefixSpace && utf8.first != 0x20) {
            var adjusted = String(decoding: utf8, as: UTF8.self)
            if options.nfc { adjusted = adjusted.precomposedStringWithCanonicalMapping }
            if options.prefixSpace && !adjusted.hasPrefix(" ") { adjusted = " " + adjusted }
            adjusted.withUTF8 { encodeWords($0, &scratch, into: &out) }
        } else {
            encodeWords(utf8, &scratch, into: &out)
        }
    }

    private func encodeWords(_ utf8: UnsafeBufferPointer<UInt8>, _ scratch: inout Scratch,
                             into out: inout [Int32]) {
        scratch.text.load(utf8)
        scratch.pieces.removeAll(keepingCapacity: true)
        preTokenizer.split(scratch.text, into: &scratch.pieces)
        for piece in scratch.pieces {
            let lo = scratch.text.offsets[piece.lowerBound], hi = scratch.text.offsets[piece.upperBound]
            encodeWord(UnsafeBufferPointer(rebasing: utf8[lo..<hi]), &scratch.symbols, into: &out)
        }
    }

    /// BPE on the bytes of one pre-token.
    private func encodeWord(_ word: UnsafeBufferPointer<UInt8>, _ symbols: inout [Int32],
                            into out: inout [Int32]) {
        if word.count == 1 {
            let id = byteTokens[Int(word[0])]
            if id >= 0 { out.append(id) } else if let missingByteID { out.append(missingByteID) }
            return
        }
        let key = Array(word)
        if ignoreMerges, let id = wholeWords[key] {
            out.append(id)
            return
        }
        if let cached = cache.get(key) {
            out.append(contentsOf: cached)
            return
        }
        symbols.removeAll(keepingCapacity: true)
        for byte in word {
            let id = byteTokens[Int(byte)]
            if id >= 0 {
                symbols.append(id)
            } else if let missingByteID, !(options.fuseUnknown && symbols.last == missingByteID) {
                symbols.append(missingByteID)
            }
            // Otherwise the byte is dropped, as Hugging Face does without an unk token.
        }
        merges.merge(&symbols)
        cache.set(key, symbols)
        out.append(contentsOf: symbols)
    }

    // MARK: Decoding

    /// The bytes token `id` stands for; empty for an out-of-range id or an unused slot.
    public func decodeBytes(_ id: Int32) -> [UInt8] {
        guard id >= 0 && Int(id) < tokens.count else { return [] }
        return Array(bytes[offsets[Int(id)]..<offsets[Int(id) + 1]])
    }

    /// Turns token ids back into text; the exact inverse of `encode` for any text whose
    /// bytes all have tokens. Bytes that do not form valid UTF-8 become U+FFFD.
    ///
    /// - Parameter skipSpecial: leave out control and unknown tokens.
    public func decode(_ ids: [Int32], skipSpecial: Bool) -> String {
        var text: [UInt8] = []
        text.reserveCapacity(ids.count * 4)
        for id in ids where id >= 0 && Int(id) < tokens.count {
            if skipSpecial {
                let type = tokenTypes[Int(id)]
                if type == .control || type == .unknown { continue }
            }
            text.append(contentsOf: bytes[offsets[Int(id)]..<offsets[Int(id) + 1]])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// The stored spelling of token `id` (e.g. `"Ġthe"`).
    public func tokenText(_ id: Int32) -> String? {
        guard id >= 0 && Int(id) < tokens.count else { return nil }
        return tokens[Int(id)]
    }

    /// The id of the entry spelled exactly `text` in the vocabulary's own spelling.
    public func tokenID(_ text: String) -> Int32? {
        textToID[text]
    }
}
