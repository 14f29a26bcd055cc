import Foundation
import Testing
@testable import Tokenizers

/// BPE on small vocabularies: a tiny tokenizer trained by Hugging Face `tokenizers`
/// (committed, with its reference ids) and hand-made ones.
@Suite struct BPETokenizerTests {
    static func tiny() throws -> BPETokenizer {
        try BPETokenizer(tokenizerJSON: Fixtures.committed.appendingPathComponent("tiny-bpe-tokenizer.json").path)
    }

    @Test func tinyTokenizerMatchesHuggingFace() throws {
        let tokenizer = try Self.tiny()
        #expect(tokenizer.vocabSize == 420)
        #expect(tokenizer.tokenTypes[1] == .control)
        for c in try TrickyFixture.load().cases {
            let got = tokenizer.encode(c.text, addBOS: false)
            #expect(got == c.tiny_ids, "\(c.text.debugDescription): \(firstDifference(got, c.tiny_ids, tokenText: tokenizer.tokenText) ?? "")")
            #expect(tokenizer.decode(got) == c.text)
        }
    }

    @Test func byteLevelAlphabet() {
        #expect(ByteLevel.characters.count == 256)
        #expect(Set(ByteLevel.characters).count == 256)
        #expect(ByteLevel.characters[0x20] == "Ġ")
        #expect(ByteLevel.characters[0x0A] == "Ċ")
        #expect(ByteLevel.characters[0x41] == "A")
        #expect(ByteLevel.encode(Array(" hé".utf8)) == "ĠhÃ©")
        #expect(ByteLevel.decode("ĠhÃ©") == Array(" hé".utf8))
        #expect(ByteLevel.decode("€") == nil)
        for b in 0..<256 { #expect(ByteLevel.byte(for: ByteLevel.characters[b]) == UInt8(b)) }
    }

    /// A hand-made vocabulary: bytes of "abc " plus merges, to pin down the merge order.
    static func handMade(pre: String = "gpt2", extraMerges: [String] = []) throws -> BPETokenizer {
        let tokens = ["<s>", "</s>", "a", "b", "c", "Ġ", "ab", "bc", "abc", "Ġa", "aa", "aaaa", "<|x|>", "<u>"]
        let merges = ["a b", "b c", "ab c", "Ġ a", "a a", "aa aa"] + extraMerges
        var types = [Int32](repeating: 1, count: tokens.count)
        types[0] = 3; types[1] = 3; types[12] = 3; types[13] = 4
        return try BPETokenizer(tokens: tokens, merges: merges, tokenTypes: types, pre: pre,
                                bosID: 0, eosID: 1, addBOS: true)
    }

    @Test func mergesApplyByRankThenLeftmost() throws {
        let t = try Self.handMade()
        #expect(t.encode("abc", addBOS: false) == [8])          // a b → ab, ab c → abc
        #expect(t.encode("bc", addBOS: false) == [7])
        #expect(t.encode("aaaaa", addBOS: false) == [11, 2])    // leftmost pairs first: (aa)(aa)a → (aaaa)a
        #expect(t.encode("abc abc", addBOS: false) == [8, 5, 8])  // " abc": "a b" (rank 0) beats "Ġ a" (3)
        #expect(t.encode("abc") == [0, 8])                       // addBOS from the model
        #expect(t.encode("abc", addBOS: false, parseSpecial: true) == [8])
    }

    @Test func longWordsMergeLikeShortOnes() throws {
        let t = try Self.handMade()
        for n in [1, 2, 3, 5, 127, 128, 129, 130, 257, 1000] {
            let text = String(repeating: "a", count: n)
            let want = Array(repeating: Int32(11), count: n / 4) + (n % 4 >= 2 ? [10] : []) + (n % 2 == 1 ? [2] : [])
            #expect(t.encode(text, addBOS: false) == want, "a×\(n)")
        }
        var rng = SplitMix64(seed: 3)
        for _ in 0..<200 {
            let word = String((0..<Int(rng.next() % 300)).map { _ in Array("abc")[Int(rng.next() % 3)] })
            let ids = t.encode(word, addBOS: false)
            #expect(t.decode(ids) == word)
            // Merging piecewise at the split points BPE cannot cross gives the same ids.
            #expect(ids == reference(word, t), "\(word)")
        }
    }

    /// Straightforward BPE: repeatedly merge the lowest-ranked leftmost pair.
    func reference(_ word: String, _ t: BPETokenizer) -> [Int32] {
        let ranks = ["a b", "b c", "ab c", "Ġ a", "a a", "aa aa"]
        var symbols = word.map(String.init)
        while true {
            var best: (rank: Int, at: Int)?
            for i in 0..<max(0, symbols.count - 1) {
                if let r = ranks.firstIndex(of: symbols[i] + " " + symbols[i + 1]), best == nil || r < best!.rank {
                    best = (r, i)
                }
            }
            guard let (_, at) = best else { break }
            symbols[at] += symbols.remove(at: at + 1)
        }
        return symbols.map { t.tokenID($0)! }
    }

    @Test func ignoreMergesTakesWholeWords() throws {
        let tokens = ["a", "b", "ab", "ba"]
        let plain = try BPETokenizer(tokens: tokens, mergePairs: [("a", "b")], preTokenizer: .gpt2)
        let whole = try BPETokenizer(tokens: tokens, mergePairs: [("a", "b")], preTokenizer: .gpt2, ignoreMerges: true)
        #expect(plain.encode("ba") == [1, 0])  // no merge makes "ba"
        #expect(whole.encode("ba") == [3])     // but it is a vocabulary entry
        #expect(whole.encode("bab") == [1, 2])
        #expect(try BPETokenizer(tokens: tokens, merges: [], pre: "llama-bpe").ignoreMerges)
        #expect(try !BPETokenizer(tokens: tokens, merges: [], pre: "qwen2").ignoreMerges)
    }

    @Test func specialTokensInText() throws {
        let t = try Self.handMade()
        #expect(t.encode("a<|x|>b", addBOS: false) == [2, 12, 3])
        #expect(t.encode("a<|x|>b", addBOS: false, parseSpecial: false).contains(12) == false)
        // User-defined tokens are matched even without parseSpecial.
        #expect(t.encode("a<u>b", addBOS: false, parseSpecial: false) == [2, 13, 3])
        #expect(t.encode("<s></s>", addBOS: false) == [0, 1])
        #expect(t.decode([0, 8, 1]) == "<s>abc</s>")
        #expect(t.decode([0, 8, 1], skipSpecial: true) == "abc")
        #expect(t.decode([8, -1, 99]) == "abc")
    }

    @Test func bytesWithoutTokensAreDropped() throws {
        // "d" has no token; Hugging Face drops it (no unk token), and so do we.
        let t = try Self.handMade()
        #expect(t.encode("adb", addBOS: false) == [6])
    }

    @Test func streamDecoderHoldsBackPartialCharacters() throws {
        let bytes = Array("é😀".utf8).map { ByteLevel.encode([$0]) }
        let tokens = ["<s>"] + bytes
        let t = try BPETokenizer(tokens: tokens, merges: [], pre: "gpt2")
        var stream = TokenStreamDecoder(t)
        var pieces: [String] = []
        for id in 1...Int32(bytes.count) { pieces.append(stream.append(id)) }
        #expect(pieces == ["", "é", "", "", "", "😀"])
        #expect(stream.finish() == "")
        _ = stream.append(3)  // first byte of the emoji, never completed
        #expect(stream.finish() == "\u{FFFD}")
        #expect(t.decodeBytes(1) == [0xC3])
    }

    @Test func byteTypeTokens() throws {
        let t = try BPETokenizer(tokens: ["<0x41>", "<0x0A>", "x"], merges: [], tokenTypes: [6, 6, 1], pre: "gpt2")
        #expect(t.decodeBytes(0) == [0x41])
        #expect(t.decode([0, 1, 2]) == "A\nx")
    }

    @Test func invalidVocabulariesThrow() {
        #expect(throws: TokenizerError.self) { try BPETokenizer(tokens: [], merges: [], pre: "gpt2") }
        #expect(throws: TokenizerError.self) { try BPETokenizer(tokens: ["a"], merges: [], tokenTypes: [1, 1], pre: "gpt2") }
        #expect(throws: TokenizerError.self) { try BPETokenizer(tokens: ["a"], merges: ["ab"], pre: "gpt2") }
        #expect(throws: TokenizerError.self) { try BPETokenizer(tokens: ["a"], merges: [], pre: "gpt2", bosID: 5) }
        #expect(throws: TokenizerError.self) { try BPETokenizer(tokens: ["a"], merges: [], pre: "nope") }
    }

    @Test func badTokenizerJSONFilesThrow() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func write(_ json: String) throws -> String {
            let path = dir.appendingPathComponent("tokenizer.json").path
            try json.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        #expect(throws: TokenizerError.self) { try BPETokenizer(tokenizerJSON: dir.appendingPathComponent("none.json").path) }
        #expect(throws: TokenizerError.self) { try BPETokenizer(tokenizerJSON: try write("{not json")) }
        #expect(throws: TokenizerError.self) { try BPETokenizer(tokenizerJSON: try write(#"{"model":{"type":"WordPiece"}}"#)) }
        let noByteLevel = #"{"model":{"type":"BPE","vocab":{"a":0},"merges":[]},"pre_tokenizer":{"type":"Whitespace"}}"#
        #expect(throws: TokenizerError.self) { try BPETokenizer(tokenizerJSON: try write(noByteLevel)) }
        let minimal = #"{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":[["a","b"]]},"#
            + #""pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false},"decoder":{"type":"ByteLevel"},"#
            + #""added_tokens":[{"id":3,"content":"<eos>","special":true}]}"#
        let t = try BPETokenizer(tokenizerJSON: try write(minimal))
        #expect(t.encode("abab<eos>") == [2, 2, 3])
        #expect(t.vocabSize == 4)
        try #"{"eos_token":"<eos>","bos_token":{"content":"<eos>"},"add_bos_token":true}"#
            .write(toFile: dir.appendingPathComponent("tokenizer_config.json").path, atomically: true, encoding: .utf8)
        let configured = try BPETokenizer(tokenizerJSON: try write(minimal))
        #expect(configured.eosID == 3 && configured.bosID == 3 && configured.addBOS)
    }
}
