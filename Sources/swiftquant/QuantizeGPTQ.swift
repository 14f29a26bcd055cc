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
    /// AWQ: activation-aware scales folded into the norms, then clipped round-to-nearest
    /// (`fakequant` only for now).
    case awq
}

extension CalibrationForward: ExpressibleByArgument {}

/// `quantize`'s options for calibrated methods.
struct GPTQOptionsGroup: ParsableArguments {
    @Option(name: .long, help: "rtn (default) or gptq.") var method: QuantizeMethod = .rtn
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

    func validate() throws {
        guard nsamples >= 1, seqlen >= 8 else { throw ValidationError("--nsamples must be ≥ 1 and --seqlen ≥ 8") }
        guard damp > 0, damp.isFinite else { throw ValidationError("--damp must be positive") }
        if method == .awq { throw ValidationError("--method awq is available in `swiftquant fakequant` (file export of AWQ-scaled models is not built yet)") }
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
    /// their quantized outputs forward. Returns the encoded bytes by tensor name.
    func quantizeGGUFLayers(input: String, source: QuantizationSource,
                            plan: [(tensor: SourceTensor, choice: QuantRecipe.Choice)],
                            importance: [String: [Float]], quiet: Bool) throws -> [String: [UInt8]] {
        let (model, windows) = try calibrationModel(input: input, source: source)
        let types = Dictionary(plan.map { ($0.tensor.name, $0.choice.type) }, uniquingKeysWith: { a, _ in a })
        var bytesByName: [String: [UInt8]] = [:]
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
                bytesByName[job.name] = bytes
                return LayerOutcome(weights: r.weights, keep: try QuantizedLinear(type: type, outFeatures: job.rows, inFeatures: job.columns, bytes: bytes))
            }
            // Not a GPTQ target: the type's own encoder, its decoded weights fed forward.
            guard Codecs.canQuantize(type), type.isQuantized else { return LayerOutcome(weights: job.weights) }
            let bytes = try Codecs.quantize(type, job.weights, rowLength: job.columns, importance: importance[job.name])
            bytesByName[job.name] = bytes
            let back = try bytes.withUnsafeBytes { try Codecs.dequantize(type, bytes: $0, count: job.weights.count) }
            log.append((job.name, type.rawValue + " (rtn)", 1))
            let keep: (any Linear)? = QuantizedLinear.hasKernel(type)
                ? try QuantizedLinear(type: type, outFeatures: job.rows, inFeatures: job.columns, bytes: bytes) : nil
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

    /// GPTQ onto a toolkit integer scheme, written as a Hugging Face GPTQ folder.
    func writeHuggingFaceGPTQ(input: String, output: String, scheme text: String, format: String,
                              allowRequantize: Bool, quiet: Bool) throws {
        let scheme = try QuantScheme(parsing: text)
        guard var grid = AffineGPTQGrid(scheme), GroupQuantizedMatrix.supportedBits.contains(grid.grid.bits) else {
            throw ValidationError("--scheme \(text): GPTQ folders take int2/3/4/8 weights per channel or per group (e.g. int4-asym-g128)")
        }
        guard let hfFormat = HFQuantizedFormat(rawValue: format), hfFormat != .awq else {
            throw ValidationError("--format '\(format)': expected gptq or gptq_v2")
        }
        grid.scaleType = .f16  // checkpoints store f16 scales
        if hfFormat == .gptq { grid.minimumZeroPoint = 1 }
        let source = try Quantize.openSource(input)
        if !allowRequantize, let q = source.tensors.first(where: { $0.type.isQuantized && $0.shape.count >= 2 }) {
            throw QuantizeError.alreadyQuantized(path: source.path, tensor: q.name, type: q.type.rawValue)
        }
        let wanted = Set(HFQuantizedWriter.quantizableLayers(of: source))
        let (model, windows) = try calibrationModel(input: input, source: source)
        let memory = AnonymousMemorySampler()
        let runner = SequentialQuantizer(model: model, windows: windows)
        runner.forward = calibrationForward
        let progress = Progress("gptq \(windows.windows.count)×\(windows.length) tokens", total: model.blocks.count * 7, quiet: quiet)
        var layers: [String: GroupQuantizedMatrix] = [:]
        var ratios: [Double] = []
        runner.onLayer = { _, name, _ in progress.advance(note: name + (ratios.last.map { String(format: " %.3f×RTN", $0) } ?? "")) }
        let timings = try runner.run { job in
            guard wanted.contains(job.name) else { return LayerOutcome(weights: job.weights) }
            let r = try GPTQ.quantize(weights: job.weights, rows: job.rows, columns: job.columns, hessian: job.hessian,
                                      grid: grid, options: options)
            ratios.append(GPTQ.errorRatioToRoundToNearest(weights: job.weights, quantized: r.weights, rows: job.rows,
                                                          columns: job.columns, hessian: job.hessian, grid: grid))
            layers[job.name] = try GroupQuantizedMatrix(r, grid: grid, rows: job.rows, columns: job.columns)
            return LayerOutcome(weights: r.weights, keep: ReleasedLinear(name: job.name, outFeatures: job.rows, inFeatures: job.columns))
        }
        let summary = try HFQuantizedWriter(format: hfFormat).write(source: source, layers: layers, to: output)
        print(String(format: "%@: GPTQ %@ (%@), %d layers, ‖ΔWX‖² vs RTN: mean %.3f, worst %.3f", output, scheme.description,
                     hfFormat.rawValue, layers.count, ratios.reduce(0, +) / Double(max(ratios.count, 1)), ratios.max() ?? 0))
        print(timingLine(windows, timings, anonymousPeak: memory.stop()))
        for note in summary.notes { print("note: \(note)") }
    }
}
