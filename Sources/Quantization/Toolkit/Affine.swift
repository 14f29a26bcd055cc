/// A uniform integer grid: `bits`-bit codes that stand for `(code − zeroPoint) · scale`.
///
/// Conventions (fixed; other code maps to them):
/// - **Asymmetric**: unsigned codes `0 … 2^b − 1`; `scale = (max − min) / (2^b − 1)` and
///   `zeroPoint = round(−min / scale)`, after widening `[min, max]` to include 0, so 0 is
///   exactly the code `zeroPoint`.
/// - **Symmetric**: signed codes in the *restricted* range `−(2^(b−1) − 1) … 2^(b−1) − 1`
///   (int8: −127 … 127, int4: −7 … 7), `zeroPoint = 0`, `scale = absmax / (2^(b−1) − 1)`.
///   The most negative two's-complement code is never produced, so the grid is symmetric
///   about 0 and ±absmax are both exact (as in LLM.int8 and SmoothQuant's W8A8).
///
/// Formats with unsigned codes and a zero point of `2^(b−1)` for symmetric layers (the
/// Hugging Face GPTQ checkpoint layout) take `unsignedCode(_:)` and `unsignedZeroPoint(_:)`:
/// a symmetric code `c` is stored as `c + 2^(b−1)` (so `1 … 2^b − 1`; `0` is unused) with
/// zero point `2^(b−1)`, which decodes to the same value.
///
/// Rounding is to nearest, ties to even (as `torch.round`), then clamped to the code range.
public struct AffineGrid: Hashable, Sendable {
    /// Bits per code, 2…16.
    public let bits: Int
    /// Whether the grid is symmetric about 0 (signed codes, zero point 0).
    public let symmetric: Bool

    /// A grid of `bits`-bit codes; `bits` must be in 2…16.
    public init(bits: Int, symmetric: Bool) {
        precondition((2...16).contains(bits), "AffineGrid bits must be 2...16, got \(bits)")
        self.bits = bits
        self.symmetric = symmetric
    }

    /// The smallest code: `−(2^(b−1) − 1)` symmetric, `0` asymmetric.
    @inlinable public var qmin: Int32 { symmetric ? -((1 << Int32(bits - 1)) - 1) : 0 }
    /// The largest code: `2^(b−1) − 1` symmetric, `2^b − 1` asymmetric.
    @inlinable public var qmax: Int32 { symmetric ? (1 << Int32(bits - 1)) - 1 : (1 << Int32(bits)) - 1 }

    /// Scale and zero point that cover `[min, max]` widened to include 0. A range of zero
    /// width gives scale 0: every value then quantizes to the zero point and decodes to 0.
    public func parameters(min: Float, max: Float) -> AffineParameters {
        parameters(min: min, max: max, scaleType: .f32)
    }

    /// As `parameters(min:max:)`, with the scale rounded *up* to what `scaleType` can store
    /// (so the range stays covered) before the zero point is chosen.
    public func parameters(min: Float, max: Float, scaleType: QuantScheme.ScaleType) -> AffineParameters {
        let lo = Swift.min(min, 0), hi = Swift.max(max, 0)
        if symmetric {
            let scale = scaleType.stored(Swift.max(-lo, hi) / Float(qmax))
            return AffineParameters(scale: scale, zeroPoint: 0)
        }
        let scale = scaleType.stored((hi - lo) / Float(qmax))
        guard scale > 0 else { return AffineParameters(scale: 0, zeroPoint: 0) }
        let z = (-lo / scale).rounded(.toNearestOrEven)
        return AffineParameters(scale: scale, zeroPoint: Int32(Swift.min(Swift.max(z, 0), Float(qmax))))
    }

    /// `clamp(round(x / scale) + zeroPoint, qmin, qmax)`; the zero point when scale is 0.
    @inlinable
    public func code(_ x: Float, _ p: AffineParameters) -> Int32 {
        guard p.scale > 0 else { return p.zeroPoint }
        let q = (x / p.scale).rounded(.toNearestOrEven) + Float(p.zeroPoint)
        return Int32(Swift.min(Swift.max(q, Float(qmin)), Float(qmax)))
    }

    /// `(code − zeroPoint) · scale`.
    @inlinable
    public func value(_ code: Int32, _ p: AffineParameters) -> Float {
        Float(code - p.zeroPoint) * p.scale
    }

    /// `value(code(x, p), p)`: `x` rounded to the grid.
    @inlinable
    public func fakeQuantize(_ x: Float, _ p: AffineParameters) -> Float {
        value(code(x, p), p)
    }

    /// What is added to a code to make it unsigned: `2^(b−1)` symmetric, `0` asymmetric.
    @inlinable public var unsignedOffset: Int32 { symmetric ? 1 << Int32(bits - 1) : 0 }

    /// The code as an unsigned `bits`-bit value: `code + unsignedOffset`.
    @inlinable public func unsignedCode(_ code: Int32) -> UInt32 { UInt32(code + unsignedOffset) }

    /// The zero point that decodes unsigned codes to the same values:
    /// `zeroPoint + unsignedOffset` (`2^(b−1)` for symmetric grids).
    @inlinable public func unsignedZeroPoint(_ p: AffineParameters) -> UInt32 {
        UInt32(p.zeroPoint + unsignedOffset)
    }
}

/// The scale and zero point of one group of an affine grid.
public struct AffineParameters: Hashable, Sendable {
    /// The step between adjacent codes (≥ 0).
    public var scale: Float
    /// The code that stands for 0 (always 0 on symmetric grids).
    public var zeroPoint: Int32
    /// Wraps a scale and zero point.
    public init(scale: Float, zeroPoint: Int32) {
        self.scale = scale
        self.zeroPoint = zeroPoint
    }
}
