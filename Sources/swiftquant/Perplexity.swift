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

        let reference = try referenceLogits.map { try ReferenceComparison(path: $0, vocab: loaded.model.hp.vocabSize, run: protocolRun, chunks: n) }
        let writer = try saveLogits.map {
            try LogitsFileWriter(path: $0, vocab: loaded.model.hp.vocabSize, context: context, topK: saveTopK,
                                 scoredPerChunk: protocolRun.scoredPerChunk)
        }
        let progress = Progress("perplexity", total: n, quiet: compute.quiet)
        let result = try protocolRun.evaluate(loaded.model, tokens: tokens, onChunk: { c, ppl in
            progress.advance(note: String(format: "PPL %.4f", ppl))
        }, record: { logProbs, targets in
            try writer?.append(logProbs: logProbs, targets: targets)
            try reference?.add(logProbs: logProbs, targets: targets)
        })
        try writer?.finish()
        let klResult = reference?.result
        if json { return try printJSON(Output(model: model, file: file, perplexity: result, klDivergence: klResult)) }
        print(String(format: "Final estimate: PPL = %.4f +/- %.5f  (%d chunks of %d, %d tokens scored, %.1f s)",
                     result.perplexity, result.perplexityError, result.chunks, result.context, result.scoredTokens, result.seconds))
        if let k = klResult { ReferenceComparison.lines(k).forEach { print($0) } }
    }
}
