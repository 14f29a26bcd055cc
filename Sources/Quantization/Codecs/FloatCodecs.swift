import Tensors

// Plain floating-point element types: a "block" of one value.

extension Codecs {
    /// F32 — IEEE binary32, 4 bytes little-endian per weight.
    enum F32 {
        static func dequantize(_ src: UnsafeRawPointer, blocks n: Int, into dst: UnsafeMutablePointer<Float>) {
            // A copy; memcpy-speed, and alignment-agnostic.
            UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: n * 4)
        }

        static func quantize(_ x: UnsafePointer<Float>, count n: Int, into dst: UnsafeMutableRawPointer,
                             importance _: UnsafePointer<Float>?) {
            dst.copyMemory(from: x, byteCount: n * 4)
        }
    }

    /// F16 — IEEE binary16, 2 bytes little-endian per weight (sign, 5-bit exponent, 10-bit
    /// mantissa). Widening is exact; NaN payloads are kept.
    enum F16 {
        static func dequantize(_ src: UnsafeRawPointer, blocks n: Int, into dst: UnsafeMutablePointer<Float>) {
            for i in 0..<n {
                dst[i] = src.f16(2 * i)
            }
        }

        /// Rounds to nearest even (numpy's `astype(float16)`; ggml's `ggml_fp32_to_fp16_row`).
        static func quantize(_ x: UnsafePointer<Float>, count n: Int, into dst: UnsafeMutableRawPointer,
                             importance _: UnsafePointer<Float>?) {
            for i in 0..<n {
                dst.setU16(2 * i, Half.floatToF16(x[i]))
            }
        }
    }

    /// BF16 — bfloat16, 2 bytes little-endian per weight: the top half of a binary32.
    enum BF16 {
        static func dequantize(_ src: UnsafeRawPointer, blocks n: Int, into dst: UnsafeMutablePointer<Float>) {
            for i in 0..<n {
                dst[i] = Half.bf16ToFloat(src.u16(2 * i))
            }
        }

        /// Rounds to nearest even; NaN stays a quiet NaN (ggml's `ggml_fp32_to_bf16_row_ref`).
        static func quantize(_ x: UnsafePointer<Float>, count n: Int, into dst: UnsafeMutableRawPointer,
                             importance _: UnsafePointer<Float>?) {
            for i in 0..<n {
                dst.setU16(2 * i, Half.floatToBF16(x[i]))
            }
        }
    }
}
