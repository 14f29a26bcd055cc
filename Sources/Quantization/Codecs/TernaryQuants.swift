import Tensors

// The ternary kinds (BitNet b1.58-style models): every weight is −d, 0 or +d.

extension Codecs {
    /// TQ1_0 — 54 bytes per 256 weights, base-3 packing (1.69 bits per weight).
    ///
    ///     offset  size  field
    ///          0    48  qs  five trits per byte
    ///         48     4  qh  four trits per byte
    ///         52     2  d   f16 scale
    ///
    /// A byte packs its trits as a fixed-point fraction: trit k (most significant first) is
    /// ⌊3 × (byte × 3^k mod 256) / 256⌋. Weight order: 32k + l takes trit k of qs[l]
    /// (l < 32, k < 5); 160 + 16k + l takes trit k of qs[32 + l] (l < 16, k < 5);
    /// 240 + 4k + l takes trit k of qh[l] (l < 4, k < 4).
    ///
    /// weight = d × (trit − 1)
    enum TQ1_0 {
        static func dequantize(_ src: UnsafeRawPointer, blocks n: Int, into dst: UnsafeMutablePointer<Float>) {
            for b in 0..<n {
                let x = src + b * 54, y = dst + b * 256
                let d = x.f16(52)
                var pow3: UInt8 = 1
                for k in 0..<5 {
                    for l in 0..<32 { y[32 * k + l] = d * trit(x.u8(l), pow3) }
                    for l in 0..<16 { y[160 + 16 * k + l] = d * trit(x.u8(32 + l), pow3) }
                    if k < 4 {
                        for l in 0..<4 { y[240 + 4 * k + l] = d * trit(x.u8(48 + l), pow3) }
                    }
                    pow3 &*= 3
                }
            }
        }

        /// The trit selected by multiplier 3^k, minus one, as a Float.
        @inline(__always)
        static func trit(_ byte: UInt8, _ pow3: UInt8) -> Float {
            let v = UInt16(byte &* pow3)
            return Float(Int32((v * 3) >> 8) - 1)
        }
    }

    /// TQ2_0 — 66 bytes per 256 weights, 2 bits per ternary weight.
    ///
    ///     offset  size  field
    ///          0    64  qs  2-bit codes: weight 128h + 32s + l is bits 2s…2s+1 of qs[32h + l]
    ///         64     2  d   f16 scale
    ///
    /// weight = d × (code − 1)
    enum TQ2_0 {
        static func dequantize(_ src: UnsafeRawPointer, blocks n: Int, into dst: UnsafeMutablePointer<Float>) {
            for b in 0..<n {
                let x = src + b * 66, y = dst + b * 256
                let d = x.f16(64)
                for h in 0..<2 {
                    for s in 0..<4 {
                        let shift = UInt8(2 * s), out = y + 128 * h + 32 * s
                        for l in 0..<32 {
                            let q = (x.u8(32 * h + l) &>> shift) & 3
                            out[l] = d * Float(Int32(q) - 1)
                        }
                    }
                }
            }
        }
    }
}
