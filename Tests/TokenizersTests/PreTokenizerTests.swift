import Foundation
import Testing
@testable import Tokenizers

/// The hand-written splitters against Hugging Face `tokenizers` (committed reference
/// splits) and against ICU running the original patterns.
@Suite struct PreTokenizerTests {
    static let presets: [(String, PreTokenizer)] = [
        ("gpt2", .gpt2), ("llama3", .llama3), ("qwen2", .qwen2), ("smollm", .smollm),
        ("default", .llamaCppDefault), ("falcon", .falcon),
    ]

    static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Pattern = llama3Pattern.replacingOccurrences(of: #"\p{N}{1,3}"#, with: #"\p{N}"#)

    @Test func splitsMatchHuggingFace() throws {
        let fixture = try TrickyFixture.load()
        for (name, pre) in Self.presets {
            for c in fixture.cases {
                let want = try #require(c.splits[name], "tricky.json lacks \(name) splits")
                #expect(pre.split(c.text) == want, "\(name) split of \(c.text.debugDescription)")
            }
        }
    }

    @Test func piecesCoverTheText() throws {
        for c in try TrickyFixture.load().cases {
            for (name, pre) in Self.presets {
                #expect(pre.split(c.text).joined() == c.text, "\(name) lost text of \(c.text.debugDescription)")
            }
        }
    }

    @Test func ggufNamesSelectPresets() throws {
        #expect(try PreTokenizer(ggufName: "smollm").split("a 12") == ["a", " ", "1", "2"])
        #expect(try PreTokenizer(ggufName: "gpt-2").split("a 12") == ["a", " 12"])
        #expect(try PreTokenizer(ggufName: "gpt2").split("a 12") == ["a", " 12"])
        #expect(try PreTokenizer(ggufName: "llama-bpe").split("a 12345") == ["a", " ", "123", "45"])
        #expect(try PreTokenizer(ggufName: "llama3").split("I'M") == ["I", "'M"])
        #expect(try PreTokenizer(ggufName: "qwen2").split("a 123") == ["a", " ", "1", "2", "3"])
        #expect(try PreTokenizer(ggufName: "default").split("x=1234") == ["x", "=", "123", "4"])
        #expect(throws: TokenizerError.unsupportedPreTokenizer("no-such-pre")) {
            try PreTokenizer(ggufName: "no-such-pre")
        }
    }

    @Test func knownPatternsUseStateMachines() throws {
        for (pattern, expected) in [(Self.gpt2Pattern, "gpt2"), (Self.llama3Pattern, "llama3"),
                                    (Self.qwen2Pattern, "qwen2"), (#"\p{N}"#, "digits")] {
            let stage = try PreTokenizer.Stage(pattern: pattern)
            #expect(String(describing: stage).hasPrefix(expected), "\(pattern) → \(stage)")
        }
        if case .regex = try PreTokenizer.Stage(pattern: #"\p{N}{1,3}"#) {} else {
            Issue.record("an unknown pattern should fall back to ICU")
        }
    }

    /// ICU runs the original patterns: it must agree with the machines on the reference
    /// strings and on random strings over an alphabet where both engines classify alike.
    @Test func stateMachinesAgreeWithICU() throws {
        let pairs: [(PreTokenizer, String)] = [(.gpt2, Self.gpt2Pattern), (.llama3, Self.llama3Pattern),
                                               (.qwen2, Self.qwen2Pattern)]
        let alphabet = Array("aZé中 \n\r\t'sStTrReEvVmMlLdD1٣½.,!?-(\"😀\u{00A0}\u{3000}x")
        var rng = SplitMix64(seed: 7)
        var texts = try TrickyFixture.load().cases.map(\.text)
        for _ in 0..<3000 {
            let n = Int(rng.next() % 12)
            texts.append(String((0..<n).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }))
        }
        for (machine, pattern) in pairs {
            let icu = PreTokenizer(stages: [.regex(try SplitRegex(pattern))])
            for text in texts {
                #expect(machine.split(text) == icu.split(text), "\(pattern.prefix(20))… on \(text.debugDescription)")
            }
        }
    }

    @Test func emptyAndSingleCharacterText() {
        for (_, pre) in Self.presets {
            #expect(pre.split("") == [])
            #expect(pre.split(" ") == [" "])
            #expect(pre.split("\n") == ["\n"])
        }
    }
}

/// A tiny deterministic generator, so random tests repeat exactly.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
