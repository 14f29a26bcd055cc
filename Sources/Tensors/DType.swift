/// The element types SwiftQuant knows: every GGML type (plain and block-quantized) and
/// the element types of the safetensors format.
///
/// A block type stores `blockSize` consecutive weights of a row in `bytesPerBlock` bytes;
/// a plain type is a block of one element. The raw GGML type id (as stored in a GGUF
/// tensor info) is `ggmlTypeID`; the safetensors spelling is `safetensorsName`.
public enum DType: String, Sendable, CaseIterable, Codable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64"
    case i8 = "I8", i16 = "I16", i32 = "I32", i64 = "I64"
    case q4_0 = "Q4_0", q4_1 = "Q4_1", q5_0 = "Q5_0", q5_1 = "Q5_1", q8_0 = "Q8_0", q8_1 = "Q8_1"
    case q2_K = "Q2_K", q3_K = "Q3_K", q4_K = "Q4_K", q5_K = "Q5_K", q6_K = "Q6_K", q8_K = "Q8_K"
    case iq2_xxs = "IQ2_XXS", iq2_xs = "IQ2_XS", iq3_xxs = "IQ3_XXS", iq1_s = "IQ1_S"
    case iq4_nl = "IQ4_NL", iq3_s = "IQ3_S", iq2_s = "IQ2_S", iq4_xs = "IQ4_XS", iq1_m = "IQ1_M"
    case tq1_0 = "TQ1_0", tq2_0 = "TQ2_0", mxfp4 = "MXFP4"
    // safetensors-only element types
    case u8 = "U8", u16 = "U16", u32 = "U32", u64 = "U64", bool = "BOOL"
    case f8_e4m3 = "F8_E4M3", f8_e5m2 = "F8_E5M2"

    /// Weights per block (1 for plain element types).
    public var blockSize: Int {
        switch self {
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1, .iq4_nl, .mxfp4: return 32
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_K, .iq2_xxs, .iq2_xs, .iq3_xxs, .iq1_s,
             .iq3_s, .iq2_s, .iq4_xs, .iq1_m, .tq1_0, .tq2_0: return 256
        default: return 1
        }
    }

    /// Bytes one block occupies (the element size for plain types).
    public var bytesPerBlock: Int {
        switch self {
        case .f64, .i64, .u64: return 8
        case .f32, .i32, .u32: return 4
        case .f16, .bf16, .i16, .u16: return 2
        case .i8, .u8, .bool, .f8_e4m3, .f8_e5m2: return 1
        case .q4_0: return 2 + 16
        case .q4_1: return 2 + 2 + 16
        case .q5_0: return 2 + 4 + 16
        case .q5_1: return 2 + 2 + 4 + 16
        case .q8_0: return 2 + 32
        case .q8_1: return 2 + 2 + 32
        case .q2_K: return 16 + 64 + 2 + 2
        case .q3_K: return 32 + 64 + 12 + 2
        case .q4_K: return 2 + 2 + 12 + 128
        case .q5_K: return 2 + 2 + 12 + 32 + 128
        case .q6_K: return 128 + 64 + 16 + 2
        case .q8_K: return 4 + 256 + 32
        case .iq2_xxs: return 2 + 64
        case .iq2_xs: return 2 + 64 + 8
        case .iq3_xxs: return 2 + 64 + 32
        case .iq1_s: return 2 + 32 + 16
        case .iq4_nl: return 2 + 16
        case .iq3_s: return 2 + 64 + 8 + 32 + 4
        case .iq2_s: return 2 + 64 + 8 + 8
        case .iq4_xs: return 2 + 2 + 4 + 128
        case .iq1_m: return 32 + 16 + 8
        case .tq1_0: return 2 + 4 + 48
        case .tq2_0: return 2 + 64
        case .mxfp4: return 1 + 16
        }
    }

    /// True for types that pack several weights per block with shared scales.
    public var isQuantized: Bool {
        switch self {
        case .f32, .f16, .bf16, .f64, .i8, .i16, .i32, .i64, .u8, .u16, .u32, .u64, .bool,
             .f8_e4m3, .f8_e5m2: return false
        default: return true
        }
    }

    /// True for floating-point element types (not block-quantized, not integer).
    public var isFloat: Bool {
        switch self {
        case .f32, .f16, .bf16, .f64, .f8_e4m3, .f8_e5m2: return true
        default: return false
        }
    }

    /// Bits of storage per weight, including block scales.
    public var bitsPerWeight: Double { Double(bytesPerBlock * 8) / Double(blockSize) }

    /// Bytes needed for `count` weights, or nil when `count` is not a whole number of
    /// blocks or the size overflows.
    public func byteCount(elements count: Int) -> Int? {
        guard count >= 0, count % blockSize == 0 else { return nil }
        let (bytes, overflow) = (count / blockSize).multipliedReportingOverflow(by: bytesPerBlock)
        return overflow ? nil : bytes
    }

    /// The GGML type id stored in GGUF tensor infos; nil for safetensors-only types.
    public var ggmlTypeID: UInt32? { DType.ggmlIDs[self] }

    /// The type with a given GGML id, or nil for ids that are unknown or retired.
    public init?(ggmlTypeID id: UInt32) {
        guard let t = DType.ggmlTypes[id] else { return nil }
        self = t
    }

    /// The spelling used in safetensors headers; nil for GGML block types.
    public var safetensorsName: String? {
        switch self {
        case .f32, .f16, .bf16, .f64, .i8, .i16, .i32, .i64, .u8, .u16, .u32, .u64, .bool,
             .f8_e4m3, .f8_e5m2: return rawValue
        default: return nil
        }
    }

    /// The type with a given safetensors dtype spelling.
    public init?(safetensorsName name: String) {
        guard let t = DType(rawValue: name), t.safetensorsName != nil else { return nil }
        self = t
    }

    private static let ggmlIDs: [DType: UInt32] = [
        .f32: 0, .f16: 1, .q4_0: 2, .q4_1: 3, .q5_0: 6, .q5_1: 7, .q8_0: 8, .q8_1: 9,
        .q2_K: 10, .q3_K: 11, .q4_K: 12, .q5_K: 13, .q6_K: 14, .q8_K: 15,
        .iq2_xxs: 16, .iq2_xs: 17, .iq3_xxs: 18, .iq1_s: 19, .iq4_nl: 20, .iq3_s: 21,
        .iq2_s: 22, .iq4_xs: 23, .i8: 24, .i16: 25, .i32: 26, .i64: 27, .f64: 28,
        .iq1_m: 29, .bf16: 30, .tq1_0: 34, .tq2_0: 35, .mxfp4: 39,
    ]
    private static let ggmlTypes: [UInt32: DType] =
        Dictionary(uniqueKeysWithValues: ggmlIDs.map { ($1, $0) })
}
