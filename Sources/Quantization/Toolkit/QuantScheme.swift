import Tensors

/// How a weight matrix (and optionally its input activations) is quantized, written as a
/// short string such as `int4-asym-g128`, `nf4-b64-dq` or `w8a8-dynamic`.
///
/// The string form is canonical: `QuantScheme(parsing: s.description) == s` for every valid
/// scheme. Grammar (case-insensitive when parsed):
///
/// ```
/// scheme  := weights ["-dq"] ["-a8-" ("dynamic" | "static")] ["-f16" | "-bf16"]
///          | "w8a8-" ("dynamic" | "static") ["-f16" | "-bf16"]
/// weights := "int" B "-" ("sym" | "asym") "-" gran      B in 2...8
///          | ("nf4" | "fp4") "-" gran                    blocks usually written bN
///          | "kmeans" B "-" gran
///          | ("fp8e4m3" | "fp8e5m2") "-" gran
/// gran    := "tensor" | "channel" | "g" N | "b" N       N in 1...65536
/// ```
///
/// `w8a8-dynamic` is shorthand for `int8-sym-channel-a8-dynamic`: int8 symmetric weights per
/// output channel with int8 activations scaled per token at run time; `w8a8-static` uses one
/// calibrated activation scale per layer. `-dq` (double quantization of the block absmax
/// values, as QLoRA does) applies to `nf4` and `fp4` only. Scales are stored as f32 unless a
/// `-f16`/`-bf16` suffix says otherwise.
public struct QuantScheme: Hashable, Sendable, CustomStringConvertible {
    /// The set of values one weight can take (before scaling).
    public enum Codebook: Hashable, Sendable {
        /// Uniform integer grid; see `AffineGrid` for the code ranges.
        case integer(bits: Int, symmetric: Bool)
        /// The 16 QLoRA normal-float levels in [-1, 1], scaled by the block absmax.
        case nf4
        /// FP4 E2M1 values {0, 0.5, 1, 1.5, 2, 3, 4, 6} with sign, scaled by absmax / 6.
        case fp4
        /// 2^bits levels fitted by Lloyd's k-means to each group (per output channel usually).
        case kmeans(bits: Int)
        /// 8-bit float with 4 exponent and 3 mantissa bits (max 448, no infinity).
        case fp8E4M3
        /// 8-bit float with 5 exponent and 2 mantissa bits (max 57344).
        case fp8E5M2
    }

    /// Which weights share one scale (and zero point or codebook).
    public enum Granularity: Hashable, Sendable {
        /// One scale for the whole matrix.
        case tensor
        /// One scale per output channel (matrix row).
        case channel
        /// One scale per `g` consecutive input columns of a row; the last group of a row is
        /// shorter when `g` does not divide the row length.
        case group(Int)

        /// The number of scale groups in one row of `columns` weights (1 for `tensor`).
        public func groupsPerRow(columns: Int) -> Int {
            switch self {
            case .tensor, .channel: return 1
            case .group(let g): return columns == 0 ? 0 : (columns + g - 1) / g
            }
        }

        /// The number of columns in each full group of a row of `columns` weights.
        public func groupLength(columns: Int) -> Int {
            switch self {
            case .tensor, .channel: return columns
            case .group(let g): return min(g, columns)
            }
        }
    }

    /// The number format scales are stored in; a scale is rounded to it before it is used.
    public enum ScaleType: String, Hashable, Sendable {
        /// IEEE single precision (no rounding).
        case f32
        /// IEEE half precision.
        case f16
        /// bfloat16.
        case bf16

        /// The smallest positive value of this type that is ≥ `scale` (for `scale` > 0), so
        /// that a range computed in f32 stays covered after rounding; 0 stays 0. A scale
        /// beyond the type's largest finite value saturates to it.
        public func stored(_ scale: Float) -> Float {
            guard scale > 0, scale.isFinite else { return scale }
            switch self {
            case .f32:
                return scale
            case .f16:
                var h = Half.floatToF16(scale)
                if h >= 0x7C00 { return Half.f16ToFloat(0x7BFF) }
                if Half.f16ToFloat(h) < scale { h += 1 }
                return Half.f16ToFloat(h)
            case .bf16:
                var h = Half.floatToBF16(scale)
                if h >= 0x7F80 { return Half.bf16ToFloat(0x7F7F) }
                if Half.bf16ToFloat(h) < scale { h += 1 }
                return Half.bf16ToFloat(h)
            }
        }

        /// Bits one stored scale takes.
        public var bits: Int { self == .f32 ? 32 : 16 }
    }

    /// Whether (and how) the layer's input activations are quantized too.
    public enum Activations: Hashable, Sendable {
        /// Weights only; activations stay float.
        case none
        /// Int8 activations with a symmetric scale computed per token at run time.
        case dynamic
        /// Int8 activations with one symmetric scale per layer, calibrated beforehand.
        case `static`
    }

    /// The values one weight can take.
    public var codebook: Codebook
    /// Which weights share a scale.
    public var granularity: Granularity
    /// How scales are stored.
    public var scaleType: ScaleType
    /// Whether the per-block absmax values are themselves quantized (8-bit, blocks of 256);
    /// `nf4`/`fp4` only.
    public var doubleQuant: Bool
    /// Whether activations are quantized too.
    public var activations: Activations

    /// A scheme from its parts; call `validate()` (or use `init(parsing:)`) to check it.
    public init(codebook: Codebook, granularity: Granularity, scaleType: ScaleType = .f32,
                doubleQuant: Bool = false, activations: Activations = .none) {
        self.codebook = codebook
        self.granularity = granularity
        self.scaleType = scaleType
        self.doubleQuant = doubleQuant
        self.activations = activations
    }

    /// The largest group size accepted.
    public static let maxGroupSize = 65536

    /// What `init(parsing:)` accepts, with examples; part of every parse error message.
    public static let grammarSummary = """
        valid schemes: int<2-8>-<sym|asym>-<g<N>|channel|tensor>, nf4-b<N>[-dq], \
        fp4-b<N>[-dq], kmeans<2-8>-<channel|tensor|g<N>>, fp8e4m3-<channel|tensor|g<N>>, \
        fp8e5m2-<channel|tensor|g<N>>, w8a8-<dynamic|static>; group/block size N in \
        1-\(maxGroupSize); optional -f16 or -bf16 stores scales in that type \
        (examples: int4-asym-g128, int8-sym-channel, nf4-b64-dq, kmeans4-channel, \
        fp8e4m3-tensor, w8a8-dynamic)
        """

    /// Checks that the parts form a scheme this toolkit implements.
    /// - Throws: `QuantSchemeError` naming what is wrong and listing what is valid.
    public func validate() throws(QuantSchemeError) {
        if let why = problem {
            throw QuantSchemeError(message: "invalid quantization scheme '\(self)': \(why); \(Self.grammarSummary)")
        }
    }

    /// Why the parts do not form a valid scheme, or nil when they do.
    private var problem: String? {
        switch codebook {
        case .integer(let bits, _) where !(2...8).contains(bits):
            return "integer bits must be 2-8, got \(bits)"
        case .kmeans(let bits) where !(2...8).contains(bits):
            return "k-means bits must be 2-8, got \(bits)"
        default: break
        }
        if case .group(let g) = granularity, !(1...Self.maxGroupSize).contains(g) {
            return "group size must be 1-\(Self.maxGroupSize), got \(g)"
        }
        if doubleQuant {
            guard codebook == .nf4 || codebook == .fp4 else {
                return "-dq (double quantization) applies to nf4 and fp4 only"
            }
            guard case .group = granularity else { return "-dq needs block granularity (b<N>)" }
            guard scaleType == .f32 else { return "-dq stores its own 8-bit scales; drop -\(scaleType.rawValue)" }
        }
        return nil
    }

    /// Parses the short form (see the type's documentation); case-insensitive.
    /// - Throws: `QuantSchemeError` whose message names the problem and lists valid schemes.
    public init(parsing text: String) throws(QuantSchemeError) {
        let original = text
        func fail(_ why: String) -> QuantSchemeError {
            QuantSchemeError(message: "invalid quantization scheme '\(original)': \(why); \(Self.grammarSummary)")
        }
        var words = text.lowercased().split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        guard let head = words.first, !head.isEmpty else { throw fail("empty") }
        words.removeFirst()

        var scaleType = ScaleType.f32
        if let last = words.last, let t = ScaleType(rawValue: last) {
            scaleType = t
            words.removeLast()
        }

        func parseGranularity(_ word: String?) throws(QuantSchemeError) -> Granularity {
            guard let word else { throw fail("missing granularity (g<N>, b<N>, channel or tensor)") }
            switch word {
            case "tensor": return .tensor
            case "channel": return .channel
            default:
                guard let c = word.first, c == "g" || c == "b",
                      let n = Int(word.dropFirst()), word.dropFirst().allSatisfy(\.isASCII)
                else { throw fail("unknown granularity '\(word)'") }
                guard (1...Self.maxGroupSize).contains(n) else {
                    throw fail("group size must be 1-\(Self.maxGroupSize), got \(n)")
                }
                return .group(n)
            }
        }
        func parseBits(_ digits: Substring, _ prefix: String, _ what: String) throws(QuantSchemeError) -> Int {
            guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let b = Int(digits) else {
                throw fail("'\(head)' needs a bit width, as in \(prefix)4")
            }
            guard (2...8).contains(b) else { throw fail("\(what) bits must be 2-8, got \(b)") }
            return b
        }

        var codebook: Codebook
        var granularity: Granularity
        var activations = Activations.none
        var rest = words[...]
        if head == "w8a8" {
            guard let mode = rest.popFirst() else { throw fail("w8a8 needs -dynamic or -static") }
            switch mode {
            case "dynamic": activations = .dynamic
            case "static": activations = .static
            default: throw fail("w8a8 needs -dynamic or -static, got '\(mode)'")
            }
            codebook = .integer(bits: 8, symmetric: true)
            granularity = .channel
        } else {
            if head.hasPrefix("int") {
                let bits = try parseBits(head.dropFirst(3), "int", "integer")
                guard let sym = rest.popFirst(), sym == "sym" || sym == "asym" else {
                    throw fail("integer schemes need -sym or -asym after '\(head)'")
                }
                codebook = .integer(bits: bits, symmetric: sym == "sym")
            } else if head.hasPrefix("kmeans") {
                codebook = .kmeans(bits: try parseBits(head.dropFirst(6), "kmeans", "k-means"))
            } else {
                switch head {
                case "nf4": codebook = .nf4
                case "fp4": codebook = .fp4
                case "fp8e4m3": codebook = .fp8E4M3
                case "fp8e5m2": codebook = .fp8E5M2
                default: throw fail("unknown codebook '\(head)'")
                }
            }
            granularity = try parseGranularity(rest.popFirst())
        }
        var doubleQuant = false
        if rest.first == "dq" {
            doubleQuant = true
            rest.removeFirst()
        }
        if rest.first == "a8", head != "w8a8" {
            rest.removeFirst()
            switch rest.popFirst() {
            case "dynamic": activations = .dynamic
            case "static": activations = .static
            default: throw fail("-a8 needs -dynamic or -static")
            }
        }
        if let extra = rest.first { throw fail("unexpected '\(extra)'") }
        let scheme = QuantScheme(codebook: codebook, granularity: granularity, scaleType: scaleType,
                                 doubleQuant: doubleQuant, activations: activations)
        if let why = scheme.problem { throw fail(why) }
        self = scheme
    }

    /// The canonical short form, e.g. `int4-asym-g128`, `nf4-b64-dq`, `w8a8-dynamic-f16`.
    public var description: String {
        var parts: [String] = []
        let isW8A8 = activations != .none && codebook == .integer(bits: 8, symmetric: true)
            && granularity == .channel && !doubleQuant
        if isW8A8 {
            parts = ["w8a8", activations == .dynamic ? "dynamic" : "static"]
        } else {
            let blockLetter: String
            switch codebook {
            case .integer(let bits, let symmetric):
                parts = ["int\(bits)", symmetric ? "sym" : "asym"]; blockLetter = "g"
            case .nf4: parts = ["nf4"]; blockLetter = "b"
            case .fp4: parts = ["fp4"]; blockLetter = "b"
            case .kmeans(let bits): parts = ["kmeans\(bits)"]; blockLetter = "g"
            case .fp8E4M3: parts = ["fp8e4m3"]; blockLetter = "g"
            case .fp8E5M2: parts = ["fp8e5m2"]; blockLetter = "g"
            }
            switch granularity {
            case .tensor: parts.append("tensor")
            case .channel: parts.append("channel")
            case .group(let g): parts.append("\(blockLetter)\(g)")
            }
            if doubleQuant { parts.append("dq") }
            switch activations {
            case .none: break
            case .dynamic: parts += ["a8", "dynamic"]
            case .static: parts += ["a8", "static"]
            }
        }
        if scaleType != .f32 { parts.append(scaleType.rawValue) }
        return parts.joined(separator: "-")
    }
}

/// A quantization scheme that was refused: unparseable text or parts that do not fit
/// together. The message names the problem and lists what is valid.
public struct QuantSchemeError: Error, Equatable, CustomStringConvertible {
    /// One line: what is wrong, then the valid forms with examples.
    public let message: String
    /// Wraps a message.
    public init(message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}
