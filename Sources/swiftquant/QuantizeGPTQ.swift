import ArgumentParser
import Evaluation
import Formats
import Foundation
import Models
import Quantization
import Tensors
import Tokenizers

/// How `quantize` rounds the weights.
enum QuantizeMethod: String, ExpressibleByArgument, CaseIterable {
    /// Round to nearest with each type's own encoder (llama-quantize's behaviour).
    case rtn
    /// GPTQ on calibration data, layer by layer.
    case gptq
    /// AWQ: activation-aware scales searched per block and folded into the norms (and up →
    /// down), then clipped round-to-nearest (integer schemes) or each GGUF type's own encoder.
    case awq
    /// SmoothQuant: factors `max|X|^α / max|W|^(1−α)` (α given or searched per layer) folded
    /// into the norms and producers, then each GGUF type's own encoder (Q8_0: llama.cpp's
    /// int8-weight × int8-activation path); `fakequant` with W8A8 schemes.
    case smoothquant
    /// LLM.int8(): vector-wise int8 rows written as a bitsandbytes 8-bit Hugging Face folder
    /// (transformers' `load_in_8bit`); the outlier columns are chosen at run time.
    case llmInt8 = "llm-int8"
}

extension CalibrationForward: ExpressibleByArgument {}

/// `quantize`'s options for calibrated methods.
struct GPTQOptionsGroup: ParsableArguments {
    @Option(name: .long, help: "rtn (default), gptq, awq, smoothquant (--type only) or llm-int8 (a bitsandbytes 8-bit folder).") var method: QuantizeMethod = .rtn
    @Option(name: .long, help: "Calibration text (default: wikitext-2 valid.txt beside the repository).")
    var calibration: String = "../shared/data/wikitext-2/valid.txt"
    @Option(name: .long, help: "Calibration windows.") var nsamples: Int = 128
    @Option(name: .long, help: "Tokens per calibration window.") var seqlen: Int = 512
    @Option(name: .long, help: "Seed of the window draw.") var seed: UInt64 = 0
    @Option(name: .long, help: "GPTQ dampening, as a fraction of the Hessian's mean diagonal.") var damp: Float = 0.01
    @Flag(name: .customLong("act-order"), help: "GPTQ: quantize columns by decreasing Hessian diagonal.") var actOrder = false
    @Flag(name: .customLong("static-groups"), help: "GPTQ: group parameters fixed up front from the original weights' groups.")
    var staticGroups = false
    @Option(name: .customLong("calibration-forward"),
            help: "Arithmetic of the calibration passes through quantized layers: f32, or int8 (W8A8, several times faster).")
    var calibrationForward: CalibrationForward = .f32

    @Option(name: .long, help: "SmoothQuant migration strength α in 0…1, or `auto` (searched per block and fold point).")
    var alpha: String = "0.5"
    @Option(name: .customLong("outlier-threshold"), help: "llm-int8: llm_int8_threshold written to the folder's config.")
    var outlierThreshold: Float = 6

    func validate() throws {
        if alpha != "auto" { guard let a = Float(alpha), (0...1).contains(a) else { throw ValidationError("--alpha takes a number in 0…1 or `auto`") } }
        guard nsamples >= 1, seqlen >= 8 else { throw ValidationError("--nsamples must be ≥ 1 and --seqlen ≥ 8") }
        guard damp > 0, damp.isFinite else { throw ValidationError("--damp must be positive") }
        guard outlierThreshold >= 0, outlierThreshold.isFinite else { throw ValidationError("--outlier-threshold must be ≥ 0") }
    }

    var options: GPTQOptions { GPTQOptions(damp: damp, actOrder: actOrder, staticGroups: staticGroups) }

    /// Loads the model behind `source`, draws the calibration windows and its tokenizer.
    func calibrationModel(input: String, source: QuantizationSource) throws -> (LlamaModel, CalibrationWindows) {
        let ckpt = try Checkpoint(path: input)
        let model: LlamaModel, tokenizer: BPETokenizer
        if let gguf = ckpt.gguf {
            model = try LlamaLoader.load(gguf, weights: .native)
            tokenizer = try BPETokenizer(gguf: gguf)
        } else {
            model = try LlamaLoader.load(source: source)
            tokenizer = try BPETokenizer(source: source)
        }
        let text = try readText(calibration)
        let tokens = tokenizer.encode(text, addBOS: false, parseSpecial: false)
        let windows = try CalibrationWindows(tokens: tokens, count: nsamples, length: seqlen, seed: seed,
                                             bos: tokenizer.addBOS ? tokenizer.bosID : nil)
        return (model, windows)
    }

    /// `calibration 128×512 tokens (int8 forward): forward … s, …, peak RSS …, peak anonymous …`.
    func timingLine(_ windows: CalibrationWindows, _ timings: SequentialTimings, anonymousPeak: Int?) -> String {
        String(format: "calibration %d×%d tokens (%@ forward): forward %.1f s, Hessians %.1f s, solver %.1f s, total %.1f s, ",
               windows.windows.count, windows.length, calibrationForward.rawValue, timings.forward, timings.hessian,
               timings.solver, timings.total)
            + "peak RSS \(ResidentMemory.peak().map(formatBytes) ?? "?") (anonymous \(anonymousPeak.map(formatBytes) ?? "?"))"
    }

    /// GPTQ for every block linear whose planned GGUF type GPTQ can target (Q4_0, Q5_0,
    /// Q8_0, Q4_K); the others are encoded by their type's own quantizer but still feed
    /// their quantized outputs forward. Returns where each tensor's encoded bytes were parked
    /// in `spill` (at once, so memory stays flat in the model's depth), by tensor name.
    func quantizeGGUFLayers(input: String, source: QuantizationSource,
                            plan: [(tensor: SourceTensor, choice: QuantRecipe.Choice)],
                            importance: [String: [Float]], spill: SpillFile, quiet: Bool) throws -> [String: SpillFile.Slice] {
        let (model, windows) = try calibrationModel(input: input, source: source)
        let types = Dictionary(plan.map { ($0.tensor.name, $0.choice.type) }, uniquingKeysWith: { a, _ in a })
        var bytesByName: [String: SpillFile.Slice] = [:]
        var log: [(String, String, Double)] = []
        let memory = AnonymousMemorySampler()
        let runner = SequentialQuantizer(model: model, windows: windows)
        runner.forward = calibrationForward
        let total = model.blocks.count * 7
        let progress = Progress("gptq \(windows.windows.count)×\(windows.length) tokens", total: total, quiet: quiet)
        runner.onLayer = { _, name, _ in progress.advance(note: name + (log.last.map { String(format: " %.3f×RTN", $0.2) } ?? "")) }
        let timings = try runner.run { job in
            guard let type = types[job.name] else { return LayerOutcome(weights: job.weights) }
            if let grid = GGUFBlockGPTQGrid(type: type), job.columns % type.blockSize == 0 {
                let r = try GPTQ.quantize(weights: job.weights, rows: job.rows, columns: job.columns, hessian: job.hessian,
                                          grid: grid, options: options)
                var bytes: [UInt8] = []
                bytes.reserveCapacity(job.rows * (type.byteCount(elements: job.columns) ?? 0))
                r.weights.withUnsafeBufferPointer { w in
                    for row in 0..<job.rows {
                        let params = r.groupParameters.map { $0[row] }
                        bytes += grid.encode(row: w.baseAddress! + row * job.columns, columns: job.columns, parameters: params)
                    }
                }
                let ratio = GPTQ.errorRatioToRoundToNearest(weights: job.weights, quantized: r.weights, rows: job.rows,
                                                            columns: job.columns, hessian: job.hessian, grid: grid)
                log.append((job.name, type.rawValue, ratio))
                bytesByName[job.name] = try spill.append(bytes)
                return LayerOutcome(weights: r.weights, keep: ReleasedLinear(name: job.name, outFeatures: job.rows, inFeatures: job.columns))
            }
            // Not a GPTQ target: the type's own encoder, its decoded weights fed forward.
            guard Codecs.canQuantize(type), type.isQuantized else { return LayerOutcome(weights: job.weights) }
            let (bytes, back) = try Self.encodeOwnType(type, job.weights, columns: job.columns, importance: importance[job.name])
            bytesByName[job.name] = try spill.append(bytes)
            log.append((job.name, type.rawValue + " (rtn)", 1))
            // The bytes are the output; the model is not run afterwards, so hold them once.
            let keep = ReleasedLinear(name: job.name, outFeatures: job.rows, inFeatures: job.columns)
            return LayerOutcome(weights: back, keep: keep)
        }
        if !quiet {
            for (name, type, ratio) in log { FileHandle.standardError.write(Data(String(format: "  %-28@ %-10@ ‖ΔWX‖² GPTQ/RTN %.3f\n", name, type, ratio).utf8)) }
            let gptqRatios = log.filter { !$0.1.hasSuffix("(rtn)") }.map(\.2)
            if !gptqRatios.isEmpty {
                FileHandle.standardError.write(Data(String(format: "GPTQ on %d layers: mean ‖ΔWX‖² ratio to RTN %.3f, worst %.3f\n",
                                                           gptqRatios.count, gptqRatios.reduce(0, +) / Double(gptqRatios.count),
                                                           gptqRatios.max() ?? 0).utf8))
            }
        }
        FileHandle.standardError.write(Data((timingLine(windows, timings, anonymousPeak: memory.stop()) + "\n").utf8))
        return bytesByName
    }

    /// AWQ for a GGUF mix: per block, scales searched with each consumer judged by its planned
    /// type's own encode–decode and folded into the norms (and up → down); then every block
    /// linear is encoded by its type's own encoder (importance divided by the squared scales,
    /// since the layer's inputs shrank by them). Returns where the encoded bytes were parked in
    /// `spill`, by tensor name, and the rescaled norms, which replace the source's.
    func awqGGUFLayers(input: String, source: QuantizationSource,
                       plan: [(tensor: SourceTensor, choice: QuantRecipe.Choice)], importance: [String: [Float]],
                       spill: SpillFile, quiet: Bool) throws -> (bytes: [String: SpillFile.Slice], norms: [String: [Float]]) {
        let (model, windows) = try calibrationModel(input: input, source: source)
        let types = Dictionary(plan.map { ($0.tensor.name, $0.choice.type) }, uniquingKeysWith: { a, _ in a })
        let memory = AnonymousMemorySampler()
        let runner = SequentialQuantizer(model: model, windows: windows)
        runner.forward = calibrationForward
        var folds: [AWQFold] = [], scales: [Int: [String: [Float]]] = [:]
        runner.prepareBlock = { l, hessians in
            let (scaled, done) = try model.awqScaleBlock(l, hessians: hessians, include: { types[$0].map(Codecs.canQuantize) ?? false }) {
                name, w, _, columns in
                guard let type = types[name], type.isQuantized else { return w }
                return try Self.encodeOwnType(type, w, columns: columns, importance: nil).decoded
            }
            folds += done
            scales[l] = scaled
            return scaled
        }
        let progress = Progress("awq \(windows.windows.count)×\(windows.length) tokens", total: model.blocks.count * 7, quiet: quiet)
        runner.onLayer = { _, name, _ in progress.advance(note: name) }
        var bytesByName: [String: SpillFile.Slice] = [:]
        let timings = try runner.run { job in
            guard let type = types[job.name], Codecs.canQuantize(type) else { return LayerOutcome(weights: job.weights) }
            var weighting = importance[job.name]
            if let w = weighting, let s = scales[job.layer]?[SequentialQuantizer.inputKind(of: job.name)], s.count == w.count {
                weighting = zip(w, s).map { $0 / ($1 * $1) }
            }
            let (bytes, decoded) = try Self.encodeOwnType(type, job.weights, columns: job.columns, importance: weighting)
            bytesByName[job.name] = try spill.append(bytes)
            // The bytes are the output; the model is not run afterwards, so hold them once.
            let keep = ReleasedLinear(name: job.name, outFeatures: job.rows, inFeatures: job.columns)
            return LayerOutcome(weights: decoded, keep: keep)
        }
        Progress.log(Self.foldSummary(folds), quiet: quiet)
        FileHandle.standardError.write(Data((timingLine(windows, timings, anonymousPeak: memory.stop()) + "\n").utf8))
        return (bytesByName, model.normTensors)
    }

    /// SmoothQuant for a GGUF mix: the whole model in f32, input statistics over the
    /// calibration windows, factors folded at every fold point (α given, or searched per
    /// block and point on the simulated dynamic W8A8 error), then every block linear encoded
    /// by its type's own encoder. Returns where the encoded bytes were parked in `spill` and
    /// the rescaled norms.
    func smoothQuantGGUFLayers(input: String, source: QuantizationSource,
                               plan: [(tensor: SourceTensor, choice: QuantRecipe.Choice)], spill: SpillFile, quiet: Bool) throws
        -> (bytes: [String: SpillFile.Slice], norms: [String: [Float]]) {
        let (model, windows) = try calibrationModel(input: input, source: source)
        for name in model.linearNames {
            guard let layer = model.linear(named: name), let dense = DenseLinear(decoding: layer) else { throw FoldError.notDense(layer: name) }
            model.replaceLinear(named: name, with: dense)
        }
        let start = Date()
        let fixed = Float(alpha)  // nil: "auto"
        let choices = try model.smoothActivations(over: windows.windows, alpha: fixed, dynamic: true)
        Progress.log("SmoothQuant " + (fixed.map { "α = \($0) folded into \(model.blocks.count) blocks" } ?? SmoothQuantChoice.summary(choices)),
                     quiet: quiet)
        var bytes: [String: SpillFile.Slice] = [:]
        for (t, choice) in plan {
            guard let w = model.denseWeights(named: t.name), let layer = model.linear(named: t.name) else { continue }
            guard Codecs.canQuantize(choice.type) else { throw QuantizeError.unsupportedTarget(type: choice.type.rawValue) }
            bytes[t.name] = try spill.append(Codecs.quantize(choice.type, w, rowLength: layer.inFeatures, importance: nil))
        }
        Progress.log(String(format: "SmoothQuant on %d×%d calibration tokens: %.1f s", windows.windows.count, windows.length,
                            Date().timeIntervalSince(start)), quiet: quiet)
        return (bytes, model.normTensors)
    }

    /// `w` (rows of `columns`) encoded by `type`'s own encoder, and the weights its bytes decode to.
    static func encodeOwnType(_ type: DType, _ w: [Float], columns: Int, importance: [Float]?) throws -> (bytes: [UInt8], decoded: [Float]) {
        let bytes = try Codecs.quantize(type, w, rowLength: columns, importance: importance)
        return (bytes, try bytes.withUnsafeBytes { try Codecs.dequantize(type, bytes: $0, count: w.count) })
    }

    /// `AWQ: 90 fold points, mean α 0.42 (attentionInput 0.51, …), output error 0.61× unscaled`.
    static func foldSummary(_ folds: [AWQFold]) -> String {
        guard !folds.isEmpty else { return "AWQ: no fold point had all its layers quantized" }
        var parts: [String] = []
        for point in FoldPoint.allCases {
            let a = folds.filter { $0.point == point }.map(\.alpha)
            if !a.isEmpty { parts.append(String(format: "%@ %.2f", point.rawValue, a.reduce(0, +) / Float(a.count))) }
        }
        let ratio = folds.reduce(0) { $0 + $1.error } / max(folds.reduce(0) { $0 + $1.unscaledError }, .leastNormalMagnitude)
        return String(format: "AWQ: %d fold points, mean α by point: ", folds.count) + parts.joined(separator: ", ")
            + String(format: "; searched output error %.3f× unscaled", ratio)
    }

    /// GPTQ or AWQ onto a toolkit integer scheme, written as a Hugging Face GPTQ or AWQ folder
    /// (AWQ's scales folded into the norms it writes).
    func writeHuggingFaceFolder(input: String, output: String, scheme text: String, format: String?,
                                allowRequantize: Bool, quiet: Bool) throws {
        let scheme = try QuantScheme(parsing: text)
        let label = method == .awq ? "AWQ" : "GPTQ"
        guard var grid = AffineGPTQGrid(scheme), GroupQuantizedMatrix.supportedBits.contains(grid.grid.bits) else {
            throw ValidationError("--scheme \(text): \(label) folders take int2/3/4/8 weights per channel or per group (e.g. int4-asym-g128)")
        }
        let formatName = format ?? (method == .awq ? "awq" : "gptq")
        guard let hfFormat = HFQuantizedFormat(rawValue: formatName), method == .awq || hfFormat != .awq else {
            throw ValidationError("--format '\(formatName)': expected gptq or gptq_v2" + (method == .awq ? " or awq" : " (awq folders: --method awq)"))
        }
        grid.scaleType = .f16  // checkpoints store f16 scales
        if hfFormat == .gptq { grid.minimumZeroPoint = 1 }
        var source = try Quantize.openSource(input)
        if !allowRequantize, let q = source.tensors.first(where: { $0.type.isQuantized && $0.shape.count >= 2 }) {
            throw QuantizeError.alreadyQuantized(path: source.path, tensor: q.name, type: q.type.rawValue)
        }
        let wanted = Set(HFQuantizedWriter.quantizableLayers(of: source))
        let writer = HFQuantizedWriter(format: hfFormat)
        for t in source.tensors where wanted.contains(t.name) && t.shape.count == 2 {
            let g = grid.groupSize > 0 ? grid.groupSize : t.shape[1]
            try writer.checkShape(layer: t.name, rows: t.shape[0], columns: t.shape[1], bits: grid.grid.bits, groupSize: g)
        }
        let (model, windows) = try calibrationModel(input: input, source: source)
        let memory = AnonymousMemorySampler()
        let runner = SequentialQuantizer(model: model, windows: windows)
        runner.forward = calibrationForward
        var folds: [AWQFold] = []
        if method == .awq {
            runner.prepareBlock = { l, hessians in
                let (scaled, done) = try model.awqScaleBlock(l, hessians: hessians, include: wanted.contains) { _, w, rows, columns in
                    GPTQ.roundToNearest(weights: w, rows: rows, columns: columns, grid: grid)
                }
                folds += done
                return scaled
            }
        }
        let progress = Progress("\(method.rawValue) \(windows.windows.count)×\(windows.length) tokens", total: model.blocks.count * 7, quiet: quiet)
        // Each finished layer is packed and parked on disk at once: memory stays flat in depth.
        let folder = try writer.stream(source: source, to: output)
        var layerCount = 0
        var ratios: [Double] = []
        runner.onLayer = { _, name, _ in progress.advance(note: name + (ratios.last.map { String(format: " %.3f×RTN", $0) } ?? "")) }
        let timings = try runner.run { job in
            guard wanted.contains(job.name) else { return LayerOutcome(weights: job.weights) }
            let r = method == .awq
                ? AWQ.clippedRoundToNearest(weights: job.weights, rows: job.rows, columns: job.columns, hessian: job.hessian, grid: grid)
                : try GPTQ.quantize(weights: job.weights, rows: job.rows, columns: job.columns, hessian: job.hessian,
                                    grid: grid, options: options)
            ratios.append(GPTQ.errorRatioToRoundToNearest(weights: job.weights, quantized: r.weights, rows: job.rows,
                                                          columns: job.columns, hessian: job.hessian, grid: grid))
            try folder.add(layer: job.name, GroupQuantizedMatrix(r, grid: grid, rows: job.rows, columns: job.columns))
            layerCount += 1
            return LayerOutcome(weights: r.weights, keep: ReleasedLinear(name: job.name, outFeatures: job.rows, inFeatures: job.columns))
        }
        if method == .awq {
            source = try source.replacing(model.normTensors)
            print(Self.foldSummary(folds))
        }
        let summary = try folder.finish(replacing: source)
        print(String(format: "%@: %@ %@ (%@), %d layers, ‖ΔWX‖² vs RTN: mean %.3f, worst %.3f", output, label, scheme.description,
                     hfFormat.rawValue, layerCount, ratios.reduce(0, +) / Double(max(ratios.count, 1)), ratios.max() ?? 0))
        print(timingLine(windows, timings, anonymousPeak: memory.stop()))
        for note in summary.notes { print("note: \(note)") }
    }
}
