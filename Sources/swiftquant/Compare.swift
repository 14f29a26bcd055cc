import ArgumentParser
import Evaluation
import Foundation

/// `swiftquant compare`: a reference and several models on the same text — quality, size, speed, memory.
struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare models with a reference: perplexity, KL divergence, bits per weight, speed, memory, weight error by layer.",
        discussion: """
        The reference is evaluated first and its top-k log-probabilities kept; each model then runs alone on the same tokens (llama.cpp's perplexity protocol) and is compared with it. Reports are written by extension: .html (a self-contained page with charts), .md (the table, for a README), .json (everything; `swiftquant report` renders it again).

        Example:
          swiftquant compare REF.gguf Q4_0.gguf Q8_0.gguf -f test.txt --chunks 20 \\
              --report compare.html --report compare.md
        """)

    @Argument(help: "Reference model (GGUF).") var reference: String
    @Argument(help: "Models to compare with it (GGUF).") var models: [String] = []
    @Option(name: [.short, .customLong("file")], help: "Text file to evaluate on.") var file: String
    @Option(name: [.short, .customLong("ctx-size")], help: "Tokens per chunk.") var context: Int = 512
    @Option(name: .long, help: "Evaluate at most this many chunks.") var chunks: Int?
    @Option(name: .customLong("top-k"), help: "Reference tokens kept per position for the KL divergence.") var topK: Int = 32
    @Option(name: .long, help: "Write a report here: .html, .md or .json (repeatable).") var report: [String] = []
    @Option(name: .customLong("bench-repetitions"), help: "Repetitions of each speed test.") var benchRepetitions: Int = 2
    @Option(name: .customLong("bench-prompt"), help: "Prompt tokens of the prompt-processing test.") var benchPrompt: Int = 512
    @Option(name: .customLong("bench-gen"), help: "Tokens of the generation test.") var benchGen: Int = 128
    @Flag(name: .customLong("no-bench"), help: "Skip the speed tests.") var noBench = false
    @Flag(name: .customLong("no-layer-errors"), help: "Skip the per-tensor weight error.") var noLayerErrors = false
    @Option(name: .customLong("save-logits"), help: "Keep the reference's logits file here.") var saveLogits: String?
    @Flag(name: .long, help: "Print the whole comparison as JSON on stdout.") var json = false
    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        guard !models.isEmpty else { throw ValidationError("give at least one model to compare with the reference") }
        guard context >= 8 else { throw ValidationError("-c must be at least 8") }
        if let chunks, chunks < 1 { throw ValidationError("--chunks must be positive") }
        guard topK >= 1 else { throw ValidationError("--top-k must be positive") }
        guard benchRepetitions >= 1, benchPrompt >= 1, benchGen >= 1 else {
            throw ValidationError("--bench-repetitions, --bench-prompt and --bench-gen must be positive (use --no-bench to skip)")
        }
        for r in report where ReportFormat(path: r) == nil {
            throw ValidationError("\(r): unknown report format (use .html, .md or .json)")
        }
    }

    func run() throws {
        compute.apply()
        var options = Comparison.Options()
        options.context = context
        options.maxChunks = chunks
        options.topK = topK
        options.benchRepetitions = noBench ? 0 : benchRepetitions
        options.benchPromptTokens = benchPrompt
        options.benchGeneratedTokens = benchGen
        options.layerErrors = !noLayerErrors
        options.logitsPath = saveLogits
        var comparison = Comparison(reference: reference, models: models, options: options)
        comparison.quiet = compute.quiet
        let result = try comparison.run(text: try readText(file), textLabel: file)
        for path in report {
            try result.writeReport(to: path)
            Progress.log("wrote \(path)", quiet: compute.quiet)
        }
        if json { return FileHandle.standardOutput.write(try result.jsonReport()) }
        print(renderTable(Comparison.Result.tableHeader, result.tableRows, rightAligned: Comparison.Result.numericColumns))
        if let m = ([result.reference] + result.models).compactMap(\.memory).first {
            print("peak memory: \(m.method.rawValue), per model while it was loaded and run")
        }
    }
}
