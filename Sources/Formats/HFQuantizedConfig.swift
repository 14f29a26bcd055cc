// The `quantization_config` of GPTQ and AWQ Hugging Face folders, and the JSON text this
// project writes for them.

import Foundation
import Quantization

/// The layouts a quantized Hugging Face folder can have.
///
/// - `gptq`: GPTQ with `checkpoint_format: "gptq"` — what transformers, optimum, GPTQModel
///   and vLLM load by default. Zero points are stored **minus one** (AutoGPTQ's historical
///   "v1" convention: the kernels add 1 back), so a zero point of 0 cannot be stored; the
///   writer refuses one rather than write a value every reader would misread.
/// - `gptqV2`: GPTQ with `checkpoint_format: "gptq_v2"` (GPTQModel): zero points stored
///   as they are. Fewer readers know it (GPTQModel; vLLM only recently).
/// - `awq`: AutoAWQ's GEMM layout (`version: "gemm"`), 4 bits, zero points as they are.
/// - `bitsAndBytes`: bitsandbytes' LLM.int8() layout (`quant_method: "bitsandbytes"`,
///   `load_in_8bit`), what transformers writes for `Linear8bitLt` modules: `weight` I8
///   `[out, in]` and `SCB` F32 `[out]` (each row's max |w|; w ≈ weight · SCB / 127), plus
///   `weight_format` U8 `[]` = 0 (row-major). As a `GroupQuantizedMatrix`: 8 bits, one group
///   per row, symmetric (codes = weight + 128), scale SCB / 127. Outlier input columns
///   (`llm_int8_threshold`) are chosen at run time from each batch's activations.
public enum HFQuantizedFormat: String, Sendable, CaseIterable, Equatable {
    /// GPTQ, checkpoint format v1 (zero points stored minus one).
    case gptq
    /// GPTQ, checkpoint format v2 (zero points stored as they are).
    case gptqV2 = "gptq_v2"
    /// AWQ, GEMM layout.
    case awq
    /// bitsandbytes LLM.int8(): int8 rows with f32 absmax scales.
    case bitsAndBytes = "bitsandbytes"

    /// `quant_method` in `quantization_config`.
    public var quantMethod: String {
        switch self {
        case .gptq, .gptqV2: return "gptq"
        case .awq: return "awq"
        case .bitsAndBytes: return "bitsandbytes"
        }
    }

    /// The `quantization_config` key listing the modules kept in floating point.
    var notQuantizedKey: String {
        switch self {
        case .gptq, .gptqV2: return "dynamic"
        case .awq: return "modules_to_not_convert"
        case .bitsAndBytes: return "llm_int8_skip_modules"
        }
    }

    /// The suffix of the tensor whose presence marks a module as quantized.
    var quantizedMarker: String { self == .bitsAndBytes ? ".SCB" : ".qweight" }

    /// The tensor suffixes a quantized module may have.
    var moduleSuffixes: [String] {
        self == .bitsAndBytes ? [".weight", ".SCB", ".weight_format"] : [".qweight", ".qzeros", ".scales", ".g_idx"]
    }

    /// What is subtracted from a zero point before packing it (and added after unpacking).
    var zeroPointOffset: Int32 { self == .gptq ? 1 : 0 }
}

/// A folder's `quantization_config`: the settings every quantized layer shares.
public struct HFQuantizationConfig: Sendable, Equatable {
    /// The layout.
    public var format: HFQuantizedFormat
    /// Bits per code.
    public var bits: Int
    /// Input columns per group; `-1` for one group per row (per-channel).
    public var groupSize: Int
    /// GPTQ `sym`: every zero point is `2^(bits−1)`.
    public var symmetric: Bool
    /// GPTQ `desc_act` (act-order): `g_idx` is not the identity grouping.
    public var descAct: Bool
    /// Hugging Face module names (`model.layers.0.mlp.down_proj`) kept in floating point.
    public var notQuantized: [String]
    /// GPTQ's `modules_in_block_to_quantize` (module suffixes such as `mlp.up_proj`, the
    /// same in every block), written when some projections stay in floating point and the
    /// same ones do in every block: transformers/optimum read only this list, not `dynamic`.
    public var modulesInBlockToQuantize: [String]?
    /// bitsandbytes' `llm_int8_threshold`: input columns in which some token's |x| reaches
    /// it are multiplied in floating point at run time (0: none).
    public var outlierThreshold: Float = 6

    /// A configuration from its parts.
    public init(format: HFQuantizedFormat, bits: Int, groupSize: Int, symmetric: Bool, descAct: Bool = false,
                notQuantized: [String] = []) {
        self.format = format
        self.bits = bits
        self.groupSize = groupSize
        self.symmetric = symmetric
        self.descAct = descAct
        self.notQuantized = notQuantized
        modulesInBlockToQuantize = nil
    }

    /// The number of groups a row of `columns` inputs has.
    public func groups(columns: Int) -> Int {
        groupSize == -1 ? 1 : (columns + groupSize - 1) / groupSize
    }

    /// Parses a `quantization_config` object (or a `quantize_config.json` document).
    /// - Throws: `HFQuantizedError.invalidCheckpoint` naming `path`.
    public init(json q: JSONValue, path: String) throws {
        func fail(_ reason: String) -> HFQuantizedError { .invalidCheckpoint(path: path, reason: reason) }
        guard case .object = q else { throw fail("quantization_config is not an object") }
        let method = q["quant_method"]?.stringValue?.lowercased() ?? (q["version"] != nil ? "awq" : "gptq")
        func int(_ keys: String...) -> Int? { keys.lazy.compactMap { q[$0]?.intValue }.first }
        switch method {
        case "gptq":
            let format = q["checkpoint_format"]?.stringValue ?? q["format"]?.stringValue ?? "gptq"
            switch format {
            case "gptq": self.format = .gptq
            case "gptq_v2": self.format = .gptqV2
            default: throw fail("GPTQ checkpoint_format '\(format)' is not supported (gptq, gptq_v2)")
            }
            symmetric = q["sym"]?.boolValue ?? true
            descAct = q["desc_act"]?.boolValue ?? false
            if let pack = q["pack_dtype"]?.stringValue, pack != "int32" {
                throw fail("pack_dtype '\(pack)' is not supported (int32)")
            }
        case "awq":
            let version = (q["version"]?.stringValue ?? "gemm").lowercased()
            guard version == "gemm" else { throw fail("AWQ version '\(version)' is not supported (gemm)") }
            format = .awq
            symmetric = false
            descAct = false
            if q["zero_point"]?.boolValue == false { throw fail("AWQ without zero points is not supported") }
        case "bitsandbytes":
            func flag(_ key: String) -> Bool { q[key]?.boolValue ?? q["_" + key]?.boolValue ?? false }
            guard !flag("load_in_4bit") else {
                throw fail("bitsandbytes 4-bit (NF4/FP4) checkpoints are not supported; 8-bit (load_in_8bit) are")
            }
            guard flag("load_in_8bit") else { throw fail("a bitsandbytes quantization_config without load_in_8bit") }
            format = .bitsAndBytes
            bits = 8
            groupSize = -1
            symmetric = true
            descAct = false
            let t = q["llm_int8_threshold"]?.doubleValue ?? 6
            guard t.isFinite, t >= 0 else { throw fail("llm_int8_threshold \(t) is not a non-negative number") }
            outlierThreshold = Float(t)
            notQuantized = (q["llm_int8_skip_modules"]?.arrayValue ?? []).compactMap(\.stringValue)
            modulesInBlockToQuantize = nil
            return
        default:
            throw fail("quant_method '\(method)' is not supported (gptq, awq, bitsandbytes)")
        }
        guard let b = int("bits", "w_bit") else { throw fail("quantization_config has no bits") }
        guard GroupQuantizedMatrix.supportedBits.contains(b), format != .awq || b == 4 else {
            throw fail("\(b) bits are not supported (\(format == .awq ? "AWQ: 4" : "GPTQ: 2, 3, 4, 8"))")
        }
        bits = b
        guard let g = int("group_size", "q_group_size"), g == -1 || (g > 0 && g <= 1 << 20) else {
            throw fail("quantization_config has no usable group_size")
        }
        groupSize = g
        var skipped: [String] = []
        for item in q["modules_to_not_convert"]?.arrayValue ?? [] {
            if let s = item.stringValue { skipped.append(s) }
        }
        notQuantized = skipped
        modulesInBlockToQuantize = q["modules_in_block_to_quantize"]?.arrayValue?
            .flatMap { $0.arrayValue ?? [] }.compactMap(\.stringValue)
    }

    /// The `quantization_config` object written into `config.json`.
    func json(quantizer: String) -> JSONValue {
        var m: [(String, JSONValue)]
        switch format {
        case .awq:
            m = [("bits", .int(bits)), ("group_size", .int(groupSize)),
                 ("modules_to_not_convert", notQuantized.isEmpty ? .null : .array(notQuantized.map { .string($0) })),
                 ("quant_method", .string("awq")), ("version", .string("gemm")), ("zero_point", .bool(true))]
        case .gptq, .gptqV2:
            m = gptqMembers(quantizer: quantizer)
        case .bitsAndBytes:
            // transformers' BitsAndBytesConfig.to_dict(); the head stays in floating point.
            let skip: JSONValue = notQuantized.isEmpty ? .null : .array((notQuantized + ["lm_head"]).map { .string($0) })
            m = [("_load_in_4bit", .bool(false)), ("_load_in_8bit", .bool(true)),
                 ("bnb_4bit_compute_dtype", .string("float32")), ("bnb_4bit_quant_storage", .string("uint8")),
                 ("bnb_4bit_quant_type", .string("fp4")), ("bnb_4bit_use_double_quant", .bool(false)),
                 ("llm_int8_enable_fp32_cpu_offload", .bool(false)), ("llm_int8_has_fp16_weight", .bool(false)),
                 ("llm_int8_skip_modules", skip), ("llm_int8_threshold", .float(outlierThreshold)),
                 ("load_in_4bit", .bool(false)), ("load_in_8bit", .bool(true)), ("quant_method", .string("bitsandbytes"))]
        }
        return .object(m.map { JSONMember(key: $0.0, value: $0.1) })
    }

    /// `quantize_config.json` (AutoGPTQ's own copy of the settings); GPTQ only.
    func quantizeConfigJSON(quantizer: String) -> JSONValue {
        .object(gptqMembers(quantizer: quantizer).map { JSONMember(key: $0.0, value: $0.1) })
    }

    private func gptqMembers(quantizer: String) -> [(String, JSONValue)] {
        // GPTQModel's per-module overrides: "-:" + a regex matched at the start of a module
        // name leaves that module unquantized.
        let dynamic: JSONValue = notQuantized.isEmpty ? .null : .object(notQuantized.map {
            JSONMember(key: "-:^" + NSRegularExpression.escapedPattern(for: $0) + "$", value: .object([]))
        })
        let members: [(String, JSONValue)] = [("bits", .int(bits)), ("checkpoint_format", .string(format.rawValue)), ("damp_percent", .number("0.01")),
                ("desc_act", .bool(descAct)), ("dynamic", dynamic), ("group_size", .int(groupSize)),
                ("lm_head", .bool(false)),
                ("modules_in_block_to_quantize", modulesInBlockToQuantize.map { .array([.array($0.map { .string($0) })]) } ?? .null),
                ("meta", .object([JSONMember(key: "quantizer", value: .array([.string(quantizer)]))])),
                ("pack_dtype", .string("int32")), ("quant_method", .string("gptq")), ("static_groups", .bool(false)),
                ("sym", .bool(symmetric)), ("true_sequential", .bool(true))]
        return members.sorted { $0.0 < $1.0 }
    }
}

/// Why a quantized Hugging Face folder could not be read or written. Each message is one
/// line naming the file (or tensor) and what is wrong.
public enum HFQuantizedError: Error, CustomStringConvertible, Equatable {
    /// A file of the folder is missing, corrupt or not supported.
    case invalidCheckpoint(path: String, reason: String)
    /// The layers given to the writer cannot be stored in the chosen format.
    case cannotExport(reason: String)

    /// The one-line message.
    public var description: String {
        switch self {
        case let .invalidCheckpoint(path, reason): return "\(path): \(reason)"
        case let .cannotExport(reason): return "cannot export: \(reason)"
        }
    }
}

extension JSONValue {
    /// An integer literal.
    static func int(_ v: Int) -> JSONValue { .number(String(v)) }

    /// A float as Python prints it (the shortest decimal of the f32 value, `1e-05`,
    /// `100000.0`).
    static func float(_ v: Float) -> JSONValue {
        let d = Double("\(v)") ?? Double(v)
        return .number(d.description)
    }

    /// The value as JSON text. `indent` > 0 gives Python's `json.dumps(indent=…)` layout
    /// with `ensure_ascii` escaping (transformers' `config.json`); 0 gives compact text with
    /// UTF-8 kept as it is (`tokenizer.json`). Members keep their order.
    func text(indent: Int) -> [UInt8] {
        var out: [UInt8] = []
        append(to: &out, indent: indent, level: 0)
        if indent > 0 { out.append(0x0A) }
        return out
    }

    private func append(to out: inout [UInt8], indent: Int, level: Int) {
        func newline(_ level: Int) {
            guard indent > 0 else { return }
            out.append(0x0A)
            out += repeatElement(UInt8(ascii: " "), count: indent * level)
        }
        func string(_ s: String) {
            if indent > 0 { JSONText.appendPythonString(s, to: &out) } else { JSONText.appendSerdeString(s, to: &out) }
        }
        switch self {
        case .null: out += Array("null".utf8)
        case .bool(let b): out += Array((b ? "true" : "false").utf8)
        case .number(let n): out += Array(n.utf8)
        case .string(let s): string(s)
        case .array(let items):
            guard !items.isEmpty else { out += Array("[]".utf8); return }
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                newline(level + 1)
                item.append(to: &out, indent: indent, level: level + 1)
            }
            newline(level)
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            guard !members.isEmpty else { out += Array("{}".utf8); return }
            out.append(UInt8(ascii: "{"))
            for (i, m) in members.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                newline(level + 1)
                string(m.key)
                out += indent > 0 ? Array(": ".utf8) : [UInt8(ascii: ":")]
                m.value.append(to: &out, indent: indent, level: level + 1)
            }
            newline(level)
            out.append(UInt8(ascii: "}"))
        }
    }
}
