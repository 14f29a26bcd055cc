// Streaming detokenization: one token often carries only part of a UTF-8 character
// (an emoji is usually 2–4 byte tokens), so text is released only once complete.

/// Turns token ids into text as they are generated, holding back the bytes of a
/// character that is not yet complete.
///
/// ```swift
/// var stream = TokenStreamDecoder(tokenizer)
/// for id in generated { print(stream.append(id), terminator: "") }
/// print(stream.finish())
/// ```
public struct TokenStreamDecoder {
    private let tokenizer: any Tokenizer
    private var pending: [UInt8] = []

    /// A decoder for ids of `tokenizer`.
    public init(_ tokenizer: any Tokenizer) {
        self.tokenizer = tokenizer
    }

    /// Adds one token and returns the text that became complete (possibly empty).
    public mutating func append(_ id: Int32) -> String {
        pending.append(contentsOf: tokenizer.decodeBytes(id))
        let cut = completePrefixLength(pending)
        guard cut > 0 else { return "" }
        let text = String(decoding: pending[..<cut], as: UTF8.self)
        pending.removeFirst(cut)
        return text
    }

    /// Returns whatever is still held back (an unfinished character becomes U+FFFD)
    /// and empties the buffer.
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// Length of the longest prefix of `bytes` that does not end inside a character.
    private func completePrefixLength(_ bytes: [UInt8]) -> Int {
        var i = bytes.count - 1
        let floor = max(0, bytes.count - 4)
        while i >= floor {
            let b = bytes[i]
            if b & 0xC0 != 0x80 {  // not a continuation byte
                let need = b < 0x80 ? 1 : b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1
                return bytes.count - i < need ? i : bytes.count
            }
            i -= 1
        }
        return bytes.count
    }
}
