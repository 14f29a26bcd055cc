import Foundation
import Testing
@testable import Tokenizers

/// The real SmolLM2-135M vocabulary against Hugging Face `tokenizers` on the whole of
/// wikitext-2 test.txt. Fixtures come from `python3 scripts/fixtures/tokenizer.py`.
@Suite(.serialized) struct SmolLM2Tests {
    /// Built from the GGUF's arrays, as `init(gguf:)` will.
    static func fromArrays() throws -> BPETokenizer {
        let v = try Fixtures.decode(VocabFixture.self, try Fixtures.generatedPath("smollm2-vocab.json"))
        return try BPETokenizer(tokens: v.tokens, merges: v.merges, tokenTypes: v.token_types, pre: v.pre,
                                bosID: v.bos, eosID: v.eos, unknownID: v.unk, paddingID: v.pad,
                                addBOS: v.add_bos)
    }

    /// Built from the equivalent Hugging Face tokenizer.json.
    static func fromJSON() throws -> BPETokenizer {
        try BPETokenizer(tokenizerJSON: try Fixtures.generatedPath("smollm2-tokenizer.json"))
    }

    @Test func vocabularyFacts() throws {
        let t = try Self.fromArrays()
        #expect(t.vocabSize == 49152)
        #expect(t.mergeCount == 48900)
        #expect(t.bosID == 1 && t.eosID == 2 && !t.addBOS)
        #expect(t.tokenText(1) == "<|im_start|>" && t.tokenTypes[1] == .control)
        #expect(t.tokenID("Ġthe") != nil)
        // Known ids, also listed by other SmolLM2 ports.
        #expect(t.encode("Hello world! 123") == [19556, 905, 17, 216, 33, 34, 35])
        #expect(t.encode("  multiple   spaces") == [216, 2701, 256, 5600])
    }

    @Test(arguments: ["arrays", "tokenizer.json"])
    func wikitextMatchesHuggingFace(source: String) throws {
        let clock = ContinuousClock()
        var made: BPETokenizer?
        let loading = try clock.measure { made = source == "arrays" ? try Self.fromArrays() : try Self.fromJSON() }
        let t = try #require(made)
        let want = try Fixtures.ids(try Fixtures.generatedPath("wikitext2-test.ids"))
        let text = try Fixtures.wikitext()
        var got: [Int32] = []
        let elapsed = clock.measure { got = t.encode(text, addBOS: false) }
        func seconds(_ d: Duration) -> Double {
            Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
        }
        print("SmolLM2 (\(source)): loaded in \(String(format: "%.3f", seconds(loading))) s; "
              + "\(text.utf8.count) bytes → \(got.count) tokens in \(String(format: "%.3f", seconds(elapsed))) s "
              + "(\(String(format: "%.1f", Double(text.utf8.count) / seconds(elapsed) / 1e6)) MB/s)")
        if let difference = firstDifference(got, want, tokenText: t.tokenText) {
            let out = Fixtures.generated.appendingPathComponent("wikitext2-test.swift.ids")
            let bytes = got.withUnsafeBufferPointer { Data(buffer: $0) }
            try? bytes.write(to: out)
            Issue.record("""
                wikitext-2 ids differ from Hugging Face (\(source)): \(difference)
                ours were written to \(out.path); compare with
                python3 scripts/compare_tokenizer.py \(out.path)
                """)
        }
    }

    @Test func wikitextRoundTrips() throws {
        let t = try Self.fromArrays()
        let text = try Fixtures.wikitext()
        let ids = t.encode(text, addBOS: false)
        let decoded = t.decode(ids)
        #expect(decoded == text)
        // Streaming the same ids yields the same text.
        var stream = TokenStreamDecoder(t)
        var streamed = ""
        for id in ids.prefix(20000) { streamed += stream.append(id) }
        streamed += stream.finish()
        #expect(streamed == t.decode(Array(ids.prefix(20000))))
    }

    @Test(arguments: ["arrays", "tokenizer.json"])
    func trickyStringsMatchHuggingFace(source: String) throws {
        let t = source == "arrays" ? try Self.fromArrays() : try Self.fromJSON()
        let cases = try Fixtures.decode([IDsCase].self, try Fixtures.generatedPath("smollm2-tricky.json"))
        #expect(cases.count > 10)
        for c in cases {
            let got = t.encode(c.text, addBOS: false)
            #expect(got == c.ids, "\(c.text.debugDescription): \(firstDifference(got, c.ids, tokenText: t.tokenText) ?? "")")
            // Round trip holds unless the text has bytes the vocabulary cannot spell (dropped).
            let spellable = c.text.utf8.allSatisfy { t.tokenID(ByteLevel.encode([$0])) != nil }
            if spellable { #expect(t.decode(got) == c.text, "round trip of \(c.text.debugDescription)") }
        }
    }

    @Test func chatTemplateTokens() throws {
        let t = try Self.fromArrays()
        let ids = t.encode("<|im_start|>user\nhi<|im_end|>\n")
        #expect(ids.first == 1 && ids.contains(2))
        #expect(t.decode(ids) == "<|im_start|>user\nhi<|im_end|>\n")
        #expect(t.decode(ids, skipSpecial: true) == "user\nhi\n")
        let literal = t.encode("<|im_start|>", addBOS: false, parseSpecial: false)
        #expect(!literal.contains(1) && t.decode(literal) == "<|im_start|>")
    }

    @Test func concurrentEncodingIsConsistent() async throws {
        let t = try Self.fromArrays()
        let text = String(try Fixtures.wikitext().prefix(20000))
        let want = t.encode(text)
        let results = await withTaskGroup(of: [Int32].self) { group in
            for _ in 0..<4 { group.addTask { t.encode(text) } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.allSatisfy { $0 == want })
    }
}
