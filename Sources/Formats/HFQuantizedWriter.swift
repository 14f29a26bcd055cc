// Writes a Llama-family model with group-quantized linear layers as a Hugging Face folder
// in GPTQ or AWQ layout: what transformers, optimum, GPTQModel, AutoAWQ and vLLM load.

import Foundation
import Quantization
import Tensors

/// Writes GPTQ / AWQ Hugging Face folders.
///
/// The input is a `QuantizationSource` (a GGUF file, or a Hugging Face folder seen through
/// llama.cpp's conventions) and the quantized layers, keyed by the source's GGUF tensor
/// names (`blk.3.attn_q.weight`) with rows in the source's order — the order a `LlamaModel`
/// loaded from it uses. The folder gets:
///
/// - `model.safetensors` (metadata `format: pt`): for each quantized linear, under its
///   Hugging Face module name (`model.layers.3.self_attn.q_proj`):
///   - GPTQ: `.qweight` I32 `[in·bits/32, out]`, `.qzeros` I32 `[groups, out·bits/32]`,
///     `.scales` F16 `[groups, out]`, `.g_idx` I32 `[in]` (see `HFQuantizedPacking`);
///   - AWQ: `.qweight` I32 `[in, out/8]`, `.qzeros` I32 `[groups, out/8]`,
///     `.scales` F16 `[groups, out]`;
///   no bias. Every other tensor (embeddings, norms, unquantized linears, an untied
///   `lm_head`) is written as `floatType` under its transformers name. Q and K rows are
///   put back in Hugging Face's order (the inverse of llama.cpp's RoPE permutation) for
///   the llama architecture.
/// - `config.json` with `quantization_config` (see `HFQuantizationConfig`); for a Hugging
///   Face source its own config with that added, for a GGUF source one built from the
///   metadata (`LlamaForCausalLM` / `Qwen2ForCausalLM`).
/// - GPTQ only: `quantize_config.json`, the same settings for AutoGPTQ-era loaders.
/// - The tokenizer: a Hugging Face source's files copied; for a GGUF source
///   `tokenizer.json` and `tokenizer_config.json` rebuilt from the `tokenizer.ggml.*`
///   metadata when it is a byte-level BPE tokenizer (see `HFTokenizerExport`); otherwise the
///   summary says why there is none.
///
/// Layers of the seven block projections that `layers` leaves out stay in floating point
/// and are listed in the config (`modules_to_not_convert` for AWQ; GPTQModel's `dynamic`
/// `"-:"` exclusions for GPTQ, which GPTQModel and vLLM honour). Embeddings and the output
/// head are never quantized. Each file is written to a temporary file and renamed into
/// place; the same inputs give byte-identical files.
public struct HFQuantizedWriter {
    /// The layout to write.
    public var format: HFQuantizedFormat
    /// Element type of the tensors that are not quantized (F16, BF16 or F32); also the
    /// config's `torch_dtype`. GPTQ and AWQ scales are F16 whatever this is.
    public var floatType: DType
    /// Written as `meta.quantizer` in GPTQ configs.
    public var quantizer: String
    /// bitsandbytes folders: the `llm_int8_threshold` written (LLM.int8()'s default 6).
    public var outlierThreshold: Float = 6

    /// A writer for `format`.
    public init(format: HFQuantizedFormat, floatType: DType = .f16, quantizer: String = "swiftquant") {
        self.format = format
        self.floatType = floatType
        self.quantizer = quantizer
    }

    /// What `write` produced.
    public struct Summary: Sendable, Equatable {
        /// The files written, by name within the folder.
        public var files: [String]
        /// The settings written as `quantization_config`.
        public var config: HFQuantizationConfig
        /// Things a user should know (no tokenizer written, modules left unquantized).
        public var notes: [String]
    }

    /// Writes the folder (created if missing) from layers all in memory: `stream(source:to:)`
    /// fed every layer, then finished.
    /// - Throws: `HFQuantizedError.cannotExport` when a layer does not fit the format (shape,
    ///   bits, grouping, a zero point the format cannot store, a name that is not a block
    ///   projection); `HFQuantizedError.invalidCheckpoint` for an unusable source;
    ///   `SafeTensorsError` when a file cannot be written.
    @discardableResult
    public func write(source: QuantizationSource, layers: [String: GroupQuantizedMatrix],
                      to folder: String) throws -> Summary {
        guard !layers.isEmpty else { throw HFQuantizedError.cannotExport(reason: "no quantized layers given") }
        let model = try HFExportModel(source: source)
        // Every check before the folder is touched; the stream then takes the checked facts.
        let names = layers.keys.sorted()
        let facts = try names.map { try Self.layerFacts(layers[$0]!, name: $0, model: model, format: format) }
        _ = try Self.sharedConfig(facts, format: format)
        let stream = try stream(source: source, to: folder)
        for (name, f) in zip(names, facts) { try stream.add(layer: name, layers[name]!, checked: f) }
        return try stream.finish()
    }

    /// Starts writing the folder (created if missing) layer by layer: each layer given to
    /// `Stream.add` is checked, packed and parked in a temporary file in the folder at once,
    /// so a quantizer finishing layers one at a time never holds the whole output in memory.
    /// - Throws: `HFQuantizedError.cannotExport` for an unsupported float type,
    ///   `HFQuantizedError.invalidCheckpoint` for an unusable source, `SafeTensorsError`
    ///   when the folder or its temporary file cannot be created.
    public func stream(source: QuantizationSource, to folder: String) throws -> Stream {
        guard [DType.f16, .bf16, .f32].contains(floatType) else {
            throw HFQuantizedError.cannotExport(reason: "non-quantized tensors can be F16, BF16 or F32, not \(floatType)")
        }
        let model = try HFExportModel(source: source)
        let existed = FileManager.default.fileExists(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        do {
            return Stream(writer: self, source: source, model: model, folder: folder, spill: try SpillFile(folder: folder),
                          createdFolder: !existed)
        } catch {
            if !existed { rmdir(folder) }
            throw error
        }
    }

    /// A folder being written layer by layer (see `HFQuantizedWriter.stream(source:to:)`);
    /// nothing is visible in the folder until `finish` writes each file atomically.
    public final class Stream {
        private let writer: HFQuantizedWriter
        private let source: QuantizationSource
        private let model: HFExportModel
        private let folder: String
        private var tensors: SafeTensorsWriter
        private var facts: [String: LayerFacts] = [:]
        private let createdFolder: Bool
        private var finished = false

        fileprivate init(writer: HFQuantizedWriter, source: QuantizationSource, model: HFExportModel, folder: String,
                         spill: SpillFile, createdFolder: Bool) {
            self.createdFolder = createdFolder
            self.writer = writer
            self.source = source
            self.model = model
            self.folder = folder
            tensors = SafeTensorsWriter(metadata: ["format": "pt"], order: .reference, spill: spill)
        }

        deinit {
            // Abandoned before `finish`: a folder made for it goes again (rmdir removes only an empty one).
            if !finished && createdFolder { rmdir(folder) }
        }

        /// Checks, packs and parks one quantized block projection (`blk.3.attn_q.weight`,
        /// rows in the source's order).
        /// - Throws: `HFQuantizedError.cannotExport` when the layer does not fit the format or
        ///   disagrees with the layers before it (bit width, group size); `SafeTensorsError`
        ///   when the temporary file cannot be written.
        public func add(layer name: String, _ m: GroupQuantizedMatrix) throws {
            try add(layer: name, m, checked: nil)
        }

        /// `add(layer:_:)`, with the layer's facts already checked (nil: check them here).
        fileprivate func add(layer name: String, _ m: GroupQuantizedMatrix, checked: LayerFacts?) throws {
            guard !finished else { throw HFQuantizedError.cannotExport(reason: "the folder \(folder) is already written") }
            guard facts[name] == nil else { throw HFQuantizedError.cannotExport(reason: "layer \(name) is given twice") }
            let f = try checked ?? HFQuantizedWriter.layerFacts(m, name: name, model: model, format: writer.format)
            _ = try HFQuantizedWriter.sharedConfig(Array(facts.values) + [f], format: writer.format)
            try writer.add(model.toHF(m, tensor: name), module: HFLlamaNames.module(gguf: name)!, to: &tensors)
            facts[name] = f
        }

        /// Adds every tensor that was not given as a layer (from `replacement` if given: the
        /// same tensors with some values changed, e.g. AWQ's folded norms), then writes
        /// `model.safetensors`, the configs and the tokenizer.
        /// - Throws: `HFQuantizedError`, `SafeTensorsError`.
        @discardableResult
        public func finish(replacing replacement: QuantizationSource? = nil) throws -> Summary {
            guard !finished else { throw HFQuantizedError.cannotExport(reason: "the folder \(folder) is already written") }
            let format = writer.format
            let source = replacement ?? self.source
            var config = try HFQuantizedWriter.sharedConfig(Array(facts.values), format: format)
            config.outlierThreshold = writer.outlierThreshold
            guard !facts.isEmpty else { throw HFQuantizedError.cannotExport(reason: "no quantized layers given") }
            var notes: [String] = []
            let linearNames = model.blockLinearNames
            config.notQuantized = linearNames.filter { facts[$0] == nil }.compactMap(HFLlamaNames.module(gguf:))
            if !config.notQuantized.isEmpty {
                notes.append("\(config.notQuantized.count) of \(linearNames.count) block projections are not quantized "
                    + "(listed in quantization_config.\(format.notQuantizedKey))")
                if format == .gptq || format == .gptqV2 {
                    // transformers/optimum read only modules_in_block_to_quantize, one list for every block.
                    let kinds = HFLlamaNames.linears.filter { kind in linearNames.contains { $0.hasSuffix(".\(kind).weight") } }
                    let perBlock = (0..<model.layerCount).map { l in kinds.filter { facts["blk.\(l).\($0).weight"] != nil } }
                    if Set(perBlock.map { $0.joined(separator: ",") }).count == 1 {
                        config.modulesInBlockToQuantize = perBlock[0].compactMap { HFLlamaNames.module(gguf: "blk.0.\($0).weight") }
                            .map { String($0.dropFirst("model.layers.0.".count)) }
                    } else {
                        notes.append("the unquantized projections differ between blocks: GPTQModel and vLLM honour "
                            + "quantization_config.dynamic, transformers/optimum do not")
                    }
                }
            }
            guard source.tensors.map(\.name) == self.source.tensors.map(\.name) else {
                throw HFQuantizedError.invalidCheckpoint(path: source.path, reason: "the replacement source has other tensors than the original")
            }
            for t in source.tensors where facts[t.name] == nil {
                guard let hf = HFLlamaNames.hf(gguf: t.name) else {
                    throw HFQuantizedError.invalidCheckpoint(path: source.path, reason: "tensor \(t.name) has no Hugging Face name")
                }
                var values = try t.decode()
                guard values.count == t.elementCount else {
                    throw HFQuantizedError.invalidCheckpoint(path: source.path, reason: "tensor \(t.name) decodes to \(values.count) values")
                }
                values = model.toHF(values, tensor: t.name, shape: t.shape)
                try tensors.add(hf, shape: t.shape, floats: values, as: writer.floatType)
            }
            var files: [String] = []
            try tensors.write(to: folder + "/model.safetensors")
            files.append("model.safetensors")

            let configJSON = try model.configJSON(quantization: config.json(quantizer: writer.quantizer), torchDType: writer.torchDType)
            try HFQuantizedWriter.writeText(configJSON.text(indent: 2), to: folder + "/config.json")
            files.append("config.json")
            if format == .gptq || format == .gptqV2 {
                try HFQuantizedWriter.writeText(config.quantizeConfigJSON(quantizer: writer.quantizer).text(indent: 2),
                                                to: folder + "/quantize_config.json")
                files.append("quantize_config.json")
            }
            let tokenizer = try model.writeTokenizer(to: folder)
            files += tokenizer.files
            notes += tokenizer.notes
            finished = true
            return Summary(files: files, config: config, notes: notes)
        }
    }

    /// Writes the dequantized weights of `layers` (what a reader of the folder computes) as
    /// an F32 safetensors file under the Hugging Face names and row order
    /// (`model.layers.3.self_attn.q_proj.weight`), scales as `format` stores them (f16 for
    /// GPTQ and AWQ, f32 for bitsandbytes): the reference the `scripts/check_*_checkpoint.py`
    /// scripts compare with.
    /// - Throws: `HFQuantizedError`, `SafeTensorsError`.
    public static func writeDequantizedReference(source: QuantizationSource, layers: [String: GroupQuantizedMatrix],
                                                 format: HFQuantizedFormat = .gptq, to path: String) throws {
        let model = try HFExportModel(source: source)
        var writer = SafeTensorsWriter(metadata: ["format": "pt"], order: .reference)
        for name in layers.keys.sorted() {
            guard let hf = HFLlamaNames.hf(gguf: name) else {
                throw HFQuantizedError.cannotExport(reason: "layer \(name) is not a tensor of a Llama-family model")
            }
            var m = model.toHF(layers[name]!, tensor: name)
            if format != .bitsAndBytes { m = m.scalesRoundedToHalf() }
            try writer.add(hf, shape: [m.rows, m.columns], floats: m.dequantized())
        }
        try writer.write(to: path)
    }

    /// The tensors of `source` this writer can store quantized, in source order: the seven
    /// block projections (`blk.N.{attn_q,attn_k,attn_v,attn_output,ffn_gate,ffn_up,ffn_down}.weight`).
    public static func quantizableLayers(of source: QuantizationSource) -> [String] {
        source.tensors.map(\.name).filter { name in
            let p = name.split(separator: ".")
            return p.count == 4 && p[0] == "blk" && Int(p[1]) != nil && HFLlamaNames.linears.contains(String(p[2]))
                && p[3] == "weight"
        }
    }

    fileprivate var torchDType: String {
        switch floatType {
        case .bf16: return "bfloat16"
        case .f32: return "float32"
        default: return "float16"
        }
    }

    /// The shared settings, after checking every layer against the source and the format.
    /// Checks that a `rows × columns` layer at `bits` with `groupSize` (≥ columns: per
    /// channel) fits this format's packing, before anything is computed for it.
    /// - Throws: `HFQuantizedError.cannotExport` naming the layer and the rule it breaks.
    public func checkShape(layer name: String, rows: Int, columns: Int, bits: Int, groupSize: Int) throws {
        func fail(_ reason: String) -> HFQuantizedError { .cannotExport(reason: reason) }
        switch format {
        case .awq:
            guard bits == 4 else { throw fail("layer \(name) has \(bits) bits; AWQ GEMM stores 4") }
            guard rows % 8 == 0 else { throw fail("layer \(name) has \(rows) output rows, not a multiple of 8 (AWQ packing)") }
            guard groupSize >= columns || columns % groupSize == 0 else {
                throw fail("layer \(name): \(columns) input columns are not a multiple of the group size \(groupSize)")
            }
        case .gptq, .gptqV2:
            guard rows % 32 == 0, columns % 32 == 0 else {
                throw fail("layer \(name) is \(rows)×\(columns); GPTQ packing needs both multiples of 32")
            }
        case .bitsAndBytes:
            guard bits == 8, groupSize >= columns else {
                throw fail("layer \(name) has \(bits) bits in groups of \(groupSize); bitsandbytes 8-bit stores one int8 scale per row")
            }
        }
    }

    /// What the shared settings need from one layer.
    struct LayerFacts {
        let name: String
        let bits: Int
        /// nil: per channel.
        let groupSize: Int?
        let columns: Int
        let symmetric: Bool
        let actOrder: Bool
    }

    /// Checks one layer against the source and the format.
    static func layerFacts(_ m: GroupQuantizedMatrix, name: String, model: HFExportModel,
                           format: HFQuantizedFormat) throws -> LayerFacts {
        func fail(_ reason: String) -> HFQuantizedError { .cannotExport(reason: reason) }
        guard model.blockLinearNames.contains(name), let t = model.tensor(name) else {
            throw fail("layer \(name) is not one of the source's block projections "
                + "(blk.N.attn_{q,k,v,output}.weight, blk.N.ffn_{gate,up,down}.weight)")
        }
        guard t.shape == [m.rows, m.columns] else {
            throw fail("layer \(name) is \(m.rows)×\(m.columns); the source's tensor is \(t.shape)")
        }
        do { try m.validate() } catch { throw fail("layer \(name): \(error)") }
        if let i = m.scales.firstIndex(where: { !Half.f16ToFloat(Half.floatToF16($0)).isFinite }) {
            throw fail("layer \(name): scale \(m.scales[i]) overflows f16, which the format stores")
        }
        try HFQuantizedWriter(format: format).checkShape(layer: name, rows: m.rows, columns: m.columns, bits: m.bits,
                                                         groupSize: m.groupSize)
        switch format {
        case .awq:
            guard m.hasIdentityGrouping else { throw fail("layer \(name) has act-order groups (g_idx), which AWQ cannot store") }
        case .gptq, .gptqV2:
            if format == .gptq, let i = m.zeroPoints.firstIndex(of: 0) {
                throw fail("layer \(name) has zero point 0 (row \(i / m.groups), group \(i % m.groups)), which GPTQ checkpoint "
                    + "format v1 stores as zero − 1 and cannot hold; write format gptq_v2, or quantize with zero points ≥ 1")
            }
        case .bitsAndBytes:
            guard m.symmetric, m.hasIdentityGrouping else { throw fail("layer \(name) is not symmetric int8 per row, which bitsandbytes stores") }
            if let i = m.codes.firstIndex(of: 0) {
                throw fail("layer \(name) has code −128 (row \(i / m.columns)); bitsandbytes int8 rows use −127…127")
            }
            if let i = m.scales.firstIndex(where: { $0 < 0 || !$0.isFinite }) {
                throw fail("layer \(name): row \(i) has scale \(m.scales[i])")
            }
        }
        return LayerFacts(name: name, bits: m.bits, groupSize: m.groupSize < m.columns ? m.groupSize : nil,
                          columns: m.columns, symmetric: m.symmetric, actOrder: !m.hasIdentityGrouping)
    }

    /// The settings every layer shares; refuses layers that mix them.
    static func sharedConfig(_ facts: [LayerFacts], format: HFQuantizedFormat) throws -> HFQuantizationConfig {
        func fail(_ reason: String) -> HFQuantizedError { .cannotExport(reason: reason) }
        let bits = Set(facts.map(\.bits))
        guard bits.count <= 1 else { throw fail("layers mix bit widths \(bits.sorted()); a checkpoint has one") }
        let sizes = Set(facts.compactMap(\.groupSize))
        guard sizes.count <= 1 else { throw fail("layers mix group sizes \(sizes.sorted()); a checkpoint has one") }
        let groupSize = sizes.first ?? -1
        let widest = facts.filter { $0.groupSize == nil }.map(\.columns).max() ?? 0
        if groupSize != -1 && widest > groupSize {
            throw fail("some layers are per-channel over \(widest) columns while others use groups of \(groupSize)")
        }
        return HFQuantizationConfig(format: format, bits: bits.first ?? 0, groupSize: groupSize,
                                    symmetric: facts.allSatisfy(\.symmetric), descAct: facts.contains(where: \.actOrder))
    }

    /// Adds one quantized module's tensors.
    fileprivate func add(_ m: GroupQuantizedMatrix, module: String, to writer: inout SafeTensorsWriter) throws {
        let g = m.groups
        var scales = [Float](repeating: 0, count: g * m.rows)  // [groups, out]
        for o in 0..<m.rows { for k in 0..<g { scales[k * m.rows + o] = m.scales[o * g + k] } }
        switch format {
        case .awq:
            try writer.add(module + ".qweight", dtype: .i32, shape: [m.columns, m.rows / 8],
                           bytes: Self.bytes(HFQuantizedPacking.awqQWeight(m)))
            try writer.add(module + ".qzeros", dtype: .i32, shape: [g, m.rows / 8], bytes: Self.bytes(HFQuantizedPacking.awqQZeros(m)))
        case .gptq, .gptqV2:
            try writer.add(module + ".qweight", dtype: .i32, shape: [m.columns / 32 * m.bits, m.rows],
                           bytes: Self.bytes(HFQuantizedPacking.gptqQWeight(m)))
            try writer.add(module + ".qzeros", dtype: .i32, shape: [g, m.rows / 32 * m.bits],
                           bytes: Self.bytes(HFQuantizedPacking.gptqQZeros(m, offset: format.zeroPointOffset)))
            try writer.add(module + ".g_idx", dtype: .i32, shape: [m.columns], bytes: Self.bytes(m.groupIndex))
        case .bitsAndBytes:
            try writer.add(module + ".weight", dtype: .i8, shape: [m.rows, m.columns], bytes: m.codes.map { $0 &- 128 })
            var scb: [UInt8] = []
            scb.reserveCapacity(4 * m.rows)
            for s in m.scales { withUnsafeBytes(of: HFQuantizedPacking.absmax(scale: s).bitPattern.littleEndian) { scb += $0 } }
            try writer.add(module + ".SCB", dtype: .f32, shape: [m.rows], bytes: scb)
            try writer.add(module + ".weight_format", dtype: .u8, shape: [], bytes: [0])
            return
        }
        try writer.add(module + ".scales", shape: [g, m.rows], floats: scales, as: .f16)
    }

    /// Little-endian bytes of int32 values.
    static func bytes(_ values: [Int32]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: values.count * 4)
        out.withUnsafeMutableBytes { raw in
            for (i, v) in values.enumerated() { raw.storeBytes(of: v.littleEndian, toByteOffset: i * 4, as: Int32.self) }
        }
        return out
    }

    /// Writes bytes atomically.
    static func writeText(_ bytes: [UInt8], to path: String) throws {
        try AtomicFile.write(to: path) { out in try bytes.withUnsafeBytes { try out.write($0) } }
    }
}

/// Tensor names of a Llama-family model in llama.cpp's and Hugging Face's conventions.
enum HFLlamaNames {
    /// Per block: llama.cpp suffix → transformers suffix.
    static let block: [(gguf: String, hf: String)] = [
        ("attn_norm.weight", "input_layernorm.weight"),
        ("ffn_norm.weight", "post_attention_layernorm.weight"),
        ("attn_q.weight", "self_attn.q_proj.weight"), ("attn_k.weight", "self_attn.k_proj.weight"),
        ("attn_v.weight", "self_attn.v_proj.weight"), ("attn_output.weight", "self_attn.o_proj.weight"),
        ("attn_q.bias", "self_attn.q_proj.bias"), ("attn_k.bias", "self_attn.k_proj.bias"),
        ("attn_v.bias", "self_attn.v_proj.bias"),
        ("ffn_gate.weight", "mlp.gate_proj.weight"), ("ffn_up.weight", "mlp.up_proj.weight"),
        ("ffn_down.weight", "mlp.down_proj.weight"),
    ]
    /// The seven projections of a block, as llama.cpp suffixes.
    static let linears = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]
    /// Tensors outside the blocks.
    static let top: [(gguf: String, hf: String)] = [
        ("token_embd.weight", "model.embed_tokens.weight"), ("output_norm.weight", "model.norm.weight"),
        ("output.weight", "lm_head.weight"),
    ]

    /// The transformers name of a llama.cpp tensor name, or nil.
    static func hf(gguf name: String) -> String? {
        if let t = top.first(where: { $0.gguf == name }) { return t.hf }
        let parts = name.split(separator: ".", maxSplits: 2)
        guard parts.count == 3, parts[0] == "blk", let layer = Int(parts[1]), layer >= 0,
              let b = block.first(where: { $0.gguf == parts[2] }) else { return nil }
        return "model.layers.\(layer).\(b.hf)"
    }

    /// The transformers module name (`model.layers.3.mlp.down_proj`) of a projection weight.
    static func module(gguf name: String) -> String? {
        guard name.hasSuffix(".weight"), let hf = hf(gguf: name) else { return nil }
        return String(hf.dropLast(".weight".count))
    }
}
