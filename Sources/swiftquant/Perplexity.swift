import ArgumentParser
import Evaluation
import Foundation
import Models

/// `swiftquant perplexity`: llama.cpp's perplexity protocol, and KL divergence against saved reference logits.
struct Perplexity: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Perplexity of a model on a text file (llama.cpp's protocol), optionally KL divergence vs a reference.",
        discussion: """
        The text is tokenized and cut into chunks of -c tokens; the second half of each chunk is scored.

        Examples:
          swiftquant perplexity MODEL.gguf -f ../shared/data/wikitext-2/test.txt -c 512
          swiftquant perplexity REF.gguf -f test.txt --chunks 20 --save-logits ref.logits
          swiftquant perplexity QUANT.gguf -f test.txt --chunks 20 --reference-logits ref.logits
        """)

    @Argument(help: "GGUF model.") var model: String
    @Option(name: [.short, .customLong("file")], help: "Text file to evaluate on.") var file: String
    @Option(name: [.short, .customLong("ctx-size")], help: "Tokens per chunk.") var context: Int = 512
    @Option(name: .long, help: "Evaluate at most this many chunks.") var chunks: Int?
    @Option(name: .customLong("save-logits"), help: "Write the top-k log-probabilities of every scored token here.")
    var saveLogits: String?
    @Option(name: .customLong("save-top-k"), help: "Tokens kept per position by --save-logits.") var saveTopK: Int = 32
    @Option(name: .customLong("reference-logits"), help: "Compare with a file written by --save-logits (KL divergence).")
    var referenceLogits: String?
    @Flag(name: .long, help: "Print JSON on stdout.") var json = false
    @OptionGroup var compute: ComputeOptions
    @OptionGroup var weights: WeightOptions

    func validate() throws {
        guard context >= 8 else { throw ValidationError("-c must be at least 8") }
        if let chunks, chunks < 1 { throw ValidationError("--chunks must be positive") }
        guard saveTopK >= 1 else { throw ValidationError("--save-top-k must be positive") }
    }

    struct Output: Encodable {
        var model: String, file: String
        var perplexity: PerplexityResult
        var klDivergence: KLDivergenceResult?
    }

    func run() throws {
        compute.apply()
        let loaded = try LoadedModel(path: model, weights: weights.mode)
        let tokens = loaded.tokenizer.encode(try readText(file), addBOS: false, parseSpecial: false)
        var protocolRun = PerplexityRun(context: context, maxChunks: chunks, bos: loaded.bos)
        protocolRun.savedTopK = saveTopK
        let n = protocolRun.chunkCount(tokens: tokens.count)
        Progress.log("\(file): \(tokens.count) tokens, \(n) chunks of \(context)", quiet: compute.quiet)

        let reference = try referenceLogits.map { try LogitsFile(path: $0) }
        if let r = reference, let path = referenceLogits {
            let h = r.header
            guard h.vocab == loaded.model.hp.vocabSize, h.context == context, h.scoredPerChunk == protocolRun.scoredPerChunk else {
                throw EvaluationError.badLogitsFile(path: path, reason: "made with vocab \(h.vocab), -c \(h.context); this run has vocab \(loaded.model.hp.vocabSize), -c \(context)")
            }
            guard h.chunks >= n else {
                throw EvaluationError.badLogitsFile(path: path, reason: "holds \(h.chunks) chunks; this run needs \(n) (pass --chunks \(h.chunks))")
            }
        }
        let writer = try saveLogits.map {
            try LogitsFileWriter(path: $0, vocab: loaded.model.hp.vocabSize, context: context, topK: saveTopK,
                                 scoredPerChunk: protocolRun.scoredPerChunk)
        }
        var kl = KLDivergenceAccumulator()
        var chunkIndex = 0
        let progress = Progress("perplexity", total: n, quiet: compute.quiet)
        let result = try protocolRun.evaluate(loaded.model, tokens: tokens, onChunk: { c, ppl in
            progress.advance(note: String(format: "PPL %.4f", ppl))
        }, record: { logProbs, targets in
            try writer?.append(logProbs: logProbs, targets: targets)
            if let reference, let path = referenceLogits {
                try kl.add(chunk: chunkIndex, logProbs: logProbs, targets: targets, vocab: loaded.model.hp.vocabSize,
                           reference: reference, referencePath: path)
            }
            chunkIndex += 1
        })
        try writer?.finish()
        let klResult = reference == nil ? nil : kl.result
        if json { return try printJSON(Output(model: model, file: file, perplexity: result, klDivergence: klResult)) }
        print(String(format: "Final estimate: PPL = %.4f +/- %.5f  (%d chunks of %d, %d tokens scored, %.1f s)",
                     result.perplexity, result.perplexityError, result.chunks, result.context, result.scoredTokens, result.seconds))
        if let k = klResult {
            print(String(format: "PPL(ref)            = %.4f", k.referencePerplexity))
            print(String(format: "PPL(Q)/PPL(ref)     = %.5f +/- %.5f", k.perplexityRatio, k.perplexityRatioError))
            print(String(format: "Mean KLD            = %.6f +/- %.6f", k.meanKLD, k.meanKLDError))
            print(String(format: "Median KLD          = %.6f", k.medianKLD))
            print(String(format: "99.0%%  KLD          = %.6f", k.p99KLD))
            print(String(format: "99.9%%  KLD          = %.6f", k.p999KLD))
            print(String(format: "Maximum KLD         = %.6f", k.maxKLD))
            print(String(format: "Same top p          = %.3f +/- %.3f %%", 100 * k.sameTopFraction, 100 * k.sameTopError))
            print(String(format: "RMS Δp              = %.3f +/- %.3f %%", 100 * k.rmsDeltaP, 100 * k.rmsDeltaPError))
        }
    }
}
