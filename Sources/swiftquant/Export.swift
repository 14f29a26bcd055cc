import ArgumentParser
import Evaluation
import Formats
import Foundation
import Models
import Quantization
import Tensors

/// `swiftquant export-hf`: a model in, a GPTQ, AWQ or bitsandbytes 8-bit Hugging Face folder
/// out, with round-to-nearest quantization of the block projections.
struct ExportHF: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export-hf",
        abstract: "Write a model as a GPTQ, AWQ or bitsandbytes 8-bit (LLM.int8()) Hugging Face folder (round-to-nearest).",
        discussion: """
        Every block projection (q/k/v/o, gate/up/down) is quantized with round-to-nearest onto the
        scheme's grid; embeddings, norms and an untied head stay in --float-type. The folder loads in
        transformers/optimum/GPTQModel/vLLM (GPTQ), AutoAWQ/transformers/vLLM (AWQ), and in swiftquant
        itself (`perplexity`, `generate`). A quantized input (e.g. a Q4_1 GGUF) is decoded to f32 first.

        Scheme: int<BITS>-<sym|asym>-<g<GROUP>|channel>, e.g. int4-asym-g128,
        int8-sym-channel. GPTQ takes 2, 3, 4 or 8 bits, AWQ 4. With --format gptq (checkpoint format v1, which
        stores zero − 1) asymmetric zero points are kept ≥ 1. --format bitsandbytes writes LLM.int8()
        (transformers' load_in_8bit layout: int8 rows with f32 absmax scales, outlier columns at
        run time above --outlier-threshold); its scheme is int8-sym-channel.

        Examples:
          swiftquant export-hf SmolLM2-135M-Instruct.Q4_1.gguf smol-gptq --format gptq --scheme int4-asym-g128
          swiftquant export-hf hf-folder smol-awq --format awq --scheme int4-asym-g64 --dump-reference ref.safetensors
          swiftquant export-hf in.gguf out --format gptq --scheme int3-asym-g64 --keep-float 'blk\\.(0|29)\\.'
          swiftquant export-hf model-f32.gguf smol-int8 --format bitsandbytes
        """)

    @Argument(help: "Input: GGUF file or Hugging Face folder.") var input: String
    @Argument(help: "Output folder.") var output: String
    @Option(name: .long, help: "gptq, gptq_v2, awq or bitsandbytes.") var format: String = "gptq"
    @Option(name: .long, help: "int<BITS>-<sym|asym>-g<GROUP> (default int4-asym-g128; bitsandbytes: int8-sym-channel).")
    var scheme: String?
    @Option(name: .customLong("outlier-threshold"), help: "bitsandbytes: llm_int8_threshold written to the config.")
    var outlierThreshold: Float = 6
    @Option(name: .customLong("float-type"), help: "Type of the tensors not quantized: f16, bf16 or f32.")
    var floatType: String = "f16"
    @Option(name: .customLong("dump-reference"),
            help: "Also write the dequantized weights (f32, Hugging Face names) to this safetensors file.")
    var dumpReference: String?
    @Option(name: .customLong("keep-float"), parsing: .singleValue,
            help: "Leave projections whose GGUF name matches this regex unquantized (e.g. 'blk\\.0\\.'); repeatable.")
    var keepFloat: [String] = []
    @OptionGroup var compute: ComputeOptions

    /// A parsed `--scheme`.
    struct Scheme {
        var bits: Int, symmetric: Bool, groupSize: Int

        init(_ text: String) throws {
            let parsed: QuantScheme
            do { parsed = try QuantScheme(parsing: text) } catch { throw ValidationError("--scheme: \(error)") }
            guard case let .integer(b, sym) = parsed.codebook, parsed.activations == .none,
                  GroupQuantizedMatrix.supportedBits.contains(b) else {
                throw ValidationError("--scheme '\(text)': Hugging Face GPTQ/AWQ folders hold int2/3/4/8 weights, e.g. int4-asym-g128")
            }
            switch parsed.granularity {
            case .channel: groupSize = -1
            case .group(let g): groupSize = g
            case .tensor: throw ValidationError("--scheme '\(text)': per-tensor scales do not exist in GPTQ/AWQ folders; use -channel or -g<N>")
            }
            bits = b
            symmetric = sym
        }
    }

    func run() throws {
        compute.apply()
        guard let format = HFQuantizedFormat(rawValue: format) else {
            throw ValidationError("--format '\(self.format)': expected gptq, gptq_v2, awq or bitsandbytes")
        }
        let scheme = try Scheme(scheme ?? (format == .bitsAndBytes ? "int8-sym-channel" : "int4-asym-g128"))
        if format == .bitsAndBytes && (scheme.bits != 8 || !scheme.symmetric || scheme.groupSize != -1) {
            throw ValidationError("--format bitsandbytes stores int8-sym-channel (one absmax scale per row), not --scheme \(self.scheme ?? "")")
        }
        guard outlierThreshold.isFinite, outlierThreshold >= 0 else { throw ValidationError("--outlier-threshold must be ≥ 0") }
        let floats: [String: DType] = ["f16": .f16, "bf16": .bf16, "f32": .f32]
        guard let floatDType = floats[floatType.lowercased()] else {
            throw ValidationError("--float-type '\(floatType)': expected f16, bf16 or f32")
        }
        let keep = try keepFloat.map { pattern in
            do { return try NSRegularExpression(pattern: pattern) } catch {
                throw ValidationError("--keep-float '\(pattern)' is not a valid regular expression")
            }
        }
        try Self.export(input: input, output: output, format: format, scheme: scheme, floatType: floatDType, keep: keep,
                        outlierThreshold: outlierThreshold, dumpReference: dumpReference, quiet: compute.quiet)
    }

    /// Quantizes the block projections of `input` (except those matching `keep`) by
    /// round-to-nearest — bitsandbytes' vector-wise int8 rule for `.bitsAndBytes` — and
    /// writes the folder, printing a summary.
    static func export(input: String, output: String, format: HFQuantizedFormat, scheme: Scheme, floatType: DType,
                       keep: [NSRegularExpression] = [], outlierThreshold: Float = 6, dumpReference: String? = nil,
                       quiet: Bool) throws {
        let source = try Quantize.openSource(input)
        let projections = Set(HFQuantizedWriter.quantizableLayers(of: source).filter { name in
            !keep.contains { $0.firstMatch(in: name, range: NSRange(name.startIndex..., in: name)) != nil }
        })
        let start = Date()
        let progress = Progress("export-hf", total: projections.count, quiet: quiet)
        var layers: [String: GroupQuantizedMatrix] = [:]
        for t in source.tensors where projections.contains(t.name) {
            let w = try t.decode(), rows = t.shape[0], columns = t.shape[1]
            layers[t.name] = format == .bitsAndBytes
                ? try LLMInt8Linear.quantizedMatrix(weights: w, rows: rows, columns: columns)
                : try GroupQuantizedMatrix.roundToNearest(w, rows: rows, columns: columns, bits: scheme.bits,
                                                          groupSize: scheme.groupSize, symmetric: scheme.symmetric,
                                                          minimumZeroPoint: format == .gptq ? 1 : 0)
            progress.advance(note: t.name)
        }
        var writer = HFQuantizedWriter(format: format, floatType: floatType)
        writer.outlierThreshold = outlierThreshold
        let summary = try writer.write(source: source, layers: layers, to: output)
        if let dumpReference {
            try HFQuantizedWriter.writeDequantizedReference(source: source, layers: layers, format: format, to: dumpReference)
        }
        let c = summary.config
        print("\(output): \(format.rawValue), \(c.bits)-bit \(c.symmetric ? "sym" : "asym"), group size \(c.groupSize), "
              + (format == .bitsAndBytes ? String(format: "llm_int8_threshold %g, ", c.outlierThreshold) : "")
              + "\(layers.count) layers quantized, " + String(format: "%.1f s", Date().timeIntervalSince(start)))
        print("files: " + summary.files.joined(separator: ", "))
        for note in summary.notes { print("note: \(note)") }
    }
}
