// The seam every tokenizer family plugs into: byte-level BPE today, SentencePiece and
// WordPiece later. Models and the CLI talk to `Tokenizer`, never to a concrete type.

/// A text ⇄ token-id codec, as a language model sees it.
///
/// Token ids are `Int32`, the type GGUF and llama.cpp use. Implementations are immutable
/// after construction and safe to share across threads.
public protocol Tokenizer: Sendable {
    /// Number of token ids, i.e. one past the largest valid id.
    var vocabSize: Int { get }
    /// The beginning-of-sequence token, if the vocabulary has one.
    var bosID: Int32? { get }
    /// The end-of-sequence token, if the vocabulary has one.
    var eosID: Int32? { get }

    /// Turns text into token ids.
    ///
    /// - Parameters:
    ///   - text: the text to encode.
    ///   - addBOS: prepend the BOS token; `nil` means "as the model was configured".
    ///   - parseSpecial: match control tokens such as `<|im_start|>` written in `text` as
    ///     single tokens. Pass `false` for untrusted text that must not inject them.
    func encode(_ text: String, addBOS: Bool?, parseSpecial: Bool) -> [Int32]

    /// Turns token ids back into text. Invalid UTF-8 (a multi-byte character cut between
    /// ids) becomes U+FFFD; out-of-range ids decode to nothing.
    ///
    /// - Parameter skipSpecial: leave out control tokens (`<|im_end|>` …).
    func decode(_ ids: [Int32], skipSpecial: Bool) -> String

    /// The raw bytes one token stands for, for streaming output: a generator appends these
    /// to a buffer and prints only whole UTF-8 characters (see `TokenStreamDecoder`).
    func decodeBytes(_ id: Int32) -> [UInt8]

    /// The token's text as stored in the vocabulary (e.g. `"Ġthe"` for byte-level BPE),
    /// or `nil` for an out-of-range id.
    func tokenText(_ id: Int32) -> String?

    /// The id of the vocabulary entry spelled exactly `text` (vocabulary spelling, so
    /// `"Ġthe"`, not `" the"`), or `nil`.
    func tokenID(_ text: String) -> Int32?
}

extension Tokenizer {
    /// Encodes with the model's BOS setting, matching special tokens written in the text.
    public func encode(_ text: String) -> [Int32] {
        encode(text, addBOS: nil, parseSpecial: true)
    }

    /// Encodes, matching special tokens written in the text.
    public func encode(_ text: String, addBOS: Bool?) -> [Int32] {
        encode(text, addBOS: addBOS, parseSpecial: true)
    }

    /// Decodes, keeping control tokens, so that `decode(encode(x)) == x`.
    public func decode(_ ids: [Int32]) -> String {
        decode(ids, skipSpecial: false)
    }
}

/// What a vocabulary entry is, in llama.cpp's numbering (GGUF `tokenizer.ggml.token_type`).
public enum TokenType: Int32, Sendable, CaseIterable {
    /// Not set in the file; treated like `.normal`.
    case undefined = 0
    /// Ordinary text, produced by merges.
    case normal = 1
    /// The unknown-token placeholder (`<unk>`).
    case unknown = 2
    /// A control token such as `<|im_start|>`: matched in text only when parsing specials,
    /// skipped by `decode(_:skipSpecial: true)`.
    case control = 3
    /// A token added by hand that is always matched literally in text.
    case userDefined = 4
    /// A reserved slot that never appears in output.
    case unused = 5
    /// A raw byte written `<0xAB>` (SentencePiece byte fallback).
    case byte = 6

    /// The type for a raw GGUF value; values outside 0...6 count as `.normal`.
    public init(gguf value: Int32) {
        self = TokenType(rawValue: value) ?? .normal
    }
}

/// Why a tokenizer could not be built.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    /// A file could not be read.
    case unreadable(path: String, reason: String)
    /// A file was read but its content is wrong; `reason` says what.
    case invalidFile(path: String, reason: String)
    /// The vocabulary arrays are inconsistent.
    case invalidVocabulary(String)
    /// The pre-tokenizer (GGUF `tokenizer.ggml.pre` or tokenizer.json `pre_tokenizer`)
    /// is one this library does not implement.
    case unsupportedPreTokenizer(String)
    /// Some other feature of the file is not implemented.
    case unsupported(String)

    /// A one-line message naming the file and the problem.
    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "\(path): cannot read: \(reason)"
        case let .invalidFile(path, reason): return "\(path): \(reason)"
        case let .invalidVocabulary(reason): return "invalid vocabulary: \(reason)"
        case let .unsupportedPreTokenizer(name): return "unsupported pre-tokenizer: \(name)"
        case let .unsupported(what): return "unsupported tokenizer feature: \(what)"
        }
    }
}
