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

        /// ggml's encoder: the largest-magnitude weight maps to −127 (keeping its sign
        /// flipped, so the other extreme may reach 127); importance is ignored.
        static func quantize(_ x: UnsafePointer<Float>, count n: Int, into dst: UnsafeMutableRawPointer,
                             importance _: UnsafePointer<Float>?) {
            for b in 0..<n / 256 {
                let xb = x + 256 * b, y = dst + 292 * b
                var max: Float = 0, amax: Float = 0
                for j in 0..<256 where abs(xb[j]) > amax {
                    amax = abs(xb[j]); max = xb[j]
                }
                if amax == 0 {
                    y.initializeMemory(as: UInt8.self, repeating: 0, count: 292)
                    continue
                }
                let iscale = -127 / max
                for j in 0..<256 {
                    y.setU8(4 + j, UInt8(truncatingIfNeeded: Swift.min(127, nearestInt(iscale * xb[j]))))
                }
                for g in 0..<16 {
                    var sum: Int32 = 0
                    for j in 0..<16 { sum += Int32(UnsafeRawPointer(y).i8(4 + 16 * g + j)) }
                    y.setU16(260 + 2 * g, UInt16(truncatingIfNeeded: sum))
                }
                y.setU32(0, (1 / iscale).bitPattern)
            }
        }
    }
}
