import Tensors

extension Codecs {
    /// MXFP4 — 17 bytes per 32 weights: the OCP microscaling format, FP4 (E2M1) values
    /// under a shared power-of-two scale (as used by gpt-oss).
    ///
    ///     offset  size  field
    ///          0     1  e    E8M0 scale exponent: scale 2^(e − 127)
    ///          1    16  qs   E2M1 codes: weight j = low(qs[j]), weight j+16 = high(qs[j])
    ///
    /// ggml stores the E2M1 values doubled as integers (`mxfp4Values`) and halves the scale
    /// instead: weight = 2^(e − 128) × mxfp4Values[q], exact.
    enum MXFP4 {
        static let mxfp4Values: [Int8] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12]

        static func dequantize(_ src: UnsafeRawPointer, blocks n: Int, into dst: UnsafeMutablePointer<Float>) {
            mxfp4Values.withUnsafeBufferPointer { kv in
                for b in 0..<n {
                    let x = src + b * 17, y = dst + b * 32
                    let d = halfScale(x.u8(0))
                    for j in 0..<16 {
                        let q = x.u8(1 + j)
                        y[j] = d * Float(kv[Int(q & 0x0F)])
                        y[j + 16] = d * Float(kv[Int(q >> 4)])
                    }
                }
            }
        }

        /// 2^(e − 128) as a Float: subnormal for e < 2, so built from bits.
        @inline(__always)
        static func halfScale(_ e: UInt8) -> Float {
            e < 2 ? Float(bitPattern: UInt32(0x0020_0000) &<< UInt32(e))
                  : Float(bitPattern: UInt32(e - 1) << 23)
        }
    }
}
