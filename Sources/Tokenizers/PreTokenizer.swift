// Pre-tokenization: cutting text into words before BPE, so that merges never cross a
// word boundary. A model's pre-tokenizer is a sequence of stages, each splitting every
// piece the previous stage produced (Hugging Face's `Sequence`, llama.cpp's list of
// regexes per `tokenizer.ggml.pre`).

import Foundation

/// A sequence of splitting stages that cuts text into the words BPE merges within.
public struct PreTokenizer: Sendable {
    /// One splitting step. Each stage keeps every scalar: matches and the text between
    /// them both become pieces (Hugging Face's `Isolated` behaviour).
    public enum Stage: Sendable {
        /// GPT-2's pattern:
        /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
        case gpt2
        /// Llama 3's pattern: case-insensitive contractions, a letter run with one
        /// leading non-letter, numbers in groups of at most 3, punctuation runs with
        /// trailing newlines, newline-terminated whitespace.
        case llama3
        /// Qwen2's pattern: Llama 3's with single-digit numbers.
        case qwen2
        /// `\p{N}`: isolates each number scalar (`individual`) or each run of them
        /// (Hugging Face `Digits`).
        case digits(individual: Bool)
        /// `[\p{P}extra]+`: isolates runs of punctuation and the ASCII characters in
        /// `extra` (llama.cpp's "default" and "falcon" sets).
        case punctuation(extra: String)
        /// `[0-9][0-9][0-9]`: isolates groups of three ASCII digits, left to right.
        case digitTriples
        /// Any other pattern, run by Foundation's ICU regex engine (slower).
        case regex(SplitRegex)
    }

    /// The stages, applied in order.
    public let stages: [Stage]

    /// A pre-tokenizer running `stages` in order.
    public init(stages: [Stage]) {
        self.stages = stages
    }

    /// GPT-2, and llama.cpp's "gpt-2", "mpt", "olmo", "jais", "phi-2" … presets.
    public static let gpt2 = PreTokenizer(stages: [.gpt2])
    /// Llama 3 (llama.cpp "llama-bpe", "llama3", "dbrx", "smaug-bpe", "chatglm-bpe" …).
    public static let llama3 = PreTokenizer(stages: [.llama3])
    /// Qwen2 (llama.cpp "qwen2", "stablelm2", "deepseek-r1-qwen" …).
    public static let qwen2 = PreTokenizer(stages: [.qwen2])
    /// Single digits, then GPT-2: SmolLM, StarCoder, Command-R, Refact, CodeShell, EXAONE.
    public static let smollm = PreTokenizer(stages: [.digits(individual: true), .gpt2])
    /// llama.cpp's fallback for a BPE model without a known `tokenizer.ggml.pre`.
    public static let llamaCppDefault = PreTokenizer(stages: [
        .punctuation(extra: "$+<=>^~|"), .gpt2, .digits(individual: false), .digitTriples,
    ])
    /// Falcon (llama.cpp "falcon").
    public static let falcon = PreTokenizer(stages: [
        .punctuation(extra: "$+<=>^~|`"), .gpt2, .digitTriples,
    ])

    /// The pre-tokenizer llama.cpp uses for a GGUF `tokenizer.ggml.pre` value.
    ///
    /// - Throws: `TokenizerError.unsupportedPreTokenizer` for a name this library does
    ///   not implement (rather than silently tokenizing differently from the model).
    public init(ggufName name: String) throws {
        switch name {
        case "", "default":
            self = .llamaCppDefault
        case "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0",
             "lfm2", "dbrx", "smaug-bpe", "chatglm-bpe", "glm4":
            self = .llama3
        case "qwen2", "deepseek-r1-qwen", "stablelm2", "megrez", "hunyuan", "kormo":
            self = .qwen2
        case "gpt2", "gpt-2", "phi-2", "mpt", "olmo", "jais", "jina-es", "jina-de", "gigachat",
             "jina-v2-es", "jina-v2-de", "jina-v1-en", "jina-v2-code", "roberta-bpe", "a.x-4.0",
             "mellum", "modern-bert", "exaone4", "trillion", "granite-docling":
            self = .gpt2
        case "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b":
            self = .smollm
        case "falcon":
            self = .falcon
        default:
            throw TokenizerError.unsupportedPreTokenizer(name)
        }
    }

    /// Splits `text` into its pre-tokens (for inspection and tests; `encode` does the
    /// same work without building strings).
    public func split(_ text: String) -> [String] {
        var text = text
        return text.withUTF8 { bytes in
            var scalars = ScalarText()
            scalars.load(bytes)
            var pieces: [Range<Int>] = []
            split(scalars, into: &pieces)
            return pieces.map { r in
                let lo = scalars.offsets[r.lowerBound], hi = scalars.offsets[r.upperBound]
                return String(decoding: UnsafeBufferPointer(rebasing: bytes[lo..<hi]), as: UTF8.self)
            }
        }
    }

    /// Appends the scalar ranges of the pre-tokens of all of `t` to `out`.
    func split(_ t: ScalarText, into out: inout [Range<Int>]) {
        guard !t.scalars.isEmpty else { return }
        var current = [0..<t.scalars.count]
        var next: [Range<Int>] = []
        for (n, stage) in stages.enumerated() {
            let last = n == stages.count - 1
            for piece in current {
                if last {
                    stage.split(piece, t, into: &out)
                } else {
                    stage.split(piece, t, into: &next)
                }
            }
            swap(&current, &next)
            next.removeAll(keepingCapacity: true)
        }
        if stages.isEmpty { out.append(contentsOf: current) }
    }
}

extension PreTokenizer.Stage {
    /// The stage for a Hugging Face `Split` pattern: one of the hand-written machines when
    /// the pattern is a known one, else an ICU regex.
    init(pattern: String) throws {
        let gpt2 = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#
        let llama3 = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
        let qwen2 = llama3.replacingOccurrences(of: #"\p{N}{1,3}"#, with: #"\p{N}"#)
        switch pattern {
        case gpt2, gpt2 + #"|\s+"#: self = .gpt2
        case llama3: self = .llama3
        case qwen2: self = .qwen2
        case #"\p{N}"#: self = .digits(individual: true)
        case #"\p{N}+"#: self = .digits(individual: false)
        default: self = .regex(try SplitRegex(pattern))
        }
    }

    func split(_ r: Range<Int>, _ t: ScalarText, into out: inout [Range<Int>]) {
        switch self {
        case .gpt2:
            splitGPT2(r, t, into: &out)
        case .llama3:
            splitLlama3(r, t, maxDigits: 3, into: &out)
        case .qwen2:
            splitLlama3(r, t, maxDigits: 1, into: &out)
        case .digits(let individual):
            splitIsolating(r, t, individual: individual, into: &out) { _, k in k == CharClass.number }
        case .punctuation(let extra):
            let ascii = Set(extra.unicodeScalars.map(\.value))
            splitIsolating(r, t, individual: false, into: &out) { v, k in
                k == CharClass.other && (ascii.contains(v) || CharClass.isPunctuation(v))
            }
        case .digitTriples:
            splitDigitTriples(r, t, into: &out)
        case .regex(let regex):
            regex.split(r, t, into: &out)
        }
    }
}

/// A split pattern run by Foundation's `NSRegularExpression` (ICU), for patterns that
/// have no hand-written machine. Matches and the text between them become pieces.
public final class SplitRegex: @unchecked Sendable {  // NSRegularExpression is immutable and thread-safe
    /// The pattern, as given.
    public let pattern: String
    private let regex: NSRegularExpression

    /// Compiles `pattern`.
    ///
    /// - Throws: `TokenizerError.unsupportedPreTokenizer` if ICU rejects it.
    public init(_ pattern: String) throws {
        self.pattern = pattern
        do {
            regex = try NSRegularExpression(pattern: pattern)
        } catch {
            throw TokenizerError.unsupportedPreTokenizer("regex \(pattern): \(error)")
        }
    }

    func split(_ r: Range<Int>, _ t: ScalarText, into out: inout [Range<Int>]) {
        // ICU reports UTF-16 offsets; keep a table back to scalar indices.
        var view = String.UnicodeScalarView()
        var scalarAt: [Int] = []  // UTF-16 offset -> scalar index (relative)
        for (n, i) in r.enumerated() {
            let scalar = Unicode.Scalar(t.scalars[i])!
            view.append(scalar)
            scalarAt.append(n)
            if scalar.value > 0xFFFF { scalarAt.append(n) }
        }
        scalarAt.append(r.count)
        let string = String(view)
        var gap = 0
        for match in regex.matches(in: string, range: NSRange(location: 0, length: scalarAt.count - 1)) {
            let lo = scalarAt[match.range.location], hi = scalarAt[match.range.location + match.range.length]
            guard hi > lo else { continue }
            if gap < lo { out.append(r.lowerBound + gap..<r.lowerBound + lo) }
            out.append(r.lowerBound + lo..<r.lowerBound + hi)
            gap = hi
        }
        if gap < r.count { out.append(r.lowerBound + gap..<r.upperBound) }
    }
}
