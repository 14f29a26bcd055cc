// A Hugging Face Llama-family folder seen as the GGUF that llama.cpp's
// convert_hf_to_gguf.py would write from it: llama.cpp's tensor names, its Q/K row order,
// its metadata keys. Nothing is converted up front; each tensor is read from the mapped
// safetensors when the quantizer (or the model loader) asks for it.

import Foundation
import Quantization
import Tensors

extension QuantizationSource {
    /// A Hugging Face Llama-family folder (`model_type` llama, mistral or qwen2) mapped to
    /// llama.cpp's GGUF conventions, as its `convert_hf_to_gguf.py` does.
    ///
    /// The folder holds `config.json`, the weights (`model.safetensors`, or shards with
    /// `model.safetensors.index.json`) in F32, F16 or BF16, and a byte-level BPE
    /// `tokenizer.json` (with `tokenizer_config.json` if there is one).
    ///
    /// - Tensors: `model.embed_tokens.weight` → `token_embd.weight`,
    ///   `model.layers.N.self_attn.{q,k,v,o}_proj.weight` → `blk.N.attn_{q,k,v,output}.weight`
    ///   (q/k/v biases → `.bias`), `mlp.{gate,up,down}_proj` → `ffn_{gate,up,down}`,
    ///   `input_layernorm` → `attn_norm`, `post_attention_layernorm` → `ffn_norm`,
    ///   `model.norm` → `output_norm`, `lm_head.weight` → `output.weight` (left out when the
    ///   embeddings are tied). For llama and mistral the rows of Q and K (weights and biases)
    ///   are permuted within each head so that RoPE pairs are adjacent, as llama.cpp expects;
    ///   qwen2 keeps Hugging Face's order. Tensors come in llama.cpp's order: shard by shard,
    ///   sorted by name within a shard (after `rope_freqs.weight`, which llama.cpp computes
    ///   for Llama 3 RoPE scaling). `rotary_emb.inv_freq` buffers are left out.
    /// - Types: 1-D tensors are F32; 2-D weights keep their stored type, with `decode`
    ///   giving f32. `raw` is a view of the mapping, except for permuted tensors and 1-D
    ///   tensors stored as F16/BF16, whose bytes are built on the first call and kept for
    ///   the life of the source.
    /// - Metadata: `general.architecture` (mistral is written as llama, as llama.cpp does),
    ///   `general.name`, `{arch}.context_length`, `embedding_length`,
    ///   `feed_forward_length`, `block_count`, `attention.head_count`,
    ///   `attention.head_count_kv`, `rope.freq_base`, `attention.layer_norm_rms_epsilon`,
    ///   `vocab_size`, `rope.dimension_count` (`attention.key_length`/`value_length` when
    ///   `head_dim` is not `hidden_size / heads`; llama3/linear RoPE scaling as llama.cpp
    ///   writes it), `general.file_type`, and the tokenizer (see `HFTokenizerMetadata`).
    ///
    /// - Throws: `QuantizeError.unsupportedInput` naming the file (missing or unsupported
    ///   `config.json`, missing `tokenizer.json`, a missing, unexpected or wrongly shaped
    ///   tensor, an unsupported dtype, a quantized checkpoint); `SafeTensorsError` for
    ///   unreadable weight files.
    public init(huggingFace path: String) throws {
        var folder = path
        while folder.count > 1 && folder.hasSuffix("/") { folder.removeLast() }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw QuantizeError.unsupportedInput(
                path: folder, reason: "not a folder (a Hugging Face model is a folder with config.json, "
                    + "*.safetensors and tokenizer.json)")
        }
        let config = try HFModelDescription(folder: folder)
        let tokenizer = try HFTokenizerMetadata.read(folder: folder, architecture: config.architecture,
                                                     vocabSize: config.llama.vocabSize, config: config.json)
        let weights = try SafeTensorsModel(path: folder)
        let tensors = try HFTensorMapping(config: config, weights: weights, folder: folder).tensors()
        self.init(path: folder, metadata: config.metadata(fileType: Self.fileType(tensors)) + tokenizer,
                  tensors: tensors, owner: weights)
    }

    /// llama.cpp's `general.file_type` for the type holding most 2-D weights: 0 all F32,
    /// 1 mostly F16, 32 mostly BF16.
    static func fileType(_ tensors: [SourceTensor]) -> UInt32 {
        var counts: [DType: Int] = [:]
        for t in tensors where t.shape.count == 2 { counts[t.type, default: 0] += t.elementCount }
        let main = counts.max { $0.value != $1.value ? $0.value < $1.value : $0.key.rawValue > $1.key.rawValue }?.key
        switch main {
        case .f16?: return 1
        case .bf16?: return 32
        default: return 0
        }
    }
}

/// `config.json` of a Llama-family folder: the typed configuration plus what llama.cpp's
/// converter reads beyond it (name, RoPE scaling).
struct HFModelDescription {
    /// The config file's path (for messages).
    let path: String
    /// The decoded configuration.
    let llama: LlamaConfig
    /// The whole document.
    let json: JSONValue
    /// GGUF architecture: "llama" (also for mistral) or "qwen2".
    let architecture: String
    /// Whether Q/K rows are permuted into llama.cpp's interleaved-RoPE order.
    let permutesQK: Bool
    /// `general.name`.
    let name: String
    /// RoPE scaling as llama.cpp stores it.
    let ropeScaling: RopeScaling

    /// RoPE scaling a config asks for.
    enum RopeScaling: Equatable {
        /// None (or `rope_type` "default").
        case none
        /// Positions divided by `factor` (`rope.scaling.type` "linear").
        case linear(factor: Float)
        /// Llama 3's per-frequency factors, stored as the tensor `rope_freqs.weight`.
        case llama3(factors: [Float])
    }

    /// Reads `folder/config.json`; a `quantization_config` is an error unless
    /// `allowQuantized` (the GPTQ/AWQ reader, which handles it).
    init(folder: String, allowQuantized: Bool = false) throws {
        path = folder + "/config.json"
        let configPath = path
        func fail(_ reason: String) -> QuantizeError { .unsupportedInput(path: configPath, reason: reason) }
        guard FileManager.default.fileExists(atPath: path) else {
            throw fail("missing; a Hugging Face model folder needs its config.json")
        }
        let mapped: MappedFile
        do {
            mapped = try MappedFile(path: path)
        } catch {
            throw fail("cannot read: \(error)")
        }
        guard mapped.count <= HFConfig.maxFileSize else { throw fail("\(mapped.count) bytes, too large for a config") }
        do {
            json = try JSONValue.parse(mapped.bytes, maxDepth: 64, allowDuplicateKeys: true)
        } catch {
            throw fail("not valid JSON: \(error)")
        }
        let decoded: HFConfig
        do {
            decoded = try HFConfig(data: Data(mapped.bytes), path: path)
        } catch let error as HFConfigError {
            let text = error.description, prefix = configPath + ": "
            throw fail(text.hasPrefix(prefix) ? String(text.dropFirst(prefix.count)) : text)
        }
        guard case .llama(let llama) = decoded else {
            throw fail("model_type '\(decoded.modelType)' is not supported (llama, mistral, qwen2)")
        }
        self.llama = llama
        if !allowQuantized, let q = json["quantization_config"], q != .null {
            let method = q["quant_method"]?.stringValue.map { " '\($0)'" } ?? ""
            throw fail("the checkpoint is already quantized (quantization_config\(method)); "
                + "only F32, F16 and BF16 weights can be read here (GPTQ/AWQ folders load through HFQuantizedCheckpoint)")
        }
        if json["mlp_bias"]?.boolValue == true { throw fail("mlp_bias is not supported") }
        architecture = llama.modelType == "qwen2" ? "qwen2" : "llama"
        permutesQK = architecture == "llama"
        guard llama.headDim % 2 == 0 else { throw fail("head_dim \(llama.headDim) is odd; RoPE needs pairs") }
        if let named = json["_name_or_path"]?.stringValue?.split(separator: "/").last, !named.isEmpty {
            name = String(named)
        } else {
            name = String(folder.split(separator: "/").last ?? "model")
        }
        ropeScaling = try Self.ropeScaling(json, llama, fail)
    }

    private static func ropeScaling(_ json: JSONValue, _ c: LlamaConfig,
                                    _ fail: (String) -> QuantizeError) throws -> RopeScaling {
        guard let scaling = json["rope_scaling"], scaling != .null else { return .none }
        guard case .object = scaling else { throw fail("rope_scaling is not an object") }
        let type = scaling["rope_type"]?.stringValue ?? scaling["type"]?.stringValue ?? "default"
        func number(_ key: String, _ fallback: Double) -> Double { scaling[key]?.doubleValue ?? fallback }
        switch type {
        case "default":
            return .none
        case "linear":
            guard let factor = scaling["factor"]?.doubleValue, factor > 0 else { throw fail("rope_scaling linear without a factor") }
            return .linear(factor: Float(factor))
        case "llama3":
            // llama.cpp's converter: a factor per frequency, smooth between the two wavelengths.
            let factor = number("factor", 8), low = number("low_freq_factor", 1), high = number("high_freq_factor", 4)
            let original = scaling["original_max_position_embeddings"]?.doubleValue
                ?? json["original_max_position_embeddings"]?.doubleValue ?? 8192
            let lowWavelength = original / low, highWavelength = original / high
            guard factor > 0, low > 0, high > 0, lowWavelength != highWavelength else {
                throw fail("rope_scaling llama3 has unusable factors")
            }
            let dim = c.headDim
            let factors: [Float] = stride(from: 0, to: dim, by: 2).map { i in
                let frequency = 1 / pow(c.ropeTheta, Double(i) / Double(dim))
                let wavelength = 2 * Double.pi / frequency
                if wavelength < highWavelength { return 1 }
                if wavelength > lowWavelength { return Float(factor) }
                let smooth = (original / wavelength - low) / (high - low)
                return Float(1 / ((1 - smooth) / factor + smooth))
            }
            return .llama3(factors: factors)
        default:
            throw fail("rope_scaling type '\(type)' is not supported (linear, llama3)")
        }
    }

    /// The model's GGUF metadata, in the order llama.cpp writes it (tokenizer keys follow).
    func metadata(fileType: UInt32) -> [GGUFKeyValue] {
        let c = llama, a = architecture
        func u32(_ key: String, _ value: Int) -> GGUFKeyValue { GGUFKeyValue("\(a).\(key)", .uint32(UInt32(value))) }
        var m: [GGUFKeyValue] = [
            GGUFKeyValue("general.architecture", .string(a)),
            GGUFKeyValue("general.name", .string(name)),
            u32("block_count", c.numHiddenLayers),
            u32("context_length", c.maxPositionEmbeddings),
            u32("embedding_length", c.hiddenSize),
            u32("feed_forward_length", c.intermediateSize),
            u32("attention.head_count", c.numAttentionHeads),
            u32("attention.head_count_kv", c.numKeyValueHeads),
            GGUFKeyValue("\(a).rope.freq_base", .float32(Float(c.ropeTheta))),
            GGUFKeyValue("\(a).attention.layer_norm_rms_epsilon", .float32(Float(c.rmsNormEps))),
        ]
        if c.headDim * c.numAttentionHeads != c.hiddenSize {
            m += [u32("attention.key_length", c.headDim), u32("attention.value_length", c.headDim)]
        }
        m += [
            GGUFKeyValue("general.file_type", .uint32(fileType)),
            u32("vocab_size", c.vocabSize),
            u32("rope.dimension_count", c.headDim),
        ]
        if case .linear(let factor) = ropeScaling {
            m += [GGUFKeyValue("\(a).rope.scaling.type", .string("linear")),
                  GGUFKeyValue("\(a).rope.scaling.factor", .float32(factor))]
        }
        return m
    }
}

/// Which Hugging Face tensor becomes which GGUF tensor, checked against the config.
struct HFTensorMapping {
    let config: HFModelDescription
    let weights: SafeTensorsModel
    let folder: String

    /// Where a Hugging Face tensor goes.
    private struct Target {
        var name: String
        var shape: [Int]
        /// Heads to permute the rows over (llama/mistral Q and K), or nil.
        var permuteHeads: Int?
        var required: Bool
    }

    /// The tensors in llama.cpp's order (extra tensors first, then shard by shard, names sorted).
    func tensors() throws -> [SourceTensor] {
        let targets = self.targets()
        var out: [SourceTensor] = []
        if case .llama3(let factors) = config.ropeScaling {
            out.append(Self.f32Vector("rope_freqs.weight", factors))
        }
        var seen = Set<String>()
        for file in weights.files {
            for info in file.sortedTensors where (try? weights.file(containing: info.name)) === file {
                guard let target = targets[info.name] else {
                    if info.name.hasSuffix(".rotary_emb.inv_freq") { continue }  // recomputed, as llama.cpp does
                    if info.name == "lm_head.weight" && config.llama.tieWordEmbeddings { continue }
                    throw QuantizeError.unsupportedInput(
                        path: file.path, reason: "unexpected tensor \(info.name) (not part of a \(config.llama.modelType) model)")
                }
                out.append(try tensor(info, in: file, as: target))
                seen.insert(info.name)
            }
        }
        let weightsPath = weights.index != nil ? folder + "/" + SafeTensorsIndex.fileName
            : weights.files.count == 1 ? weights.files[0].path : folder
        for (name, target) in targets.sorted(by: { $0.value.name < $1.value.name })
            where target.required && !seen.contains(name) {
            throw QuantizeError.unsupportedInput(
                path: weightsPath, reason: "missing tensor \(name) (for \(target.name)), which config.json implies")
        }
        return out
    }

    /// Every tensor a model with this config has, by Hugging Face name.
    private func targets() -> [String: Target] {
        let c = config.llama
        let d = c.hiddenSize, f = c.intermediateSize
        let q = c.numAttentionHeads * c.headDim, kv = c.numKeyValueHeads * c.headDim
        let qHeads = config.permutesQK ? c.numAttentionHeads : nil
        let kHeads = config.permutesQK ? c.numKeyValueHeads : nil
        var t: [String: Target] = [
            "model.embed_tokens.weight": Target(name: "token_embd.weight", shape: [c.vocabSize, d], required: true),
            "model.norm.weight": Target(name: "output_norm.weight", shape: [d], required: true),
        ]
        if !c.tieWordEmbeddings {
            t["lm_head.weight"] = Target(name: "output.weight", shape: [c.vocabSize, d], required: true)
        }
        for l in 0..<c.numHiddenLayers {
            let hf = "model.layers.\(l).", gg = "blk.\(l)."
            func add(_ from: String, _ to: String, _ shape: [Int], heads: Int? = nil, required: Bool = true) {
                t[hf + from] = Target(name: gg + to, shape: shape, permuteHeads: heads, required: required)
            }
            add("input_layernorm.weight", "attn_norm.weight", [d])
            add("post_attention_layernorm.weight", "ffn_norm.weight", [d])
            add("self_attn.q_proj.weight", "attn_q.weight", [q, d], heads: qHeads)
            add("self_attn.k_proj.weight", "attn_k.weight", [kv, d], heads: kHeads)
            add("self_attn.v_proj.weight", "attn_v.weight", [kv, d])
            add("self_attn.o_proj.weight", "attn_output.weight", [d, q])
            add("self_attn.q_proj.bias", "attn_q.bias", [q], heads: qHeads, required: c.attentionBias)
            add("self_attn.k_proj.bias", "attn_k.bias", [kv], heads: kHeads, required: c.attentionBias)
            add("self_attn.v_proj.bias", "attn_v.bias", [kv], required: c.attentionBias)
            add("mlp.gate_proj.weight", "ffn_gate.weight", [f, d])
            add("mlp.up_proj.weight", "ffn_up.weight", [f, d])
            add("mlp.down_proj.weight", "ffn_down.weight", [d, f])
        }
        return t
    }

    private func tensor(_ info: SafeTensorInfo, in file: SafeTensorsFile, as target: Target) throws -> SourceTensor {
        guard [DType.f32, .f16, .bf16].contains(info.dtype) else {
            throw QuantizeError.unsupportedInput(
                path: file.path, reason: "tensor \(info.name) has dtype \(info.dtype.rawValue); only F32, F16 and BF16 are read")
        }
        guard info.shape == target.shape else {
            throw QuantizeError.unsupportedInput(
                path: file.path, reason: "tensor \(info.name) has shape \(info.shape), config.json implies \(target.shape)")
        }
        let dtype = info.dtype, count = info.elementCount
        let rows = target.shape[0], rowBytes = info.byteCount / max(rows, 1)
        let order = target.permuteHeads.map { RowPermutation(rows: rows, heads: $0) }
        // Bytes in GGUF row order: the mapping itself, or a reordered copy.
        func reordered(_ into: UnsafeMutableRawBufferPointer) {
            let src = file.data(for: info)
            for r in 0..<rows {
                let from = order!.sourceRow(r) * rowBytes
                into.baseAddress!.advanced(by: r * rowBytes)
                    .copyMemory(from: src.baseAddress!.advanced(by: from), byteCount: rowBytes)
            }
        }
        let decode: () throws -> [Float] = {
            guard order != nil else { return SafeTensorsConversion.floats(file.data(for: info), dtype: dtype, count: count) }
            let tmp = UnsafeMutableRawBufferPointer.allocate(byteCount: info.byteCount, alignment: 64)
            defer { tmp.deallocate() }
            reordered(tmp)
            return SafeTensorsConversion.floats(UnsafeRawBufferPointer(tmp), dtype: dtype, count: count)
        }
        if target.shape.count == 1 && (dtype != .f32 || order != nil) {
            let cache = BytesCache()
            return SourceTensor(name: target.name, shape: target.shape, type: .f32,
                                raw: { try cache.bytes { try BytesCache.floatBytes(decode()) } }, decode: decode)
        }
        guard order != nil else {
            return SourceTensor(name: target.name, shape: target.shape, type: dtype,
                                raw: { file.data(for: info) }, decode: decode)
        }
        let cache = BytesCache()
        return SourceTensor(name: target.name, shape: target.shape, type: dtype, raw: {
            cache.bytes {
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: info.byteCount, alignment: 64)
                reordered(buffer)
                return buffer
            }
        }, decode: decode)
    }

    /// A 1-D F32 tensor held in memory.
    static func f32Vector(_ name: String, _ values: [Float]) -> SourceTensor {
        let cache = BytesCache()
        return SourceTensor(name: name, shape: [values.count], type: .f32,
                            raw: { cache.bytes { BytesCache.floatBytes(values) } }, decode: { values })
    }
}

/// llama.cpp's Q/K permutation: within each head, the rows `[first half | second half]`
/// (rotate-half RoPE pairs row i with row i + half) become interleaved, pairing rows
/// 2i and 2i + 1. As `w.reshape(heads, 2, rows / heads / 2, cols).swapaxes(1, 2)`.
struct RowPermutation {
    let rowsPerHead: Int

    init(rows: Int, heads: Int) {
        precondition(heads > 0 && rows % heads == 0 && (rows / heads) % 2 == 0, "rows do not split into even heads")
        rowsPerHead = rows / heads
    }

    /// The Hugging Face row that GGUF row `row` comes from.
    func sourceRow(_ row: Int) -> Int {
        let head = row / rowsPerHead, k = row % rowsPerHead
        return head * rowsPerHead + (k % 2) * (rowsPerHead / 2) + k / 2
    }
}

/// Bytes built on first use and kept until the cache is released (with its source).
final class BytesCache: @unchecked Sendable {
    private let lock = NSLock()
    private var buffer: UnsafeMutableRawBufferPointer?

    /// The cached bytes, making them with `make` (which hands over an allocated buffer) once.
    func bytes(_ make: () throws -> UnsafeMutableRawBufferPointer) rethrows -> UnsafeRawBufferPointer {
        lock.lock()
        defer { lock.unlock() }
        if buffer == nil { buffer = try make() }
        return UnsafeRawBufferPointer(buffer!)
    }

    /// `values` as little-endian f32 bytes in a new buffer.
    static func floatBytes(_ values: [Float]) -> UnsafeMutableRawBufferPointer {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(values.count * 4, 1), alignment: 64)
        for (i, v) in values.enumerated() {
            buffer.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self)
        }
        return UnsafeMutableRawBufferPointer(rebasing: buffer[0..<values.count * 4])
    }

    deinit { buffer?.deallocate() }
}
