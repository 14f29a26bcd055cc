import ArgumentParser
import Evaluation
import Formats
import Foundation
import Quantization

/// `swiftquant quantize`: a GGUF (or Hugging Face folder) in, a quantized GGUF out.
struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Quantize a model to a GGUF that llama.cpp loads, with llama-quantize's type mixes.",
        discussion: """
        Types: \(QuantMix.allCases.map(\.rawValue).joined(separator: ", ")).

        Examples:
          swiftquant quantize model-f32.gguf model-Q4_K_M.gguf --type Q4_K_M
          swiftquant quantize SmolLM2.Q4_1.gguf smol-Q8_0.gguf --type Q8_0 --allow-requantize
          swiftquant quantize in.gguf out.gguf --type Q4_K_M --imatrix imatrix.gguf --tensor-type 'ffn_down=Q6_K'
          swiftquant quantize in.gguf out.gguf --type Q3_K_M --dry-run
          swiftquant quantize model-f32.gguf model-gptq-Q4_0.gguf --type Q4_0 --method gptq --nsamples 128 --seqlen 512
          swiftquant quantize model-f32.gguf smol-gptq-int4 --method gptq --scheme int4-asym-g128 --act-order
          swiftquant quantize model-f32.gguf smol-awq-int4 --method awq --scheme int4-asym-g128   # AWQ GEMM folder
          swiftquant quantize model-f32.gguf smol-awq-Q4_0.gguf --method awq --type Q4_0
          swiftquant quantize model-f32.gguf smol-sq-Q8_0.gguf --method smoothquant --alpha auto --type Q8_0
        """)

    @Argument(help: "Input: GGUF file or Hugging Face folder.") var input: String
    @Argument(help: "Output GGUF file.") var output: String?
    @Option(name: .long, help: "Quantization type / mix (e.g. Q4_K_M).") var type: String?
    @Option(name: .long, help: "With --method gptq|awq: a toolkit integer scheme (e.g. int4-asym-g128); OUT is then a Hugging Face folder.")
    var scheme: String?
    @Option(name: .long, help: "Folder format for --scheme: gptq (v1, transformers' default; GPTQ's default), gptq_v2, or awq (GEMM; AWQ's default).")
    var format: String?
    @OptionGroup var gptq: GPTQOptionsGroup
    @Option(name: .long, help: "Importance matrix (GGUF or .dat, from `swiftquant imatrix` or llama-imatrix).")
    var imatrix: String?
    @Option(name: .customLong("tensor-type"), parsing: .singleValue, help: "Override: PATTERN=TYPE (regex on tensor names); repeatable.")
    var tensorTypes: [String] = []
    @Flag(name: .customLong("allow-requantize"), help: "Allow quantized inputs.") var allowRequantize = false
    @Flag(name: .customLong("dry-run"), help: "Print each tensor's chosen type and stop.") var dryRun = false
    @Flag(name: .long, help: "Print the per-tensor report as JSON on stdout.") var json = false
    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        if gptq.method == .llmInt8 {
            if type != nil { throw ValidationError("--method llm-int8 writes a bitsandbytes 8-bit Hugging Face folder, not a GGUF: drop --type") }
            if let scheme, scheme != "int8-sym-channel" { throw ValidationError("--method llm-int8 stores int8-sym-channel, not --scheme \(scheme)") }
            if let format, format != HFQuantizedFormat.bitsAndBytes.rawValue { throw ValidationError("--method llm-int8 writes --format bitsandbytes") }
            return
        }
        if type == nil && scheme == nil { throw ValidationError("give --type (a GGUF mix) or, with --method gptq, --scheme") }
        if type != nil && scheme != nil { throw ValidationError("give either --type (GGUF output) or --scheme (Hugging Face GPTQ folder), not both") }
        if scheme != nil && ![.gptq, .awq].contains(gptq.method) {
            throw ValidationError("--scheme writes a GPTQ or AWQ folder and needs --method gptq or awq (for round-to-nearest folders use export-hf)")
        }
    }

    func run() throws {
        compute.apply()
        if gptq.method == .llmInt8 {
            guard let output else { throw ValidationError("give an output folder") }
            let source = try Self.openSource(input)
            if !allowRequantize, let q = source.tensors.first(where: { $0.type.isQuantized && $0.shape.count >= 2 }) {
                throw QuantizeError.alreadyQuantized(path: source.path, tensor: q.name, type: q.type.rawValue)
            }
            return try ExportHF.export(input: input, output: output, format: .bitsAndBytes, scheme: ExportHF.Scheme("int8-sym-channel"),
                                       floatType: .f16, outlierThreshold: gptq.outlierThreshold, quiet: compute.quiet)
        }
        if let scheme {
            guard let output else { throw ValidationError("give an output folder") }
            return try gptq.writeHuggingFaceFolder(input: input, output: output, scheme: scheme, format: format,
                                                 allowRequantize: allowRequantize, quiet: compute.quiet)
        }
        let type = self.type!
        guard let mix = QuantMix(name: type) else { throw RecipeError.unknownMix(type) }
        let overrides = try tensorTypes.map(QuantRecipe.Override.init(parsing:))
        var source = try Self.openSource(input)
        let arch = source["general.architecture"]?.stringValue ?? ""
        let layers = source["\(arch).block_count"]?.intValue ?? 0
        let heads = source["\(arch).attention.head_count"]?.intValue ?? 1
        let kvHeads = source["\(arch).attention.head_count_kv"]?.intValue ?? heads
        let recipe = QuantRecipe(mix: mix, overrides: overrides,
                                 tiedEmbeddings: !source.tensors.contains { $0.name == "output.weight" },
                                 layerCount: layers, gqa: kvHeads > 0 ? heads / kvHeads : 1)
        var importance: [String: [Float]] = [:]
        if let imatrix { importance = try ImportanceMatrix(path: imatrix).importances }
        var quantizer = GGUFQuantizer(recipe: recipe, importance: importance, allowRequantize: allowRequantize)

        if dryRun {
            let plan = quantizer.plan(source)
            print(renderTable(["tensor", "shape", "from", "to", "why"], plan.map {
                [$0.tensor.name, $0.tensor.shape.map(String.init).joined(separator: "×"), $0.tensor.type.rawValue,
                 $0.choice.type.rawValue, $0.choice.reason]
            }))
            return
        }
        guard let output else { throw ValidationError("give an output path (or --dry-run)") }
        let start = Date()
        // Calibrated methods refuse a quantized input before calibrating, not after.
        if gptq.method != .rtn, !allowRequantize,
           let q = quantizer.plan(source).first(where: { $0.tensor.type.isQuantized && $0.tensor.shape.count >= 2 }) {
            throw QuantizeError.alreadyQuantized(path: source.path, tensor: q.tensor.name, type: q.tensor.type.rawValue)
        }
        // Calibrated methods park each finished tensor's bytes beside the output until it is written.
        let spill = gptq.method == .rtn ? nil : try SpillFile(folder: Self.folder(of: output))
        if gptq.method == .gptq, let spill {
            quantizer.precomputed = try gptq.quantizeGGUFLayers(input: input, source: source, plan: quantizer.plan(source),
                                                                importance: importance, spill: spill, quiet: compute.quiet)
        } else if gptq.method == .smoothquant, let spill {
            if imatrix != nil { throw ValidationError("--method smoothquant does not take --imatrix (the importance of rescaled inputs would be wrong)") }
            let (bytes, norms) = try gptq.smoothQuantGGUFLayers(input: input, source: source, plan: quantizer.plan(source),
                                                                spill: spill, quiet: compute.quiet)
            quantizer.precomputed = bytes
            quantizer.precomputedMatchSource = false
            source = try source.replacing(norms)
        } else if gptq.method == .awq, let spill {
            let (bytes, norms) = try gptq.awqGGUFLayers(input: input, source: source, plan: quantizer.plan(source),
                                                        importance: importance, spill: spill, quiet: compute.quiet)
            quantizer.precomputed = bytes
            quantizer.precomputedMatchSource = false
            source = try source.replacing(norms)
        }
        let progress = Progress("quantize", total: source.tensors.count, quiet: compute.quiet)
        let reports = try quantizer.quantize(source, to: output) { _, _, name in progress.advance(note: name) }
        let seconds = Date().timeIntervalSince(start)
        if json { return try printJSON(reports) }
        var byType: [String: (n: Int, bytes: Int)] = [:]
        for r in reports { byType[r.to, default: (0, 0)].n += 1; byType[r.to, default: (0, 0)].bytes += r.bytes }
        let params = source.tensors.reduce(0) { $0 + $1.elementCount }
        let total = reports.reduce(0) { $0 + $1.bytes }
        print("\(output): \(mix.rawValue), \(formatBytes(total)) of tensors, "
              + String(format: "%.3f bits per weight, %.1f s", Double(total * 8) / Double(max(params, 1)), seconds))
        print(renderTable(["type", "tensors", "bytes"], byType.sorted { $0.value.bytes > $1.value.bytes }.map {
            [$0.key, "\($0.value.n)", formatBytes($0.value.bytes)]
        }, rightAligned: [1, 2]))
        if imatrix != nil { print("imatrix: \(importance.count) tensors weighted by importance") }
    }

    /// The folder a file path lies in.
    static func folder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Opens a GGUF file, or a Hugging Face folder mapped to GGUF names.
    static func openSource(_ path: String) throws -> QuantizationSource {
        let ckpt = try Checkpoint(path: path)
        if let gguf = ckpt.gguf { return QuantizationSource(gguf: gguf) }
        return try QuantizationSource(huggingFace: path)
    }
}
