import Tensors

/// A vector of per-group floats (scales, block absmax values, codebook levels) held in the
/// number format a quantized file would store them in.
public enum StoredFloats: Sendable, Equatable {
    /// IEEE single precision.
    case f32([Float])
    /// IEEE half precision bit patterns.
    case f16([UInt16])
    /// bfloat16 bit patterns.
    case bf16([UInt16])
    /// 8-bit codes with a mean and per-256 scales (QLoRA's double quantization).
    case doubleQuantized(DoubleQuantizedScales)

    /// Stores `values` as `type`, rounding each up (`ScaleType.stored`) when `roundUp` is
    /// true (for scales, so a range stays covered) and to nearest otherwise (for levels).
    public init(_ values: [Float], as type: QuantScheme.ScaleType, roundUp: Bool) {
        switch type {
        case .f32:
            self = .f32(values)
        case .f16:
            self = .f16(values.map { Half.floatToF16(roundUp ? type.stored($0) : $0) })
        case .bf16:
            self = .bf16(values.map { Half.floatToBF16(roundUp ? type.stored($0) : $0) })
        }
    }

    /// How many values are stored.
    public var count: Int {
        switch self {
        case .f32(let v): return v.count
        case .f16(let v), .bf16(let v): return v.count
        case .doubleQuantized(let d): return d.codes.count
        }
    }

    /// The values as `Float`, decoded from the storage format.
    public func values() -> [Float] {
        switch self {
        case .f32(let v): return v
        case .f16(let v): return v.map(Half.f16ToFloat)
        case .bf16(let v): return v.map(Half.bf16ToFloat)
        case .doubleQuantized(let d): return d.values()
        }
    }

    /// Bytes the stored form occupies.
    public var byteCount: Int {
        switch self {
        case .f32(let v): return v.count * MemoryLayout<Float>.size
        case .f16(let v), .bf16(let v): return v.count * MemoryLayout<UInt16>.size
        case .doubleQuantized(let d): return d.byteCount
        }
    }
}

/// Second-level quantization of non-negative block scales, as QLoRA does for the NF4 block
/// absmax values: subtract their mean, then quantize what is left to symmetric int8 with one
/// f32 scale per block of `blockSize` (256) values.
///
/// Value `i` decodes as `Float(codes[i]) · scales[i / blockSize] + mean`. (bitsandbytes uses
/// its non-linear 8-bit "dynamic" map for the codes; this is the linear int8 variant.)
public struct DoubleQuantizedScales: Sendable, Equatable {
    /// The number of first-level values sharing one second-level scale.
    public static let defaultBlockSize = 256

    /// One int8 code per first-level value, in −127…127.
    public var codes: [Int8]
    /// One f32 scale per block of `blockSize` codes (the last block may be shorter).
    public var scales: [Float]
    /// The mean of the original values, added back on decoding.
    public var mean: Float
    /// Codes per second-level scale.
    public var blockSize: Int

    /// Quantizes `values` (finite) with blocks of `blockSize`.
    public init(quantizing values: [Float], blockSize: Int = defaultBlockSize) {
        precondition(blockSize > 0, "DoubleQuantizedScales: block size must be positive")
        self.blockSize = blockSize
        let sum = values.reduce(0.0) { $0 + Double($1) }
        let mean = values.isEmpty ? 0 : Float(sum / Double(values.count))
        self.mean = mean
        let grid = AffineGrid(bits: 8, symmetric: true)
        var codes = [Int8](repeating: 0, count: values.count)
        var scales: [Float] = []
        scales.reserveCapacity((values.count + blockSize - 1) / blockSize)
        var lo = 0
        while lo < values.count {
            let hi = min(lo + blockSize, values.count)
            var absmax: Float = 0
            for i in lo..<hi { absmax = max(absmax, abs(values[i] - mean)) }
            let p = grid.parameters(min: -absmax, max: absmax)
            for i in lo..<hi { codes[i] = Int8(grid.code(values[i] - mean, p)) }
            scales.append(p.scale)
            lo = hi
        }
        self.codes = codes
        self.scales = scales
    }

    /// The decoded first-level values.
    public func values() -> [Float] {
        codes.indices.map { Float(codes[$0]) * scales[$0 / blockSize] + mean }
    }

    /// Bytes stored: one per code, four per scale, four for the mean.
    public var byteCount: Int { codes.count + 4 * scales.count + 4 }
}
