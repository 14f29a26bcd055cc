// Special tokens written in the text ("<|im_start|>") are cut out before
// pre-tokenization and become single ids, as Hugging Face's added-token split and
// llama.cpp's `tokenizer_st_partition` do.

/// A piece of input: either a special token found in the text or plain text between them.
enum TextSegment {
    /// A special token matched literally.
    case token(Int32)
    /// Plain text: a byte range of the input.
    case text(Range<Int>)
}

/// Finds special tokens in UTF-8 text, leftmost first and, at one position, longest first.
struct SpecialTokenMatcher: Sendable {
    private struct Entry: Sendable {
        var bytes: [UInt8]
        var id: Int32
        /// User-defined tokens are matched even when control tokens are not.
        var always: Bool
    }

    /// Candidates by first byte, longest first.
    private var byFirstByte: [[Entry]] = Array(repeating: [], count: 256)
    private(set) var isEmpty = true

    /// Builds the matcher from `(text, id, always)` triples; empty texts are ignored.
    init(_ tokens: [(text: String, id: Int32, always: Bool)]) {
        for token in tokens where !token.text.isEmpty {
            let bytes = Array(token.text.utf8)
            byFirstByte[Int(bytes[0])].append(Entry(bytes: bytes, id: token.id, always: token.always))
            isEmpty = false
        }
        for b in 0..<256 where byFirstByte[b].count > 1 {
            byFirstByte[b].sort { $0.bytes.count != $1.bytes.count ? $0.bytes.count > $1.bytes.count : $0.id < $1.id }
        }
    }

    /// Calls `body` with the segments of `bytes` in order.
    func forEachSegment(_ bytes: UnsafeBufferPointer<UInt8>, parseSpecial: Bool,
                        _ body: (TextSegment) -> Void) {
        let n = bytes.count
        guard !isEmpty else {
            if n > 0 { body(.text(0..<n)) }
            return
        }
        var textStart = 0
        var i = 0
        scan: while i < n {
            let candidates = byFirstByte[Int(bytes[i])]
            if !candidates.isEmpty {
                for entry in candidates where (parseSpecial || entry.always) && matches(entry.bytes, bytes, at: i) {
                    if textStart < i { body(.text(textStart..<i)) }
                    body(.token(entry.id))
                    i += entry.bytes.count
                    textStart = i
                    continue scan
                }
            }
            i += 1
        }
        if textStart < n { body(.text(textStart..<n)) }
    }

    private func matches(_ needle: [UInt8], _ bytes: UnsafeBufferPointer<UInt8>, at i: Int) -> Bool {
        guard i + needle.count <= bytes.count else { return false }
        for k in 1..<needle.count where bytes[i + k] != needle[k] { return false }
        return true
    }
}
