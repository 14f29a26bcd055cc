import ArgumentParser
import Evaluation
import Formats
import Foundation
import Models

/// `swiftquant imatrix`: compute an importance matrix from calibration text.
struct IMatrix: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "imatrix",
        abstract: "Compute an importance matrix (mean squared input activation per column of every linear layer).",
        discussion: """
        The output works with `quantize --imatrix` here and with llama.cpp's llama-quantize.

        Example:
          swiftquant imatrix MODEL.gguf -f ../shared/data/wikitext-2/valid.txt -o imatrix.gguf --chunks 32
        """)

    @Argument(help: "GGUF model.") var model: String
    @Option(name: [.short, .customLong("file")], help: "Calibration text.") var file: String
    @Option(name: [.short, .customLong("output")], help: "Output file.") var output: String = "imatrix.gguf"
    @Option(name: .customLong("output-format"), help: "gguf or dat (llama.cpp's legacy form).") var format: String?
    @Option(name: [.short, .customLong("ctx-size")], help: "Tokens per chunk.") var context: Int = 512
    @Option(name: .long, help: "Use at most this many chunks.") var chunks: Int?
    @Flag(name: .customLong("process-output"), help: "Also collect statistics for the output head.") var processOutput = false
    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        guard context >= 16 else { throw ValidationError("-c must be at least 16") }
        if let format, ImportanceMatrix.Format(rawValue: format) == nil { throw ValidationError("--output-format is gguf or dat") }
    }

    func run() throws {
        compute.apply()
        let loaded = try LoadedModel(path: model)
        let tokens = loaded.tokenizer.encode(try readText(file), addBOS: false, parseSpecial: false)
        let available = tokens.count / context
        let n = min(chunks ?? available, available)
        guard n >= 1 else { throw EvaluationError.textTooShort(tokens: tokens.count, needed: context) }
        let stats = ActivationStatistics()
        loaded.model.captureInputs(into: stats, includeOutput: processOutput)
        let cache = loaded.model.makeCache(capacity: context)
        let progress = Progress("imatrix", total: n, quiet: compute.quiet)
        for c in 0..<n {
            var chunk = Array(tokens[(c * context)..<((c + 1) * context)])
            if let bos = loaded.bos { chunk[0] = bos }
            cache.reset()
            _ = loaded.model.forward(chunk, cache: cache)
            progress.advance()
        }
        var entries: [String: ImportanceMatrix.Entry] = [:]
        for (name, sums) in stats.sumSquares {
            entries[name] = .init(sumSquares: sums.map { Float($0) }, count: Float(stats.counts[name] ?? 0))
        }
        let matrix = ImportanceMatrix(entries: entries, datasets: [file], chunkCount: n, chunkSize: context)
        let fmt = format.flatMap(ImportanceMatrix.Format.init(rawValue:)) ?? (output.hasSuffix(".dat") ? .dat : .gguf)
        try matrix.write(to: output, format: fmt)
        Progress.log("wrote \(output) (\(fmt.rawValue)): \(entries.count) layers, \(n) chunks of \(context) tokens", quiet: compute.quiet)
    }
}
