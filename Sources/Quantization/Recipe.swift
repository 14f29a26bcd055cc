import Foundation
import Tensors

/// A named quantization mix as `llama-quantize` users know them (`Q4_K_M`, `Q3_K_S`, …):
/// a base type plus rules that give some tensors more bits.
///
/// The rules follow llama.cpp's choices for dense models (facts carried over from its
/// `llama_tensor_get_type`): the output head (and the tied embedding) gets Q6_K — or Q8_0
/// when its rows are not a multiple of the k-quant block; in the `_M`/`_L` mixes `attn_v`
/// and `ffn_down` get more bits in the first and last eighth of the layers and every third
/// layer between (`usesMoreBits`); 1-D tensors stay F32. A tensor whose row length does not
/// fit the chosen block falls back as llama.cpp does (Q2_K/Q3_K → Q4_0, Q4_K → Q5_0,
/// Q5_K → Q5_1, Q6_K → Q8_0, IQ4_XS → IQ4_NL, then F16).
public enum QuantMix: String, CaseIterable, Sendable, Codable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16"
    case q8_0 = "Q8_0", q4_0 = "Q4_0", q4_1 = "Q4_1", q5_0 = "Q5_0", q5_1 = "Q5_1"
    case q2_K = "Q2_K", q2_K_S = "Q2_K_S", q3_K_S = "Q3_K_S", q3_K_M = "Q3_K_M", q3_K_L = "Q3_K_L"
    case q4_K_S = "Q4_K_S", q4_K_M = "Q4_K_M", q5_K_S = "Q5_K_S", q5_K_M = "Q5_K_M", q6_K = "Q6_K"
    case iq4_nl = "IQ4_NL", iq4_xs = "IQ4_XS"

    /// Parses a mix name case-insensitively (`q4_k_m`, `Q4_K_M`; `Q4_K` means `Q4_K_M`,
    /// `Q3_K` means `Q3_K_M`, `Q5_K` means `Q5_K_M`, as in llama-quantize).
    public init?(name: String) {
        let n = name.uppercased()
        let aliases = ["Q3_K": "Q3_K_M", "Q4_K": "Q4_K_M", "Q5_K": "Q5_K_M"]
        guard let m = QuantMix(rawValue: aliases[n] ?? n) else { return nil }
        self = m
    }

    /// The type most tensors get.
    public var baseType: DType {
        switch self {
        case .f32: return .f32
        case .f16: return .f16
        case .bf16: return .bf16
        case .q8_0: return .q8_0
        case .q4_0: return .q4_0
        case .q4_1: return .q4_1
        case .q5_0: return .q5_0
        case .q5_1: return .q5_1
        case .q2_K, .q2_K_S: return .q2_K
        case .q3_K_S, .q3_K_M, .q3_K_L: return .q3_K
        case .q4_K_S, .q4_K_M: return .q4_K
        case .q5_K_S, .q5_K_M: return .q5_K
        case .q6_K: return .q6_K
        case .iq4_nl: return .iq4_nl
        case .iq4_xs: return .iq4_xs
        }
    }

    /// llama.cpp's `general.file_type` number for this mix.
    public var fileType: Int {
        switch self {
        case .f32: return 0
        case .f16: return 1
        case .q4_0: return 2
        case .q4_1: return 3
        case .q8_0: return 7
        case .q5_0: return 8
        case .q5_1: return 9
        case .q2_K: return 10
        case .q3_K_S: return 11
        case .q3_K_M: return 12
        case .q3_K_L: return 13
        case .q4_K_S: return 14
        case .q4_K_M: return 15
        case .q5_K_S: return 16
        case .q5_K_M: return 17
        case .q6_K: return 18
        case .q2_K_S: return 21
        case .iq4_nl: return 25
        case .iq4_xs: return 30
        case .bf16: return 32
        }
    }
}

/// The role of a tensor in a Llama-family model, from its llama.cpp name.
public enum TensorRole: String, Sendable, Codable {
    case tokenEmbedding, output, attentionQ, attentionK, attentionV, attentionOutput, ffnGate, ffnUp, ffnDown, other

    /// The role of a GGUF tensor name (`blk.N.attn_v.weight` → `.attentionV`).
    public init(name: String) {
        if name == "output.weight" { self = .output; return }
        if name == "token_embd.weight" { self = .tokenEmbedding; return }
        let table: [(String, TensorRole)] = [
            ("attn_v.weight", .attentionV), ("attn_k.weight", .attentionK), ("attn_q.weight", .attentionQ),
            ("attn_output.weight", .attentionOutput), ("ffn_gate", .ffnGate), ("ffn_up", .ffnUp), ("ffn_down", .ffnDown),
        ]
        self = table.first { name.contains($0.0) }?.1 ?? .other
    }
}

/// Decides the storage type of every tensor of a model: a mix, user overrides by name
/// pattern, and the fallbacks that keep each choice compatible with the row length.
public struct QuantRecipe: Sendable {
    /// A user override: tensors whose name matches `pattern` (a regular expression,
    /// searched anywhere in the name) get `type`.
    public struct Override: Sendable {
        /// The pattern as written.
        public var pattern: String
        /// The type it assigns.
        public var type: DType
        let regex: NSRegularExpression

        /// Parses `PATTERN=TYPE` (as `--tensor-type ffn_down=Q6_K`).
        public init(parsing text: String) throws {
            guard let eq = text.lastIndex(of: "="), eq != text.startIndex else {
                throw RecipeError.badOverride(text, reason: "expected PATTERN=TYPE")
            }
            let pat = String(text[..<eq]), typeName = String(text[text.index(after: eq)...]).uppercased()
            guard let t = DType(rawValue: typeName), t.ggmlTypeID != nil else {
                throw RecipeError.badOverride(text, reason: "unknown type '\(typeName)'")
            }
            do { regex = try NSRegularExpression(pattern: pat) } catch {
                throw RecipeError.badOverride(text, reason: "invalid pattern '\(pat)'")
            }
            pattern = pat
            type = t
        }

        func matches(_ name: String) -> Bool {
            regex.firstMatch(in: name, range: NSRange(name.startIndex..., in: name)) != nil
        }
    }

    /// The named mix.
    public var mix: QuantMix
    /// Overrides, first match wins; they take precedence over the mix's rules.
    public var overrides: [Override]
    /// Whether the embedding and output share one tensor (no `output.weight`).
    public var tiedEmbeddings: Bool
    /// Number of transformer blocks (for the layer-dependent rules).
    public var layerCount: Int
    /// Query heads per KV head (llama.cpp's `n_gqa`).
    public var gqa: Int

    /// A recipe for a model with `layerCount` blocks.
    public init(mix: QuantMix, overrides: [Override] = [], tiedEmbeddings: Bool, layerCount: Int, gqa: Int = 1) {
        self.mix = mix
        self.overrides = overrides
        self.tiedEmbeddings = tiedEmbeddings
        self.layerCount = layerCount
        self.gqa = gqa
    }

    /// One tensor's decision with the reason, for `quantize --dry-run` and logs.
    public struct Choice: Sendable, Equatable {
        /// The type the tensor gets.
        public var type: DType
        /// Why: "1-D", "override <pattern>", "mix", "more bits (layer N)", "fallback from X".
        public var reason: String
        /// True for tensors the recipe never quantizes (1-D, norms): a float input keeps its type.
        public var keepsInputType = false
    }

    /// The type tensor `name` with row-major `shape` (`[rows, rowLength]` for a matrix) gets.
    public func choose(name: String, shape: [Int]) -> Choice {
        guard shape.count >= 2, name.hasSuffix("weight"), !name.contains("_norm.weight") else {
            return Choice(type: .f32, reason: "1-D or norm: not quantized", keepsInputType: true)
        }
        var type = mix.baseType
        var reason = "mix \(mix.rawValue)"
        if let o = overrides.first(where: { $0.matches(name) }) {
            type = o.type
            reason = "override \(o.pattern)"
        } else if mix.baseType.isQuantized {
            if let t = ruleType(name: name, rowLength: shape.last!) {
                if t != type { reason = "mix \(mix.rawValue): more bits for \(TensorRole(name: name).rawValue)" }
                type = t
            }
        }
        let fitted = Self.fallback(type, rowLength: shape.last!)
        if fitted != type {
            reason += "; row \(shape.last!) not a multiple of \(type.blockSize): \(type.rawValue) → \(fitted.rawValue)"
        }
        return Choice(type: fitted, reason: reason)
    }

    /// llama.cpp's layer rule for the `_M` mixes: the first and last eighth, and every third layer between.
    public static func usesMoreBits(layer i: Int, of n: Int) -> Bool {
        i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
    }

    private func ruleType(name: String, rowLength: Int) -> DType? {
        let role = TensorRole(name: name)
        let layer = Self.layerIndex(name) ?? 0, n = layerCount
        if role == .output || (tiedEmbeddings && role == .tokenEmbedding) {
            if rowLength % mix.baseType.blockSize != 0 { return .q8_0 }
            return mix.baseType == .q8_0 ? .q8_0 : .q6_K
        }
        switch (role, mix) {
        case (.attentionV, .q2_K): return gqa >= 4 ? .q4_K : .q3_K
        case (.attentionV, .q2_K_S): return gqa >= 4 ? .q4_K : nil
        case (.attentionV, .q3_K_M): return layer < 2 ? .q5_K : .q4_K
        case (.attentionV, .q3_K_L): return .q5_K
        case (.attentionV, .iq4_nl), (.attentionV, .iq4_xs): return gqa >= 4 ? .q5_K : nil
        case (.attentionV, .q4_K_M), (.attentionV, .q5_K_M): return Self.usesMoreBits(layer: layer, of: n) ? .q6_K : nil
        case (.attentionV, .q4_K_S): return layer < 4 ? .q5_K : nil
        case (.ffnDown, .q2_K): return .q3_K
        case (.ffnDown, .q2_K_S): return layer < n / 8 ? .q4_K : nil
        case (.ffnDown, .q3_K_M): return layer < n / 16 ? .q5_K : .q4_K
        case (.ffnDown, .q3_K_L): return .q5_K
        case (.ffnDown, .q4_K_M), (.ffnDown, .q5_K_M): return Self.usesMoreBits(layer: layer, of: n) ? .q6_K : nil
        case (.ffnDown, .q4_K_S): return layer < n / 8 ? .q5_K : nil
        case (.ffnDown, .iq4_nl), (.ffnDown, .iq4_xs): return layer < n / 8 ? .q5_K : nil
        case (.attentionOutput, .q2_K): return .q3_K
        case (.attentionOutput, .q3_K_M): return .q4_K
        case (.attentionOutput, .q3_K_L): return .q5_K
        default: return nil
        }
    }

    /// The block index in `blk.N.…`.
    public static func layerIndex(_ name: String) -> Int? {
        guard name.hasPrefix("blk.") else { return nil }
        return Int(name.dropFirst(4).prefix { $0.isNumber })
    }

    /// The type to use when `type`'s block does not divide `rowLength` (llama.cpp's fallbacks).
    public static func fallback(_ type: DType, rowLength: Int) -> DType {
        if rowLength % type.blockSize == 0 { return type }
        let next: DType
        switch type {
        case .q2_K, .q3_K: next = .q4_0
        case .q4_K: next = .q5_0
        case .q5_K: next = .q5_1
        case .q6_K: next = .q8_0
        case .iq4_xs: next = .iq4_nl
        default: next = .f16
        }
        return rowLength % next.blockSize == 0 ? next : .f16
    }
}

/// A malformed recipe option.
public enum RecipeError: Error, CustomStringConvertible, Equatable {
    /// A `--tensor-type` value that does not parse.
    case badOverride(String, reason: String)
    /// An unknown mix name.
    case unknownMix(String)

    public var description: String {
        switch self {
        case let .badOverride(text, reason): return "--tensor-type '\(text)': \(reason)"
        case let .unknownMix(name):
            return "unknown type '\(name)'; known: " + QuantMix.allCases.map(\.rawValue).joined(separator: ", ")
        }
    }
}
