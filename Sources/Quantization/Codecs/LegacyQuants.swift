import Tensors

// ggml's first block formats: 32 weights per block, one f16 scale (and for the `_1` kinds
// an f16 offset), 4, 5 or 8 bits per quant. All multi-byte fields are little-endian; `f16`
// is IEEE binary16.
//
// The 4- and 5-bit kinds split a block in halves: byte j of `qs` holds weight j in its low
// nibble and weight j + 16 in its high nibble.
//
// Encoding without importance is ggml's round-to-nearest reference (`quantize_row_*_ref`),
// written to match `gguf.quants.quantize` bit for bit: the `_0` kinds scale the block's
// largest-magnitude weight (the first, on ties) to −8 or −16, the `_1` kinds map min…max
// onto 0…15 or 0…31, Q8_0 maps the largest magnitude to 127. With importance they follow
// llama.cpp's imatrix encoders: a weighted search for the scale (and minimum) per block.

extension Codecs {
    /// Q4_0 — 18 bytes per 32 weights, symmetric 4-bit.
    ///
    ///     offset  size  field
    ///          0     2  d    f16 scale
    ///          2    16  qs   nibbles: weight j = low(qs[j]), weight j+16 = high(qs[j])
    ///
    /// weight = d × (q − 8)
    enum Q4_0 {
        static func dequantize(_ src: UnsafeRawPointer, blocks n: Int, into dst: UnsafeMutablePointer<Float>) {
            for b in 0..<n {
                let x = src + b * 18, y = dst + b * 32
                let d = x.f16(0)
                for j in 0..<16 {
                    let q = x.u8(2 + j)
                    y[j] = d * Float(Int32(q & 0x0F) - 8)
                    y[j + 16] = d * Float(Int32(q >> 4) - 8)
                }
            }
        }

        static func quantize(_ x: UnsafePointer<Float>, count n: Int, into dst: UnsafeMutableRawPointer,
                             importance qw: UnsafePointer<Float>?) {
            if let qw {
                return symmetricWeighted(x, count: n, into: dst, importance: qw, blockBytes: 18, nmax: 8) { y, L in
                    for j in 0..<16 { y.setU8(2 + j, UInt8(bitPattern: L[j]) | UInt8(bitPattern: L[j + 16]) << 4) }
                }
            }
            for b in 0..<n / 32 {
                let xb = x + b * 32, y = dst + b * 18
                let d = xb[firstMaxMagnitude(xb, 32)] / -8
                let id: Float = d != 0 ? 1 / d : 0
                y.setF16(0, d)
                for j in 0..<16 {
                    let q0 = clampTruncated(xb[j] * id + 8.5, 15)
                    let q1 = clampTruncated(xb[j + 16] * id + 8.5, 15)
                    y.setU8(2 + j, q0 | q1 << 4)
                }
            }
        }
    }

    /// Q4_1 — 20 bytes per 32 weights, 4-bit with a minimum.
    ///
    ///     offset  size  field
    ///          0     2  d    f16 scale
    ///          2     2  m    f16 minimum
    ///          4    16  qs   nibbles, as Q4_0
    ///
    /// weight = d × q + m  (q in 0…15; product rounded, then sum rounded: no fused multiply-add)
    enum Q4_1 {
        static func dequantize(_ src: UnsafeRawPointer, blocks n: Int, into dst: UnsafeMutablePointer<Float>) {
            for b in 0..<n {
                let x = src + b * 20, y = dst + b * 32
                let d = x.f16(0), m = x.f16(2)
                for j in 0..<16 {
                    let q = x.u8(4 + j)
                    y[j] = d * Float(q & 0x0F) + m
                    y[j + 16] = d * Float(q >> 4) + m
                }
            }
        }

        static func quantize(_ x: UnsafePointer<Float>, count n: Int, into dst: UnsafeMutableRawPointer,
                             importance qw: UnsafePointer<Float>?) {
            if let qw {
                return minimumWeighted(x, count: n, into: dst, importance: qw, blockBytes: 20, nmax: 15) { y, L in
                    for j in 0..<16 { y.setU8(4 + j, L[j] | L[j + 16] << 4) }
                }
            }
            for b in 0..<n / 32 {
                let xb = x + b * 32, y = dst + b * 20
                let (min, max) = minMax(xb, 32)
                let d = (max - min) / 15
                let id: Float = d != 0 ? 1 / d : 0
                y.setF16(0, d)
                y.setF16(2, min)
                for j in 0..<16 {
                    let q0 = clampTruncated((xb[j] - min) * id + 0.5, 15)
                    let q1 = clampTruncated((xb[j + 16] - min) * id + 0.5, 15)
                    y.setU8(4 + j, q0 | q1 << 4)
                }
            }
        }
    }

    /// Q5_0 — 22 bytes per 32 weights, symmetric 5-bit.
    ///
    ///     offset  size  field
    ///          0     2  d    f16 scale
    ///          2     4  qh   u32: bit j is the fifth (high) bit of weight j
    ///          6    16  qs   low four bits, nibbles as Q4_0
    ///
    /// weight = d × (q − 16)
    enum Q5_0 {
        static func dequantize(_ src: UnsafeRawPointer, blocks n: Int, into dst: UnsafeMutablePointer<Float>) {
            for b in 0..<n {
                let x = src + b * 22, y = dst + b * 32
                let d = x.f16(0)
                let qh = x.u32(2)
                for j in 0..<16 {
                    let q = x.u8(6 + j)
                    // Masks rather than per-lane shifts: these vectorise without AVX2.
                    let lo = (q & 0x0F) | (qh & (1 << j) != 0 ? 16 : 0)
                    let hi = (q >> 4) | (qh & (1 << (j + 16)) != 0 ? 16 : 0)
                    y[j] = d * Float(Int32(lo) - 16)
                    y[j + 16] = d * Float(Int32(hi) - 16)
                }
            }
        }

        static func quantize(_ x: UnsafePointer<Float>, count n: Int, into dst: UnsafeMutableRawPointer,
                             importance qw: UnsafePointer<Float>?) {
            if let qw {
                return symmetricWeighted(x, count: n, into: dst, importance: qw, blockBytes: 22, nmax: 16) { y, L in
                    packFiveBits(y + 2, { UInt8(bitPattern: L[$0]) })
                }
            }
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { L in
                for b in 0..<n / 32 {
                    let xb = x + b * 32, y = dst + b * 22
                    let d = xb[firstMaxMagnitude(xb, 32)] / -16
                    let id: Float = d != 0 ? 1 / d : 0
                    y.setF16(0, d)
                    for j in 0..<32 { L[j] = clampTruncated(xb[j] * id + 16.5, 31) }
                    packFiveBits(y + 2, { L[$0] })
                }
            }
        }
    }

    /// Q5_1 — 24 bytes per 32 weights, 5-bit with a minimum.
    ///
    ///     offset  size  field
    ///          0     2  d    f16 scale
    ///          2     2  m    f16 minimum
    ///          4     4  qh   u32: bit j is the fifth (high) bit of weight j
    ///          8    16  qs   low four bits, nibbles as Q4_0
    ///
    /// weight = d × q + m  (q in 0…31; no fused multiply-add)
    enum Q5_1 {
        static func dequantize(_ src: UnsafeRawPointer, blocks n: Int, into dst: UnsafeMutablePointer<Float>) {
            for b in 0..<n {
                let x = src + b * 24, y = dst + b * 32
                let d = x.f16(0), m = x.f16(2)
                let qh = x.u32(4)
                for j in 0..<16 {
                    let q = x.u8(8 + j)
                    // Masks rather than per-lane shifts: these vectorise without AVX2.
                    let lo = (q & 0x0F) | (qh & (1 << j) != 0 ? 16 : 0)
                    let hi = (q >> 4) | (qh & (1 << (j + 16)) != 0 ? 16 : 0)
                    y[j] = d * Float(lo) + m
                    y[j + 16] = d * Float(hi) + m
                }
            }
        }

        static func quantize(_ x: UnsafePointer<Float>, count n: Int, into dst: UnsafeMutableRawPointer,
                             importance qw: UnsafePointer<Float>?) {
            if let qw {
                return minimumWeighted(x, count: n, into: dst, importance: qw, blockBytes: 24, nmax: 31) { y, L in
                    packFiveBits(y + 4, { L[$0] })
                }
            }
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { L in
                for b in 0..<n / 32 {
                    let xb = x + b * 32, y = dst + b * 24
                    let (min, max) = minMax(xb, 32)
                    let d = (max - min) / 31
                    let id: Float = d != 0 ? 1 / d : 0
                    y.setF16(0, d)
                    y.setF16(2, min)
                    for j in 0..<32 { L[j] = clampTruncated((xb[j] - min) * id + 0.5, 31) }
                    packFiveBits(y + 4, { L[$0] })
                }
            }
        }
    }

    /// Q8_0 — 34 bytes per 32 weights, symmetric 8-bit.
    ///
    ///     offset  size  field
    ///          0     2  d    f16 scale
    ///          2    32  qs   i8 quants, weight j = qs[j]
    ///
    /// weight = d × q
    enum Q8_0 {
        static func dequantize(_ src: UnsafeRawPointer, blocks n: Int, into dst: UnsafeMutablePointer<Float>) {
            for b in 0..<n {
                let x = src + b * 34, y = dst + b * 32
                let d = x.f16(0)
                for j in 0..<32 {
                    y[j] = d * Float(x.i8(2 + j))
                }
            }
        }

        /// Round half away from zero (C's `roundf`); importance is ignored, as in llama.cpp.
        static func quantize(_ x: UnsafePointer<Float>, count n: Int, into dst: UnsafeMutableRawPointer,
                             importance _: UnsafePointer<Float>?) {
            for b in 0..<n / 32 {
                let xb = x + b * 32, y = dst + b * 34
                var amax: Float = 0
                for j in 0..<32 { amax = Swift.max(amax, abs(xb[j])) }
                let d = amax / 127
                let id: Float = d != 0 ? 1 / d : 0
                y.setF16(0, d)
                for j in 0..<32 {
                    let q = truncatedInt((xb[j] * id).rounded())
                    y.setU8(2 + j, UInt8(truncatingIfNeeded: Swift.max(-128, Swift.min(127, q))))
                }
            }
        }
    }

    /// Q8_1 — 36 bytes per 32 weights: Q8_0 plus a precomputed sum, used by ggml for the
    /// activations in dot products with the `_1` kinds.
    ///
    ///     offset  size  field
    ///          0     2  d    f16 scale
    ///          2     2  s    f16 d × Σ qs (not needed to decode)
    ///          4    32  qs   i8 quants, weight j = qs[j]
    ///
    /// weight = d × q. (The `gguf` Python package still sizes this block at 40 bytes, from
    /// when d and s were f32; ggml's struct and `DType` use 36.)
    enum Q8_1 {
        static func dequantize(_ src: UnsafeRawPointer, blocks n: Int, into dst: UnsafeMutablePointer<Float>) {
            for b in 0..<n {
                let x = src + b * 36, y = dst + b * 32
                let d = x.f16(0)
                for j in 0..<32 {
                    y[j] = d * Float(x.i8(4 + j))
                }
            }
        }
    }
}

// MARK: Shared encoder pieces

/// Index of the first weight of largest magnitude (numpy's `argmax` of `abs`).
@inline(__always)
func firstMaxMagnitude(_ x: UnsafePointer<Float>, _ n: Int) -> Int {
    var best = 0, amax = abs(x[0])
    for j in 1..<n where abs(x[j]) > amax {
        amax = abs(x[j]); best = j
    }
    return best
}

/// The smallest and largest of `n` weights.
@inline(__always)
func minMax(_ x: UnsafePointer<Float>, _ n: Int) -> (Float, Float) {
    var lo = x[0], hi = x[0]
    for j in 1..<n {
        lo = Swift.min(lo, x[j]); hi = Swift.max(hi, x[j])
    }
    return (lo, hi)
}

/// `v` truncated toward zero and clamped to 0…`top` (ggml's `MIN(top, (int8_t)v)` and
/// numpy's `trunc(v).astype(uint8).clip(0, top)`, which agree on in-range values).
@inline(__always)
func clampTruncated(_ v: Float, _ top: Int32) -> UInt8 {
    UInt8(truncatingIfNeeded: Swift.max(0, Swift.min(top, truncatedInt(v))))
}

/// Writes 32 five-bit quants as Q5_0/Q5_1 store them: `qh` (u32, bit j = bit 4 of quant j)
/// at `y`, then the low nibbles (quant j and j + 16 share a byte) at `y + 4`.
@inline(__always)
func packFiveBits(_ y: UnsafeMutableRawPointer, _ q: (Int) -> UInt8) {
    var qh: UInt32 = 0
    for j in 0..<16 {
        let q0 = q(j), q1 = q(j + 16)
        y.setU8(4 + j, (q0 & 0x0F) | (q1 & 0x0F) << 4)
        qh |= UInt32((q0 >> 4) & 1) << j | UInt32((q1 >> 4) & 1) << (j + 16)
    }
    y.setU32(0, qh)
}

extension Codecs {
    /// llama.cpp's imatrix encoder for Q4_0/Q5_0: per block, the weighted symmetric scale
    /// search with weight qw·√(σ² + x²), σ² the row's mean square (eight blocks side by
    /// side). Writes the f16 scale at offset 0 and lets `pack` store the quants
    /// (0…2·nmax − 1).
    static func symmetricWeighted(
        _ x: UnsafePointer<Float>, count n: Int, into dst: UnsafeMutableRawPointer,
        importance qw: UnsafePointer<Float>, blockBytes: Int, nmax: Int32,
        pack: (UnsafeMutableRawPointer, UnsafeMutablePointer<Int8>) -> Void
    ) {
        let sigma2 = sumOfSquares(x, n) / Float(n)
        withUnsafeTemporaryAllocation(of: Int8.self, capacity: 256) { L in
            withScratch(floats: 256, bytes: 1, lanes: 128) { w, _, v in
                let L = L.baseAddress!
                let vx = v, vw = v + 32, vL = v + 64, vaux = v + 96
                for b0 in stride(from: 0, to: n / 32, by: 8) {
                    let lanes = Swift.min(8, n / 32 - b0), xb = x + 32 * b0
                    for i in 0..<32 * lanes { w[i] = importanceWeight(qw[32 * b0 + i], sigma2, xb[i]) }
                    loadLanes(xb, stride: 32, lanes: lanes, n: 32, into: vx)
                    loadLanes(w, stride: 32, lanes: lanes, n: 32, into: vw)
                    let d = LaneSearch.symmetric(32, nmax: nmax, vx, weights: vw, vL, vaux)
                    storeLanes(vL, stride: 32, lanes: lanes, n: 32, into: L)
                    for g in 0..<lanes {
                        let y = dst + (b0 + g) * blockBytes
                        y.setF16(0, d[g])
                        pack(y, L + 32 * g)
                    }
                }
            }
        }
    }

    /// llama.cpp's imatrix encoder for Q4_1/Q5_1: per block, the weighted scale-and-minimum
    /// search (eight blocks side by side). Writes the f16 scale and minimum at offsets 0
    /// and 2 and lets `pack` store the quants (0…nmax).
    static func minimumWeighted(
        _ x: UnsafePointer<Float>, count n: Int, into dst: UnsafeMutableRawPointer,
        importance qw: UnsafePointer<Float>, blockBytes: Int, nmax: Int32,
        pack: (UnsafeMutableRawPointer, UnsafeMutablePointer<UInt8>) -> Void
    ) {
        let sigma2 = sumOfSquares(x, n) / Float(n)
        withScratch(floats: 256, bytes: 256, lanes: 128) { w, L, v in
            let vx = v, vw = v + 32, vL = v + 64, vaux = v + 96
            for b0 in stride(from: 0, to: n / 32, by: 8) {
                let lanes = Swift.min(8, n / 32 - b0), xb = x + 32 * b0
                for i in 0..<32 * lanes { w[i] = importanceWeight(qw[32 * b0 + i], sigma2, xb[i]) }
                loadLanes(xb, stride: 32, lanes: lanes, n: 32, into: vx)
                loadLanes(w, stride: 32, lanes: lanes, n: 32, into: vw)
                let (d, theMin) = LaneSearch.withMinimum(
                    32, nmax: nmax, vx, weights: vw, vL, vaux, rmin: -0.9, rdelta: 0.05, steps: 36, useMAD: false)
                storeLanes(vL, stride: 32, lanes: lanes, n: 32, into: L)
                for g in 0..<lanes {
                    let y = dst + (b0 + g) * blockBytes
                    y.setF16(0, d[g])
                    y.setF16(2, -theMin[g])
                    pack(y, L + 32 * g)
                }
            }
        }
    }
}
