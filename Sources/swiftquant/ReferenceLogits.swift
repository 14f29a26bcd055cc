import Evaluation
import Foundation

/// KL divergence of one perplexity run against a `--reference-logits` file (written by
/// `perplexity --save-logits`), checked up front to match the run's vocabulary, context and chunks.
final class ReferenceComparison {
    private let file: LogitsFile
    private let path: String
    private let vocab: Int
    private var accumulator = KLDivergenceAccumulator()
    private var chunk = 0

    /// Opens `path` for a run of `chunks` chunks of `run`'s protocol over a `vocab`-token vocabulary.
    init(path: String, vocab: Int, run: PerplexityRun, chunks: Int) throws {
        let file = try LogitsFile(path: path)
        let h = file.header
        guard h.vocab == vocab, h.context == run.context, h.scoredPerChunk == run.scoredPerChunk else {
            throw EvaluationError.badLogitsFile(path: path, reason: "made with vocab \(h.vocab), -c \(h.context); this run has vocab \(vocab), -c \(run.context)")
        }
        guard h.chunks >= chunks else {
            throw EvaluationError.badLogitsFile(path: path, reason: "holds \(h.chunks) chunks; this run needs \(chunks) (pass --chunks \(h.chunks))")
        }
        self.file = file
        self.path = path
        self.vocab = vocab
    }

    /// Adds the next chunk's log-probabilities (the `record` callback of `PerplexityRun.evaluate`).
    func add(logProbs: [Float], targets: [Int32]) throws {
        try accumulator.add(chunk: chunk, logProbs: logProbs, targets: targets, vocab: vocab, reference: file, referencePath: path)
        chunk += 1
    }

    /// The statistics so far.
    var result: KLDivergenceResult { accumulator.result }

    /// llama.cpp's KL-divergence summary lines.
    static func lines(_ k: KLDivergenceResult) -> [String] {
        [String(format: "PPL(ref)            = %.4f", k.referencePerplexity),
         String(format: "PPL(Q)/PPL(ref)     = %.5f +/- %.5f", k.perplexityRatio, k.perplexityRatioError),
         String(format: "Mean KLD            = %.6f +/- %.6f", k.meanKLD, k.meanKLDError),
         String(format: "Median KLD          = %.6f", k.medianKLD),
         String(format: "99.0%%  KLD          = %.6f", k.p99KLD),
         String(format: "99.9%%  KLD          = %.6f", k.p999KLD),
         String(format: "Maximum KLD         = %.6f", k.maxKLD),
         String(format: "Same top p          = %.3f +/- %.3f %%", 100 * k.sameTopFraction, 100 * k.sameTopError),
         String(format: "RMS Δp              = %.3f +/- %.3f %%", 100 * k.rmsDeltaP, 100 * k.rmsDeltaPError)]
    }
}
