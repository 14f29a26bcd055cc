import Tensors

/// The two 8-bit float formats used for weights and activations (OCP FP8).
///
/// - `e4m3`: 1 sign, 4 exponent (bias 7), 3 mantissa bits; no infinities, only
///   `S.1111.111` is NaN, so the largest finite value is 448; smallest subnormal 2⁻⁹.
/// - `e5m2`: 1 sign, 5 exponent (bias 15), 2 mantissa bits, IEEE-like with infinities;
///   largest finite 57344; smallest subnormal 2⁻¹⁶.
///
/// `encode` rounds to nearest, ties to even, and *saturates*: finite values beyond the
/// largest finite value become ±max (the usual choice when casting scaled weights), and so
/// do infinities; NaN stays NaN.
public enum FP8Format: String, Hashable, Sendable, CaseIterable {
    /// 4 exponent bits, 3 mantissa bits.
    case e4m3
    /// 5 exponent bits, 2 mantissa bits.
    case e5m2

    /// Mantissa bits.
    @inlinable public var mantissaBits: Int { self == .e4m3 ? 3 : 2 }
    /// Exponent bias.
    @inlinable public var bias: Int { self == .e4m3 ? 7 : 15 }
    /// The largest finite value (448 or 57344).
    @inlinable public var maxFinite: Float { self == .e4m3 ? 448 : 57344 }
    /// The bit pattern of the largest finite positive value.
    @inlinable var maxFiniteCode: UInt8 { self == .e4m3 ? 0x7E : 0x7B }
    /// The exponent of the smallest normal value, `1 − bias`.
    @inlinable var minNormalExponent: Int { 1 - bias }

    /// The value of a bit pattern (exact).
    public func decode(_ code: UInt8) -> Float {
        let m = mantissaBits, e = (Int(code) >> m) & (self == .e4m3 ? 0xF : 0x1F)
        let mant = Float(Int(code) & ((1 << m) - 1))
        let sign: Float = code & 0x80 != 0 ? -1 : 1
        switch self {
        case .e4m3 where e == 0xF && code & 0x7 == 0x7: return .nan
        case .e5m2 where e == 0x1F: return mant == 0 ? sign * .infinity : .nan
        default: break
        }
        if e == 0 { return sign * mant * Float(sign: .plus, exponent: minNormalExponent - m, significand: 1) }
        return sign * (1 + mant / Float(1 << m)) * Float(sign: .plus, exponent: e - bias, significand: 1)
    }

    /// The bit pattern nearest to `x` (ties to even), saturating at ±`maxFinite`.
    public func encode(_ x: Float) -> UInt8 {
        let signBit: UInt8 = x.sign == .minus ? 0x80 : 0
        if x.isNaN { return self == .e4m3 ? 0x7F : 0x7E }
        let a = x.magnitude
        if a >= maxFinite { return signBit | maxFiniteCode }
        let m = mantissaBits
        // The spacing of representable values around `a`: 2^(e − m) for a normal `a` with
        // exponent e, and the subnormal step below the smallest normal.
        let e = a == 0 ? minNormalExponent : max(Int(a.exponent), minNormalExponent)
        let step = Float(sign: .plus, exponent: e - m, significand: 1)
        let steps = (a / step).rounded(.toNearestOrEven)  // exact: `step` is a power of two
        if steps == 0 { return signBit }
        let r = steps * step
        if r > maxFinite { return signBit | maxFiniteCode }
        let re = Int(r.exponent)
        if re < minNormalExponent {
            return signBit | UInt8(Int(r / Float(sign: .plus, exponent: minNormalExponent - m, significand: 1)))
        }
        let mant = Int((r / Float(sign: .plus, exponent: re, significand: 1) - 1) * Float(1 << m))
        return signBit | UInt8((re + bias) << m | mant)
    }

    /// `decode(encode(x))`.
    @inlinable public func round(_ x: Float) -> Float { decode(encode(x)) }
}

/// A matrix stored as FP8 codes with one scale per group: weight ≈ `decode(code) · scale`,
/// where the scale maps each group's absmax onto the format's largest finite value.
public struct FP8Quantized: Sendable {
    /// Output channels.
    public let rows: Int
    /// Input columns.
    public let columns: Int
    /// The 8-bit float format of the codes.
    public let format: FP8Format
    /// Which weights share a scale.
    public let granularity: QuantScheme.Granularity
    /// One code per weight, row-major.
    public var codes: [UInt8]
    /// One scale per group (a single one for `.tensor`), as stored.
    public var scales: StoredFloats

    /// The weights the codes stand for.
    public func dequantized() -> [Float] {
        let table = (0...255).map { format.decode(UInt8($0)) }
        let s = scales.values(), columns = self.columns
        let perRow = granularity.groupsPerRow(columns: columns), length = granularity.groupLength(columns: columns)
        let isTensor = granularity == .tensor
        var out = [Float](repeating: 0, count: rows * columns)
        codes.withUnsafeBufferPointer { q in
            out.withUnsafeMutableBufferPointer { o in
                parallelFor(rows) { r in
                    for c in 0..<columns {
                        let i = r * columns + c
                        o[i] = table[Int(q[i])] * (isTensor ? s[0] : s[r * perRow + c / length])
                    }
                }
            }
        }
        return out
    }
}

/// Casts a row-major matrix to `format` after dividing each group by
/// `scale = absmax / format.maxFinite` (rounded up to `scaleType`), round to nearest even.
/// - Precondition: `weights.count == rows * columns`, all finite.
public func quantizeFP8(
    _ weights: UnsafeBufferPointer<Float>, rows: Int, columns: Int, format: FP8Format,
    granularity: QuantScheme.Granularity, scaleType: QuantScheme.ScaleType = .f32
) -> FP8Quantized {
    precondition(weights.count == rows * columns, "quantizeFP8: weights must hold rows × columns values")
    let perRow = granularity.groupsPerRow(columns: columns), length = granularity.groupLength(columns: columns)
    let isTensor = granularity == .tensor
    var scales = [Float](repeating: 0, count: isTensor ? 1 : rows * perRow)
    if isTensor {
        let (mn, mx) = minMax(weights, rows: rows, columns: columns)
        scales[0] = scaleType.stored(max(-mn, mx) / format.maxFinite)
    }
    var codes = [UInt8](repeating: 0, count: rows * columns)
    scales.withUnsafeMutableBufferPointer { sc in
        codes.withUnsafeMutableBufferPointer { q in
            parallelFor(rows) { r in
                for k in 0..<perRow {
                    let lo = r * columns + k * length, hi = r * columns + min((k + 1) * length, columns)
                    let s: Float
                    if isTensor {
                        s = sc[0]
                    } else {
                        let (mn, mx) = minMax(weights, lo, hi)
                        s = scaleType.stored(max(-mn, mx) / format.maxFinite)
                        sc[r * perRow + k] = s
                    }
                    for i in lo..<hi { q[i] = s > 0 ? format.encode(weights[i] / s) : 0 }
                }
            }
        }
    }
    return FP8Quantized(rows: rows, columns: columns, format: format, granularity: granularity,
                        codes: codes, scales: StoredFloats(scales, as: scaleType, roundUp: true))
}

/// Array form of `quantizeFP8` (the buffer form documents the details).
public func quantizeFP8(
    _ weights: [Float], rows: Int, columns: Int, format: FP8Format,
    granularity: QuantScheme.Granularity, scaleType: QuantScheme.ScaleType = .f32
) -> FP8Quantized {
    weights.withUnsafeBufferPointer {
        quantizeFP8($0, rows: rows, columns: columns, format: format, granularity: granularity, scaleType: scaleType)
    }
}
