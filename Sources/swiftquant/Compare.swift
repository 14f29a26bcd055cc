import ArgumentParser
import Evaluation
import Formats
import Foundation
import Models
import Tokenizers

/// `swiftquant compare`: a reference and several models on the same text — quality, size, speed, memory.
struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare models with a reference: perplexity, KL divergence, bits per weight, speed, memory, weight error by layer.",
        discussion: """
        The reference is evaluated first and its top-k log-probabilities kept; each model then runs alone on the same tokens (llama.cpp's perplexity protocol) and is compared with it. Reports are written by extension: .html (a self-contained page with charts), .md (the table, for a README), .json (everything; `swiftquant report` renders it again).

        A model written PATH@VARIANT is the file run as a runtime variant, calibrated on --calibration: \(Self.variants.joined(separator: ", ")) (W8A8 block linears: int8 weights per channel, int8 activations per token or per tensor; smoothquant folds α = 0.5 first; llm-int8 keeps input columns with calibration |x| > 6 in f32).

        Example:
          swiftquant compare REF.gguf Q4_0.gguf Q8_0.gguf -f test.txt --chunks 20 \\
              --report compare.html --report compare.md
          swiftquant compare f32.gguf f32.gguf@w8a8-dynamic f32.gguf@llm-int8 awq-Q4_0.gguf -f test.txt
        """)

    /// Runtime variants a model argument may name after `@`.
    static let variants = ["w8a8-dynamic", "w8a8-static", "smoothquant-dynamic", "smoothquant-static", "llm-int8"]

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
    @Option(name: .long, help: "Calibration text for PATH@VARIANT models (static ranges, smoothing, outliers).")
    var calibration: String = "../shared/data/wikitext-2/valid.txt"
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
        for m in models {
            if let v = Comparison.splitVariant(m).variant, !Self.variants.contains(v) {
                throw ValidationError("\(m): unknown variant '\(v)' (expected one of \(Self.variants.joined(separator: ", ")))")
            }
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
        let calibrationPath = calibration
        comparison.variantLoader = { gguf, variant in try Self.loadVariant(gguf, variant, calibration: calibrationPath) }
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

    /// The file's model as a W8A8 runtime variant, calibrated on 8 windows of 512 tokens of `calibration`.
    static func loadVariant(_ gguf: GGUFFile, _ variant: String, calibration: String) throws -> LlamaModel {
        guard variants.contains(variant) else {
            throw ValidationError("\(gguf.path)@\(variant): unknown variant (expected one of \(variants.joined(separator: ", ")))")
        }
        let model = try LlamaLoader.load(gguf, weights: .f32)
        let tokenizer = try BPETokenizer(gguf: gguf)
        let tokens = tokenizer.encode(try readText(calibration), addBOS: false, parseSpecial: false)
        let windows = try CalibrationWindows(tokens: tokens, count: 8, length: 512, seed: 0, bos: tokenizer.addBOS ? tokenizer.bosID : nil)
        if variant.hasPrefix("smoothquant") {
            try model.smoothActivations(statistics: model.inputStatistics(over: windows.windows), alpha: { _ in 0.5 })
        }
        switch variant {
        case "w8a8-dynamic", "smoothquant-dynamic": try model.quantizeW8A8(.dynamicPerToken)
        case "llm-int8": try model.quantizeW8A8(.outlierDecomposed(model.inputStatistics(over: windows.windows), threshold: 6))
        default: try model.quantizeW8A8(.staticPerTensor(model.inputStatistics(over: windows.windows)))
        }
        return model
    }
}
