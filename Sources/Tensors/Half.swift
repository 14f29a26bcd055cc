/// Conversions between Float and the 16-bit float formats stored in model files.
/// Written with bit operations so they behave the same on every platform
/// (Swift's `Float16` is missing on macOS/x86_64).
public enum Half {
    /// IEEE 754 binary16 bits → Float (exact).
    @inlinable
    public static func f16ToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exp = UInt32(h >> 10) & 0x1F
        let mant = UInt32(h & 0x3FF)
        if exp == 0 {
            // zero or subnormal: mant * 2^-24
            let v = Float(mant) * 5.9604644775390625e-8
            return sign != 0 ? -v : v
        }
        if exp == 31 {
            return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13))
        }
        return Float(bitPattern: sign | ((exp + 112) << 23) | (mant << 13))
    }

    /// Float → IEEE 754 binary16 bits, rounding to nearest even (as numpy and ggml do).
    @inlinable
    public static func floatToF16(_ f: Float) -> UInt16 {
        let x = f.bitPattern
        let sign = UInt16((x >> 16) & 0x8000)
        let absx = x & 0x7FFF_FFFF
        if absx >= 0x7F80_0000 {  // inf or nan
            return sign | 0x7C00 | (absx > 0x7F80_0000 ? 0x200 : 0)
        }
        if absx >= 0x477F_F000 {  // rounds to >= 65520: overflow to inf
            return sign | 0x7C00
        }
        if absx < 0x3880_0000 {  // below 2^-14: subnormal or zero
            // Adding 0.5 shifts the value so the FPU rounds the mantissa for us.
            let v = Float(bitPattern: absx) + 0.5
            return sign | UInt16(v.bitPattern - Float(0.5).bitPattern)
        }
        let mantOdd = (absx >> 13) & 1
        let rounded = absx &+ 0xC800_0FFF &+ mantOdd  // rebias exponent (-112 << 23) and round
        return sign | UInt16(truncatingIfNeeded: rounded >> 13)
    }

    /// bfloat16 bits → Float (exact).
    @inlinable
    public static func bf16ToFloat(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }

    /// Float → bfloat16 bits, rounding to nearest even; NaN stays a quiet NaN.
    @inlinable
    public static func floatToBF16(_ f: Float) -> UInt16 {
        let x = f.bitPattern
        if (x & 0x7FFF_FFFF) > 0x7F80_0000 { return UInt16(x >> 16) | 0x40 }
        return UInt16((x &+ 0x7FFF &+ ((x >> 16) & 1)) >> 16)
    }
}
