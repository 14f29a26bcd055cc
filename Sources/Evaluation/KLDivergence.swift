import Foundation

/// Accumulates the statistics llama.cpp prints for `--kl-divergence`, comparing a model's
/// full log-probabilities with a reference's saved top-k (`LogitsFile`).
///
/// KL(P‖Q) per position is computed over the reference's top-k tokens plus one bucket for
/// all the rest: Σ_top p·(log p − log q) + p_rest·(log p_rest − log q_rest). Merging tokens
/// into one bucket can only lower KL (log-sum inequality), so this is a tight lower bound
/// that equals the full KL when the reference's mass sits in its top k (on SmolLM2 the top 32
/// tokens hold ~81% of the mass at 256-token contexts, and top-32 KL ≈ 2/3 of the full KL).
public struct KLDivergenceAccumulator: Sendable {
    private var kl: [Double] = []
    private var sameTop = 0
    private var deltaP = NLLAccumulator()  // accumulates Δp, for RMS and its error
    private var deltaPSquares = NLLAccumulator()
    private var nllModel = NLLAccumulator(), nllReference = NLLAccumulator()
    private var logRatio = NLLAccumulator()

    /// An empty accumulator.
    public init() {}

    /// Adds one position: `logProbs` is the model's log-softmax row over the vocabulary.
    public mutating func add(logProbs: UnsafeBufferPointer<Float>, reference r: LogitsFile.Position) {
        var klSum = 0.0, pTop = 0.0, qTop = 0.0
        for (id, lp) in zip(r.ids, r.logProbs) {
            let p = exp(Double(lp)), lq = Double(logProbs[Int(id)])
            klSum += p * (Double(lp) - lq)
            pTop += p
            qTop += exp(lq)
        }
        let pRest = max(0, 1 - pTop), qRest = max(1e-30, 1 - qTop)
        if pRest > 1e-12 { klSum += pRest * (log(pRest) - log(qRest)) }
        kl.append(max(0, klSum))
        var best = 0
        for i in 1..<logProbs.count where logProbs[i] > logProbs[best] { best = i }
        if Int32(best) == r.ids[0] { sameTop += 1 }
        let lqT = Double(logProbs[Int(r.target)]), lpT = Double(r.targetLogProb)
        let dp = exp(lqT) - exp(lpT)
        deltaP.add(dp)
        deltaPSquares.add(dp * dp)
        nllModel.add(-lqT)
        nllReference.add(-lpT)
        logRatio.add(lpT - lqT)
    }

    /// Adds every scored position of chunk `chunk`: `logProbs` is `[targets.count, vocab]`
    /// log-softmax rows, as `PerplexityRun.evaluate` records them. Throws when the
    /// reference scored other tokens there (another text or tokenizer) or has another shape.
    public mutating func add(chunk: Int, logProbs: [Float], targets: [Int32], vocab: Int, reference: LogitsFile,
                             referencePath: String) throws {
        let h = reference.header
        guard h.vocab == vocab, chunk < h.chunks, h.scoredPerChunk == targets.count, logProbs.count == targets.count * vocab else {
            throw EvaluationError.badLogitsFile(path: referencePath, reason: "made with vocab \(h.vocab), \(h.chunks) chunks of \(h.scoredPerChunk) scored tokens; chunk \(chunk) of this run has vocab \(vocab), \(targets.count) scored tokens")
        }
        guard reference.targets(chunk: chunk) == targets else {
            throw EvaluationError.badLogitsFile(path: referencePath, reason: "chunk \(chunk) scored different tokens: the reference was made from another text or tokenizer")
        }
        logProbs.withUnsafeBufferPointer { b in
            for j in 0..<targets.count {
                add(logProbs: UnsafeBufferPointer(rebasing: b[(j * vocab)..<((j + 1) * vocab)]),
                    reference: reference.position(chunk: chunk, index: j))
            }
        }
    }

    /// The statistics over all positions added so far.
    public var result: KLDivergenceResult {
        let n = kl.count
        let sorted = kl.sorted()
        func pct(_ q: Double) -> Double { n == 0 ? 0 : sorted[min(n - 1, Int((q * Double(n - 1)).rounded()))] }
        var acc = NLLAccumulator()
        for v in kl { acc.add(v) }
        let top = n == 0 ? 0 : Double(sameTop) / Double(n)
        let rms = deltaPSquares.mean.squareRoot()
        return KLDivergenceResult(
            positions: n, meanKLD: acc.mean, meanKLDError: acc.standardError, medianKLD: pct(0.5),
            p90KLD: pct(0.9), p99KLD: pct(0.99), p999KLD: pct(0.999), maxKLD: sorted.last ?? 0,
            sameTopFraction: top, sameTopError: n > 1 ? (top * (1 - top) / Double(n - 1)).squareRoot() : 0,
            rmsDeltaP: rms, rmsDeltaPError: rms > 0 ? deltaPSquares.standardError / (2 * rms) : 0,
            meanDeltaP: deltaP.mean,
            perplexity: exp(nllModel.mean), referencePerplexity: exp(nllReference.mean),
            perplexityRatio: exp(logRatio.mean), perplexityRatioError: exp(logRatio.mean) * logRatio.standardError)
    }
}

/// KL divergence and agreement of a model with its reference.
public struct KLDivergenceResult: Codable, Sendable, Equatable {
    /// Positions compared.
    public var positions: Int
    /// Mean KL(reference ‖ model) in nats, and its standard error.
    public var meanKLD: Double, meanKLDError: Double
    /// Percentiles and maximum of the per-position KL.
    public var medianKLD: Double, p90KLD: Double, p99KLD: Double, p999KLD: Double, maxKLD: Double
    /// Fraction of positions where the model's most likely token is the reference's, and its error.
    public var sameTopFraction: Double, sameTopError: Double
    /// Root mean square of Δp = p_model(next) − p_reference(next), and its error.
    public var rmsDeltaP: Double, rmsDeltaPError: Double
    /// Mean Δp.
    public var meanDeltaP: Double
    /// Perplexity of the model and of the reference on the same positions.
    public var perplexity: Double, referencePerplexity: Double
    /// PPL(model)/PPL(reference) and its error.
    public var perplexityRatio: Double, perplexityRatioError: Double
}
