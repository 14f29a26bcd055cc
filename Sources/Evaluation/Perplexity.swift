import Foundation
import Models
import Tensors

/// Perplexity with llama.cpp's protocol: the tokenized text is cut into chunks of
/// `context` tokens; each chunk is evaluated from an empty cache (its first token replaced
/// by BOS when the model wants one) and only the second half of each chunk is scored, so
/// every scored token sees at least `context/2` tokens of context.
public struct PerplexityRun {
    /// Tokens per chunk.
    public var context: Int
    /// Evaluate at most this many chunks (nil: all whole chunks of the text).
    public var maxChunks: Int?
    /// The BOS token to put first in each chunk, if the model adds one.
    public var bos: Int32?
    /// Keep this many of the reference's most likely tokens per scored position when
    /// saving logits (see `LogitsFile`).
    public var savedTopK: Int = 32

    /// A run over chunks of `context` tokens.
    public init(context: Int = 512, maxChunks: Int? = nil, bos: Int32? = nil) {
        self.context = context
        self.maxChunks = maxChunks
        self.bos = bos
    }

    /// The first scored position of a chunk (llama.cpp: `n_ctx / 2`).
    public var firstScored: Int { context / 2 }
    /// Scored positions per chunk: row `j` predicts token `j + 1` for `j` in `firstScored..<context-1`.
    public var scoredPerChunk: Int { context - 1 - firstScored }

    /// Number of chunks `tokens` gives.
    public func chunkCount(tokens: Int) -> Int {
        let whole = tokens / context
        return maxChunks.map { min($0, whole) } ?? whole
    }

    /// Evaluates `model` on `tokens`. `onChunk` gets the chunk index and the running
    /// perplexity; `record` (if given) receives each chunk's scored log-probability rows.
    public func evaluate(
        _ model: LlamaModel, tokens: [Int32],
        onChunk: (Int, Double) -> Void = { _, _ in },
        record: ((_ logProbs: [Float], _ targets: [Int32]) throws -> Void)? = nil
    ) throws -> PerplexityResult {
        let chunks = chunkCount(tokens: tokens.count)
        guard context >= 4, chunks >= 1 else {
            throw EvaluationError.textTooShort(tokens: tokens.count, needed: context)
        }
        let vocab = model.hp.vocabSize
        var acc = NLLAccumulator()
        let cache = model.makeCache(capacity: context)
        let start = Date()
        for c in 0..<chunks {
            var chunk = Array(tokens[c * context..<(c + 1) * context])
            if let bos { chunk[0] = bos }
            cache.reset()
            var logits = model.forward(chunk, cache: cache, logitsFrom: firstScored)
            let n = scoredPerChunk
            let targets = Array(tokens[(c * context + firstScored + 1)..<(c * context + context)])
            logSoftmaxRows(&logits, rows: n, width: vocab)
            for j in 0..<n { acc.add(-Double(logits[j * vocab + Int(targets[j])])) }
            try record?(Array(logits[0..<n * vocab]), targets)
            onChunk(c, exp(acc.mean))
        }
        return PerplexityResult(context: context, chunks: chunks, scoredTokens: acc.count,
                                perplexity: exp(acc.mean), perplexityError: exp(acc.mean) * acc.standardError,
                                meanNLL: acc.mean, seconds: Date().timeIntervalSince(start))
    }
}

/// The outcome of a perplexity run.
public struct PerplexityResult: Codable, Sendable, Equatable {
    /// Tokens per chunk.
    public var context: Int
    /// Chunks evaluated.
    public var chunks: Int
    /// Tokens scored.
    public var scoredTokens: Int
    /// exp(mean negative log-likelihood).
    public var perplexity: Double
    /// Standard error of the perplexity (llama.cpp's estimate: ppl · σ(nll)/√(n−1)).
    public var perplexityError: Double
    /// Mean negative log-likelihood in nats.
    public var meanNLL: Double
    /// Wall time of the evaluation.
    public var seconds: Double
}

/// Running mean and standard error of per-token values.
public struct NLLAccumulator: Sendable {
    /// Values added.
    public private(set) var count = 0
    private var sum = 0.0, sumSquares = 0.0
    /// An empty accumulator.
    public init() {}
    /// Adds one value.
    public mutating func add(_ v: Double) {
        count += 1
        sum += v
        sumSquares += v * v
    }
    /// Mean of the values.
    public var mean: Double { count == 0 ? 0 : sum / Double(count) }
    /// Standard error of the mean, √(var/(n−1)).
    public var standardError: Double {
        guard count > 1 else { return 0 }
        let variance = sumSquares / Double(count) - mean * mean
        return variance > 0 ? (variance / Double(count - 1)).squareRoot() : 0
    }
}

/// Replaces each of `rows` rows of `width` logits by its log-softmax, in parallel.
public func logSoftmaxRows(_ x: inout [Float], rows: Int, width: Int) {
    x.withUnsafeMutableBufferPointer { xb in
        let base = xb.baseAddress!
        parallelFor(rows) { r in
            let row = base + r * width
            var m = -Float.infinity
            for i in 0..<width { m = max(m, row[i]) }
            var s: Double = 0
            for i in 0..<width { s += Double(expf(row[i] - m)) }
            let lse = m + Float(log(s))
            for i in 0..<width { row[i] -= lse }
        }
    }
}

/// Errors of the evaluation commands.
public enum EvaluationError: Error, CustomStringConvertible, Equatable {
    /// The text tokenized to fewer tokens than one chunk needs.
    case textTooShort(tokens: Int, needed: Int)
    /// A logits file is malformed or does not match the run.
    case badLogitsFile(path: String, reason: String)
    /// A model cannot be compared with the reference (another tokenizer, vocabulary or file kind).
    case incompatibleModel(path: String, reason: String)

    public var description: String {
        switch self {
        case let .textTooShort(tokens, needed):
            return "the text has \(tokens) tokens; one chunk needs \(needed) (lower -c or use a longer file)"
        case let .badLogitsFile(path, reason), let .incompatibleModel(path, reason):
            return "\(path): \(reason)"
        }
    }
}
