import Tensors

extension Codecs {
    /// Q8_K — 292 bytes per 256 weights: ggml's intermediate format for activations in
    /// k-quant dot products (it is never stored in model files in practice).
    ///
    ///     offset  size  field
    ///          0     4  d      f32 scale
    ///          4   256  qs     i8 quants, weight j = qs[j]
    ///        260    32  bsums  i16 sums of qs over each group of 16 (not needed to decode)
    ///
    /// weight = d × q
    enum Q8_K {
        static func dequantize(_ src: UnsafeRawPointer, blocks n: Int, into dst: UnsafeMutablePointer<Float>) {
            for b in 0..<n {
                let x = src + b * 292, y = dst + b * 256
                let d = x.f32(0)
                for j in 0..<256 {
                    y[j] = d * Float(x.i8(4 + j))
                }
            }
        }
    }
}
