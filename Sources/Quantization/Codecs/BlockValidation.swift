import Tensors

/// A stored value that no encoder could have produced: a NaN or infinite weight in a float
/// tensor, or a NaN or infinite scale in a quantized block. Every bit pattern of the codes
/// themselves is a valid code, so the floats are what a corrupt block betrays itself by.
public struct CorruptBlock: Error, Equatable, CustomStringConvertible {
    /// The tensor's storage type.
    public let type: DType
    /// Index of the first bad block (for float types: of the first bad element).
    public let block: Int
    /// Which field holds the bad value (`"d"`, `"dmin"`, `"value"`).
    public let field: String
    /// The offending value.
    public let value: Float

    public static func == (a: CorruptBlock, b: CorruptBlock) -> Bool {
        a.type == b.type && a.block == b.block && a.field == b.field
            && a.value.bitPattern == b.value.bitPattern
    }

    /// A one-line message: which block, which field, what value.
    public var description: String {
        let what = type.isQuantized ? "block \(block)" : "element \(block)"
        return "\(type.rawValue) \(what) has a non-finite \(field) (\(value))"
    }
}

extension Codecs {
    /// Where each block type keeps its f16 scales: (byte offset in the block, field name).
    /// Layouts are those documented beside each codec.
    static func scaleFields(_ type: DType) -> [(offset: Int, name: String)]? {
        switch type {
        case .q4_0, .q5_0, .q8_0, .iq4_nl, .iq4_xs: return [(0, "d")]
        case .q4_1, .q5_1, .q8_1, .q4_K, .q5_K: return [(0, "d"), (2, "dmin")]
        case .q2_K: return [(80, "d"), (82, "dmin")]
        case .q3_K: return [(108, "d")]
        case .q6_K: return [(208, "d")]
        default: return nil
        }
    }

    /// Checks that `bytes`, holding `count` values of `type`, contain only finite floats:
    /// every element of an F32/F16/BF16 tensor, every f16 scale of a block type (Q8_K's f32
    /// scale too). Returns the first offender, or nil. Types without float fields (integers)
    /// and types this project cannot decode pass unchecked.
    ///
    /// Cost: one pass over the scales (a few bytes per block) or, for float tensors, over the
    /// data — negligible next to loading the weights.
    public static func firstCorruptBlock(_ type: DType, bytes: UnsafeRawBufferPointer, count: Int) -> CorruptBlock? {
        func f16(_ at: Int) -> Float {
            Half.f16ToFloat(UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8)
        }
        switch type {
        case .f32:
            let n = min(count, bytes.count / 4)
            for i in 0..<n {
                let v = bytes.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
                if !v.isFinite { return CorruptBlock(type: type, block: i, field: "value", value: v) }
            }
            return nil
        case .f16, .bf16:
            let n = min(count, bytes.count / 2)
            for i in 0..<n {
                let bits = UInt16(bytes[2 * i]) | UInt16(bytes[2 * i + 1]) << 8
                let v = type == .f16 ? Half.f16ToFloat(bits) : Half.bf16ToFloat(bits)
                if !v.isFinite { return CorruptBlock(type: type, block: i, field: "value", value: v) }
            }
            return nil
        case .q8_K:
            let size = type.bytesPerBlock
            for b in 0..<(bytes.count / size) {
                let v = bytes.loadUnaligned(fromByteOffset: b * size, as: Float.self)
                if !v.isFinite { return CorruptBlock(type: type, block: b, field: "d", value: v) }
            }
            return nil
        default:
            guard let fields = scaleFields(type) else { return nil }
            let size = type.bytesPerBlock
            for b in 0..<(bytes.count / size) {
                for (offset, name) in fields {
                    let v = f16(b * size + offset)
                    if !v.isFinite { return CorruptBlock(type: type, block: b, field: name, value: v) }
                }
            }
            return nil
        }
    }
}
