// Reads GPTQ and AWQ Hugging Face folders: the quantized layers as GroupQuantizedMatrix,
// and the whole model as a QuantizationSource whose weights are dequantized to f32.

import Foundation
import Quantization
import Tensors

/// A GPTQ or AWQ Hugging Face folder of a Llama-family model (llama, mistral, qwen2).
///
/// The folder is `HFQuantizedWriter`'s output or one made by AutoGPTQ, GPTQModel,
/// optimum or AutoAWQ: `config.json` with a `quantization_config` (or AutoGPTQ's
/// `quantize_config.json`), `model.safetensors` or shards, a byte-level BPE
/// `tokenizer.json`. A module is quantized when its `.qweight` is present (with `.qzeros`,
/// `.scales`, and for GPTQ an optional `.g_idx`), and floating point when its `.weight` is.
/// Every tensor is checked against the shapes `config.json` implies; codes, zero points and
/// `g_idx` against their ranges. Errors name the file and the tensor.
public final class HFQuantizedCheckpoint: @unchecked Sendable {
    /// The folder.
    public let path: String
    /// The shared quantization settings.
    public let config: HFQuantizationConfig
    /// The weight files.
    public let weights: SafeTensorsModel
    let model: HFModelDescription

    /// Whether `path` is a folder whose `config.json` has a `quantization_config` (or which
    /// has a `quantize_config.json`), i.e. one to open with this type.
    public static func isQuantizedFolder(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else { return false }
        if FileManager.default.fileExists(atPath: path + "/quantize_config.json") { return true }
        guard let data = FileManager.default.contents(atPath: path + "/config.json"), data.count <= HFConfig.maxFileSize,
              let json = try? JSONValue.parse(Array(data), maxDepth: 64, allowDuplicateKeys: true),
              let q = json["quantization_config"] else { return false }
        return q != .null
    }

    /// Opens a folder, reading its configuration and mapping its weight files.
    /// - Throws: `HFQuantizedError.invalidCheckpoint` (or `QuantizeError.unsupportedInput`
    ///   for the model config) naming the file; `SafeTensorsError` for unreadable weights.
    public init(folder: String) throws {
        var folder = folder
        while folder.count > 1 && folder.hasSuffix("/") { folder.removeLast() }
        path = folder
        model = try HFModelDescription(folder: folder, allowQuantized: true)
        if let q = model.json["quantization_config"], q != .null {
            config = try HFQuantizationConfig(json: q, path: model.path)
        } else {
            let qpath = folder + "/quantize_config.json"
            guard let data = FileManager.default.contents(atPath: qpath) else {
                throw HFQuantizedError.invalidCheckpoint(path: model.path, reason: "no quantization_config (and no quantize_config.json)")
            }
            guard data.count <= HFConfig.maxFileSize, let json = try? JSONValue.parse(Array(data), maxDepth: 64, allowDuplicateKeys: true) else {
                throw HFQuantizedError.invalidCheckpoint(path: qpath, reason: "not valid JSON")
            }
            config = try HFQuantizationConfig(json: json, path: qpath)
        }
        weights = try SafeTensorsModel(path: folder)
    }

    /// The `[rows, columns]` of a projection by GGUF name, from the config, or nil.
    func projectionShape(_ gguf: String) -> [Int]? {
        let c = model.llama
        let d = c.hiddenSize, f = c.intermediateSize
        let q = c.numAttentionHeads * c.headDim, kv = c.numKeyValueHeads * c.headDim
        let shapes = ["attn_q": [q, d], "attn_k": [kv, d], "attn_v": [kv, d], "attn_output": [d, q],
                      "ffn_gate": [f, d], "ffn_up": [f, d], "ffn_down": [d, f]]
        if gguf == "output.weight" { return [c.vocabSize, d] }
        let parts = gguf.split(separator: ".")
        guard parts.count == 4, parts[0] == "blk", let l = Int(parts[1]), l >= 0, l < c.numHiddenLayers,
              parts[3] == "weight" else { return nil }
        return shapes[String(parts[2])]
    }

    /// Heads whose rows are permuted between Hugging Face and llama.cpp order, or nil.
    func permutedHeads(_ gguf: String) -> Int? {
        guard model.permutesQK else { return nil }
        if gguf.hasSuffix(".attn_q.weight") || gguf.hasSuffix(".attn_q.bias") { return model.llama.numAttentionHeads }
        if gguf.hasSuffix(".attn_k.weight") || gguf.hasSuffix(".attn_k.bias") { return model.llama.numKeyValueHeads }
        return nil
    }

    /// Every quantized layer, by GGUF name, rows in llama.cpp's order (as a `LlamaModel`
    /// loaded from this folder uses them).
    /// - Throws: as `layer(_:)`.
    public func layers() throws -> [String: GroupQuantizedMatrix] {
        var out: [String: GroupQuantizedMatrix] = [:]
        var names = (0..<model.llama.numHiddenLayers).flatMap { l in HFLlamaNames.linears.map { "blk.\(l).\($0).weight" } }
        if !model.llama.tieWordEmbeddings { names.append("output.weight") }
        for name in names { if let m = try layer(name) { out[name] = m } }
        return out
    }

    /// One quantized layer by GGUF name (`blk.3.attn_q.weight`), rows in llama.cpp's order;
    /// nil when the module is stored in floating point.
    /// - Throws: `HFQuantizedError.invalidCheckpoint` naming the file and tensor for a
    ///   missing companion tensor, a wrong dtype or shape, a value out of range.
    public func layer(_ gguf: String) throws -> GroupQuantizedMatrix? {
        guard let shape = projectionShape(gguf), let hf = HFLlamaNames.module(gguf: gguf) else {
            throw HFQuantizedError.invalidCheckpoint(path: path, reason: "\(gguf) is not a projection of this model")
        }
        guard weights.contains(hf + config.format.quantizedMarker) else { return nil }
        let m = try read(module: hf, rows: shape[0], columns: shape[1])
        guard let heads = permutedHeads(gguf) else { return m }
        let p = RowPermutation(rows: m.rows, heads: heads)
        return m.permutingRows(p.sourceRow)
    }

    /// A bitsandbytes 8-bit module (`weight` I8, `SCB` F32, optional `weight_format` 0) as a
    /// matrix in Hugging Face row order.
    private func readInt8(module: String, rows: Int, columns: Int) throws -> GroupQuantizedMatrix {
        func info(_ suffix: String, _ dtype: DType, _ shape: [Int]) throws -> (SafeTensorInfo, SafeTensorsFile) {
            let name = module + suffix
            guard weights.contains(name) else {
                throw HFQuantizedError.invalidCheckpoint(path: (try? weights.file(containing: module + ".SCB").path) ?? path,
                                                         reason: "missing tensor \(name) (\(module) has an SCB)")
            }
            let file = try weights.file(containing: name), i = try weights.info(name)
            guard i.dtype == dtype else {
                throw HFQuantizedError.invalidCheckpoint(path: file.path, reason: "tensor \(name) has dtype \(i.dtype.rawValue), expected \(dtype.rawValue)")
            }
            guard i.shape == shape else {
                throw HFQuantizedError.invalidCheckpoint(path: file.path, reason: "tensor \(name) has shape \(i.shape), expected \(shape)")
            }
            return (i, file)
        }
        if weights.contains(module + ".weight_format") {
            let (i, file) = try info(".weight_format", .u8, [])
            let format = file.data(for: i).first ?? 0
            guard format == 0 else {
                throw HFQuantizedError.invalidCheckpoint(path: file.path, reason: "tensor \(module).weight_format is \(format); only 0 (row-major) is supported")
            }
        }
        let (wi, wfile) = try info(".weight", .i8, [rows, columns])
        let (si, sfile) = try info(".SCB", .f32, [rows])
        let raw = wfile.data(for: wi)
        guard raw.count == rows * columns else {
            throw HFQuantizedError.invalidCheckpoint(path: wfile.path, reason: "tensor \(module).weight holds \(raw.count) bytes")
        }
        if let i = raw.firstIndex(of: 0x80) {
            throw HFQuantizedError.invalidCheckpoint(path: wfile.path, reason: "tensor \(module).weight holds −128 at row \(i / columns) (bitsandbytes rows use −127…127)")
        }
        let absmax = SafeTensorsConversion.floats(sfile.data(for: si), dtype: .f32, count: rows)
        if let r = absmax.firstIndex(where: { !$0.isFinite || $0 < 0 }) {
            throw HFQuantizedError.invalidCheckpoint(path: sfile.path, reason: "tensor \(module).SCB row \(r) is \(absmax[r])")
        }
        do {
            return try GroupQuantizedMatrix(rows: rows, columns: columns, bits: 8, groupSize: columns,
                                            codes: raw.map { $0 &+ 128 }, scales: absmax.map(HFQuantizedPacking.scale(absmax:)),
                                            zeroPoints: [Int32](repeating: 128, count: rows), groupIndex: nil, symmetric: true)
        } catch {
            throw HFQuantizedError.invalidCheckpoint(path: wfile.path, reason: "module \(module): \(error)")
        }
    }

    /// A module's tensors as a matrix in Hugging Face row order.
    private func read(module: String, rows: Int, columns: Int) throws -> GroupQuantizedMatrix {
        let c = config, bits = c.bits
        let groups = c.groups(columns: columns)
        func file(_ name: String) -> String { (try? weights.file(containing: name).path) ?? path }
        func fail(_ name: String, _ reason: String) -> HFQuantizedError {
            .invalidCheckpoint(path: file(name), reason: "tensor \(name) \(reason)")
        }
        func int32s(_ suffix: String, _ shape: [Int], required: Bool = true) throws -> [Int32]? {
            let name = module + suffix
            guard weights.contains(name) else {
                if !required { return nil }
                throw HFQuantizedError.invalidCheckpoint(path: file(module + ".qweight"), reason: "missing tensor \(name) (\(module) has a qweight)")
            }
            let info = try weights.info(name)
            guard info.dtype == .i32 else { throw fail(name, "has dtype \(info.dtype.rawValue), expected I32") }
            guard info.shape == shape else { throw fail(name, "has shape \(info.shape), expected \(shape) for \(c.format.rawValue) \(bits)-bit") }
            let raw = try weights.data(for: name)
            return (0..<info.elementCount).map { Int32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) }
        }
        if c.format == .bitsAndBytes { return try readInt8(module: module, rows: rows, columns: columns) }
        if c.format == .awq {
            guard rows % 8 == 0 else { throw fail(module + ".qweight", "cannot hold \(rows) output rows (not a multiple of 8)") }
        } else {
            guard rows % 32 == 0, columns % 32 == 0 else {
                throw fail(module + ".qweight", "cannot hold a \(rows)×\(columns) weight (GPTQ packing needs multiples of 32)")
            }
        }
        let codes: [UInt8], stored: [Int32]
        var groupIndex: [Int32]? = nil
        switch c.format {
        case .awq:
            let qweight = try int32s(".qweight", [columns, rows / 8])!
            codes = HFQuantizedPacking.awqUnpackTransposed(qweight, n: columns, m: rows).map { UInt8($0) }
            let qzeros = try int32s(".qzeros", [groups, rows / 8])!
            stored = HFQuantizedPacking.awqUnpackTransposed(qzeros, n: groups, m: rows).map { Int32($0) }
        case .gptq, .gptqV2:
            let qweight = try int32s(".qweight", [columns / 32 * bits, rows])!
            codes = HFQuantizedPacking.gptqCodes(qweight, rows: rows, columns: columns, bits: bits)
            let qzeros = try int32s(".qzeros", [groups, rows / 32 * bits])!
            stored = HFQuantizedPacking.gptqStoredZeros(qzeros, rows: rows, groups: groups, bits: bits)
            groupIndex = try int32s(".g_idx", [columns], required: false)
        case .bitsAndBytes:
            return try readInt8(module: module, rows: rows, columns: columns)
        }
        let offset = c.format.zeroPointOffset
        let zeros = stored.map { $0 + offset }
        let scalesName = module + ".scales"
        guard weights.contains(scalesName) else {
            throw HFQuantizedError.invalidCheckpoint(path: file(module + ".qweight"), reason: "missing tensor \(scalesName) (\(module) has a qweight)")
        }
        let info = try weights.info(scalesName)
        guard [DType.f16, .bf16, .f32].contains(info.dtype) else { throw fail(scalesName, "has dtype \(info.dtype.rawValue), expected F16") }
        guard info.shape == [groups, rows] else { throw fail(scalesName, "has shape \(info.shape), expected \([groups, rows])") }
        let byGroup = SafeTensorsConversion.floats(try weights.data(for: scalesName), dtype: info.dtype, count: groups * rows)
        var scales = [Float](repeating: 0, count: rows * groups)
        for g in 0..<groups { for o in 0..<rows { scales[o * groups + g] = byGroup[g * rows + o] } }
        do {
            return try GroupQuantizedMatrix(rows: rows, columns: columns, bits: bits, groupSize: c.groupSize == -1 ? columns : c.groupSize,
                                            codes: codes, scales: scales, zeroPoints: zeros, groupIndex: groupIndex,
                                            symmetric: c.symmetric)
        } catch let error as GroupQuantizedMatrixError {
            var reason = "\(error)"
            if case .valueOutOfRange("zeroPoints", _, let v, _) = error, offset == 1, v == 1 << bits {
                reason += " (a stored 2^bits−1 in checkpoint format gptq means zero point 2^bits, outside the grid)"
            } else if case .asymmetricZeroPoint = error {
                reason += " (quantization_config says sym: true)"
            }
            throw HFQuantizedError.invalidCheckpoint(path: file(module + ".qweight"), reason: "module \(module): \(reason)")
        }
    }
}

extension HFQuantizedCheckpoint {
    /// Every tensor of the model under llama.cpp's names and row order, as f32: quantized
    /// modules dequantized, floating-point ones converted. Nothing is decoded until asked,
    /// so a corrupt quantized module is reported (as `HFQuantizedError`) when it is read.
    /// - Throws: `HFQuantizedError.invalidCheckpoint` naming the file for a missing,
    ///   unexpected or wrongly shaped tensor.
    func sourceTensors() throws -> [SourceTensor] {
        let c = model.llama
        let d = c.hiddenSize
        let q = c.numAttentionHeads * c.headDim, kv = c.numKeyValueHeads * c.headDim
        var used = Set<String>()
        var out: [SourceTensor] = []
        let weightsPath = weights.index != nil ? path + "/" + SafeTensorsIndex.fileName
            : weights.files.count == 1 ? weights.files[0].path : path

        func float(_ gguf: String, _ shape: [Int], required: Bool = true) throws {
            let hf = HFLlamaNames.hf(gguf: gguf)!
            guard weights.contains(hf) else {
                if required { throw HFQuantizedError.invalidCheckpoint(path: weightsPath, reason: "missing tensor \(hf)") }
                return
            }
            let info = try weights.info(hf)
            let file = try weights.file(containing: hf)
            guard [DType.f32, .f16, .bf16].contains(info.dtype) else {
                throw HFQuantizedError.invalidCheckpoint(path: file.path, reason: "tensor \(hf) has dtype \(info.dtype.rawValue); expected F32, F16 or BF16")
            }
            guard info.shape == shape else {
                throw HFQuantizedError.invalidCheckpoint(path: file.path, reason: "tensor \(hf) has shape \(info.shape), config.json implies \(shape)")
            }
            used.insert(hf)
            let heads = permutedHeads(gguf)
            let decode: () throws -> [Float] = {
                let values = SafeTensorsConversion.floats(file.data(for: info), dtype: info.dtype, count: info.elementCount)
                guard let heads else { return values }
                let p = RowPermutation(rows: shape[0], heads: heads), width = values.count / shape[0]
                var permuted = values
                for r in 0..<shape[0] {
                    let s = p.sourceRow(r)
                    permuted.replaceSubrange(r * width..<(r + 1) * width, with: values[s * width..<(s + 1) * width])
                }
                return permuted
            }
            out.append(Self.f32Tensor(gguf, shape, decode))
        }
        func projection(_ gguf: String) throws {
            let shape = projectionShape(gguf)!, hf = HFLlamaNames.module(gguf: gguf)!
            guard weights.contains(hf + config.format.quantizedMarker) else { return try float(gguf, shape) }
            for suffix in config.format.moduleSuffixes where weights.contains(hf + suffix) { used.insert(hf + suffix) }
            // A zero bias (AutoGPTQ writes one for every module) is accepted and left out.
            if weights.contains(hf + ".bias") && !gguf.contains(".attn_q.") && !gguf.contains(".attn_k.") && !gguf.contains(".attn_v.") {
                let info = try weights.info(hf + ".bias")
                let file = try weights.file(containing: hf + ".bias")
                guard [DType.f32, .f16, .bf16].contains(info.dtype), info.shape == [shape[0]],
                      SafeTensorsConversion.floats(file.data(for: info), dtype: info.dtype, count: info.elementCount).allSatisfy({ $0 == 0 }) else {
                    throw HFQuantizedError.invalidCheckpoint(path: file.path, reason: "tensor \(hf).bias: a bias on this projection is not supported")
                }
                used.insert(hf + ".bias")
            }
            out.append(Self.f32Tensor(gguf, shape) { [self] in try self.layer(gguf)!.dequantized() })
        }

        try float("token_embd.weight", [c.vocabSize, d])
        try float("output_norm.weight", [d])
        if !c.tieWordEmbeddings { try projection("output.weight") }
        for l in 0..<c.numHiddenLayers {
            let p = "blk.\(l)."
            try float(p + "attn_norm.weight", [d])
            try float(p + "ffn_norm.weight", [d])
            for name in HFLlamaNames.linears { try projection(p + name + ".weight") }
            try float(p + "attn_q.bias", [q], required: c.attentionBias)
            try float(p + "attn_k.bias", [kv], required: c.attentionBias)
            try float(p + "attn_v.bias", [kv], required: c.attentionBias)
        }
        for name in weights.tensorNames where !used.contains(name) {
            if name.hasSuffix(".rotary_emb.inv_freq") || (name == "lm_head.weight" && c.tieWordEmbeddings) { continue }
            throw HFQuantizedError.invalidCheckpoint(path: (try? weights.file(containing: name).path) ?? path,
                                                     reason: "unexpected tensor \(name) (not part of a \(c.modelType) model)")
        }
        return out
    }

    /// A tensor materialised as f32 on first use and kept (so a model can borrow it).
    static func f32Tensor(_ name: String, _ shape: [Int], _ decode: @escaping () throws -> [Float]) -> SourceTensor {
        let cache = BytesCache()
        return SourceTensor(name: name, shape: shape, type: .f32,
                            raw: { try cache.bytes { BytesCache.floatBytes(try decode()) } }, decode: decode)
    }
}

extension QuantizationSource {
    /// A GPTQ or AWQ Hugging Face folder as a source in llama.cpp's conventions (names,
    /// Q/K row order, metadata; see `init(huggingFace:)`), every weight dequantized to f32
    /// when first read. Loading it gives a `LlamaModel` of dense f32 layers computing
    /// exactly what the checkpoint's integer codes, f16 scales and zero points define.
    ///
    /// ```swift
    /// let source = try QuantizationSource(huggingFaceQuantized: "SmolLM2-GPTQ")
    /// let model = try LlamaLoader.load(source: source)
    /// ```
    /// - Throws: `HFQuantizedError`, `QuantizeError.unsupportedInput` (model config,
    ///   tokenizer), `SafeTensorsError`, each naming the file.
    public init(huggingFaceQuantized path: String) throws {
        let checkpoint = try HFQuantizedCheckpoint(folder: path)
        let tokenizer = try HFTokenizerMetadata.read(folder: checkpoint.path, architecture: checkpoint.model.architecture,
                                                     vocabSize: checkpoint.model.llama.vocabSize, config: checkpoint.model.json)
        var tensors = try checkpoint.sourceTensors()
        if case .llama3(let factors) = checkpoint.model.ropeScaling {
            tensors.insert(HFTensorMapping.f32Vector("rope_freqs.weight", factors), at: 0)
        }
        self.init(path: checkpoint.path, metadata: checkpoint.model.metadata(fileType: 0) + tokenizer,
                  tensors: tensors, owner: checkpoint)
    }
}

extension QuantizationSource {
    /// Any Hugging Face Llama-family folder: `init(huggingFaceQuantized:)` when it is a
    /// GPTQ/AWQ checkpoint (`HFQuantizedCheckpoint.isQuantizedFolder`), else
    /// `init(huggingFace:)`.
    /// - Throws: what the chosen initializer throws.
    public init(anyHuggingFace path: String) throws {
        if HFQuantizedCheckpoint.isQuantizedFolder(path) {
            try self.init(huggingFaceQuantized: path)
        } else {
            try self.init(huggingFace: path)
        }
    }
}
