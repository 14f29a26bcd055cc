import Tensors

extension Codecs {
    /// Q4_K — 144 bytes per 256 weights: 8 groups of 32, each with a 6-bit scale and a 6-bit
    /// minimum, under two f16 super-block scales.
    ///
    ///     offset  size  field
    ///          0     2  d       f16 super-scale of the scales
    ///          2     2  dmin    f16 super-scale of the mins
    ///          4    12  scales  eight 6-bit scales and eight 6-bit mins (see `scaleMin`)
    ///         16   128  qs      4-bit quants (see below)
    ///
    /// Weight i = 64c + 32h + l (c < 4, h < 2, l < 32) is the low (h = 0) or high (h = 1)
    /// nibble of qs[32c + l]; its group is i / 32.
    ///
    /// weight = (d × scale) × q − (dmin × min)
    enum Q4_K {
        static func dequantize(_ src: UnsafeRawPointer, blocks n: Int, into dst: UnsafeMutablePointer<Float>) {
            for b in 0..<n {
                let x = src + b * 144, y = dst + b * 256
                let d = x.f16(0), dmin = x.f16(2)
                for c in 0..<4 {
                    let qs = x + 16 + 32 * c
                    let (sc0, m0) = scaleMin(x + 4, 2 * c)
                    let (sc1, m1) = scaleMin(x + 4, 2 * c + 1)
                    let d0 = d * Float(sc0), min0 = dmin * Float(m0)
                    let d1 = d * Float(sc1), min1 = dmin * Float(m1)
                    let out = y + 64 * c
                    for l in 0..<32 {
                        let q = qs.u8(l)
                        out[l] = d0 * Float(q & 0x0F) - min0
                        out[l + 32] = d1 * Float(q >> 4) - min1
                    }
                }
            }
        }

        /// Scale and minimum `j` (0…7, each 0…63) of the 12-byte packed field shared by Q4_K
        /// and Q5_K. Bytes 0–3 hold scales 0–3 in their low 6 bits, bytes 4–7 mins 0–3; for
        /// j ≥ 4, byte 8 + (j − 4) holds the low 4 bits of scale j (low nibble) and of min j
        /// (high nibble), and the top 2 bits of bytes j − 4 and j give their high 2 bits.
        @inline(__always)
        static func scaleMin(_ s: UnsafeRawPointer, _ j: Int) -> (UInt8, UInt8) {
            if j < 4 {
                return (s.u8(j) & 63, s.u8(j + 4) & 63)
            }
            let packed = s.u8(j + 4)
            return ((packed & 0x0F) | (s.u8(j - 4) >> 6) << 4,
                    (packed >> 4) | (s.u8(j) >> 6) << 4)
        }

        /// Without importance, ggml's reference encoder: per group of 32, the squared-error
        /// scale-and-minimum search weighted by (rms + |x|), then the 6-bit scales and
        /// minimums against the block's largest. With importance, llama.cpp's imatrix
        /// encoder: the search weighted by qw·√(σ² + x²) (σ² twice the block's mean
        /// square), then the 6-bit scales and minimums fitted by weighted searches of their
        /// own. Either way the quants are then recomputed from the stored (rounded) scales.
        static func quantize(_ x: UnsafePointer<Float>, count n: Int, into dst: UnsafeMutableRawPointer,
                             importance qw: UnsafePointer<Float>?) {
            withScratch(floats: KQuantScales.floats, bytes: KQuantScales.bytes, lanes: KQuantScales.lanes) { f, b, v in
                let scratch = KQuantScales(f, b, v)
                for blk in 0..<n / 256 {
                    let xb = x + 256 * blk, y = dst + 144 * blk
                    scratch.encode(xb, y, importance: qw.map { $0 + 256 * blk }, nmax: 15,
                                   rmin: -1, rdelta: 0.1, steps: 20, clampImportanceScales: false)
                    let L = scratch.L
                    for c in 0..<4 {
                        for l in 0..<32 {
                            y.setU8(16 + 32 * c + l, L[64 * c + l] | L[64 * c + 32 + l] << 4)
                        }
                    }
                }
            }
        }
    }
}

/// The part Q4_K and Q5_K share: the scale and minimum of each group of 32, encoded as
/// two f16 super-scales at offsets 0 and 2 and twelve bytes of 6-bit values at 4 (see
/// `Q4_K.scaleMin`), and the quants (0…nmax) recomputed from them in `L`.
struct KQuantScales {
    static let floats = 256 + 8 + 8 + 8, bytes = 256 + 8 + 8, lanes = 4 * 32
    let weights, scales, mins, sw: UnsafeMutablePointer<Float>
    let L, Ls, Lm: UnsafeMutablePointer<UInt8>
    let vx, vw, vL, vaux: UnsafeMutablePointer<Lanes>

    init(_ f: UnsafeMutablePointer<Float>, _ b: UnsafeMutablePointer<UInt8>, _ v: UnsafeMutablePointer<Lanes>) {
        weights = f; scales = f + 256; mins = f + 264; sw = f + 272
        L = b; Ls = b + 256; Lm = b + 264
        vx = v; vw = v + 32; vL = v + 64; vaux = v + 96
    }

    /// Encodes one 256-weight block's scales into `y` and its quants into `L`. The
    /// reference search's parameters are `rmin`, `rdelta` and `steps`; the imatrix one
    /// always uses −0.9, 0.05, 36. `clampImportanceScales` mirrors Q5_K's `MIN(63, ·)`
    /// on the imatrix path (Q4_K's lacks it; it matters only for degenerate blocks).
    func encode(
        _ xb: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, importance qb: UnsafePointer<Float>?,
        nmax: Int32, rmin: Float, rdelta: Float, steps: Int, clampImportanceScales: Bool
    ) {
        if let qb {
            let sigma2 = 2 * sumOfSquares(xb, 256) / 256
            for i in 0..<256 { weights[i] = importanceWeight(qb[i], sigma2, xb[i]) }
            for j in 0..<8 {
                var sum: Float = 0
                for l in 0..<32 { sum += weights[32 * j + l] }
                sw[j] = sum
            }
        } else {
            for j in 0..<8 {
                let xg = xb + 32 * j
                let avX = (sumOfSquares(xg, 32) / 32).squareRoot()
                for l in 0..<32 { weights[32 * j + l] = avX + abs(xg[l]) }
            }
        }
        // The eight groups' searches side by side.
        loadLanes(xb, stride: 32, lanes: 8, n: 32, into: vx)
        loadLanes(weights, stride: 32, lanes: 8, n: 32, into: vw)
        let (s, m) = qb != nil
            ? LaneSearch.withMinimum(32, nmax: nmax, vx, weights: vw, vL, vaux,
                                     rmin: -0.9, rdelta: 0.05, steps: 36, useMAD: false)
            : LaneSearch.withMinimum(32, nmax: nmax, vx, weights: vw, vL, vaux,
                                     rmin: rmin, rdelta: rdelta, steps: steps, useMAD: false)
        storeLanes(vL, stride: 32, lanes: 8, n: 32, into: L)
        for j in 0..<8 { scales[j] = s[j]; mins[j] = m[j] }

        if qb != nil {
            let d = ScaleSearch.positive(8, nmax: 63, scales, Ls, weights: sw)
            let m = ScaleSearch.positive(8, nmax: 63, mins, Lm, weights: sw)
            for j in 0..<8 {
                let ls = clampImportanceScales ? Swift.min(63, Ls[j]) : Ls[j]
                let lm = clampImportanceScales ? Swift.min(63, Lm[j]) : Lm[j]
                setScaleMin(y + 4, j, ls, lm)
            }
            y.setF16(0, d)
            y.setF16(2, m)
        } else {
            var maxScale: Float = 0, maxMin: Float = 0
            for j in 0..<8 {
                if scales[j] > maxScale { maxScale = scales[j] }
                if mins[j] > maxMin { maxMin = mins[j] }
            }
            let invScale: Float = maxScale > 0 ? 63 / maxScale : 0
            let invMin: Float = maxMin > 0 ? 63 / maxMin : 0
            for j in 0..<8 {
                let ls = Swift.min(63, UInt8(truncatingIfNeeded: nearestInt(invScale * scales[j])))
                let lm = Swift.min(63, UInt8(truncatingIfNeeded: nearestInt(invMin * mins[j])))
                setScaleMin(y + 4, j, ls, lm)
            }
            y.setF16(0, maxScale / 63)
            y.setF16(2, maxMin / 63)
        }
        // Requantize against the stored scales; groups with a zero scale keep the
        // search's quants.
        let d = UnsafeRawPointer(y).f16(0), dmin = UnsafeRawPointer(y).f16(2)
        for j in 0..<8 {
            let (sc, m) = Codecs.Q4_K.scaleMin(UnsafeRawPointer(y + 4), j)
            let dl = d * Float(sc)
            if dl == 0 { continue }
            let ml = dmin * Float(m)
            for i in 0..<32 {
                let l = nearestInt((xb[32 * j + i] + ml) / dl)
                L[32 * j + i] = UInt8(truncatingIfNeeded: Swift.max(0, Swift.min(nmax, l)))
            }
        }
    }

    /// Stores scale `ls` and minimum `lm` of group `j` in the packed 12-byte field, whose
    /// bytes for groups below `j` are already written.
    private func setScaleMin(_ s: UnsafeMutableRawPointer, _ j: Int, _ ls: UInt8, _ lm: UInt8) {
        if j < 4 {
            s.setU8(j, ls)
            s.setU8(j + 4, lm)
        } else {
            s.setU8(j + 4, (ls & 0x0F) | (lm & 0x0F) << 4)
            s.setU8(j - 4, s.u8(j - 4) | (ls >> 4) << 6)
            s.setU8(j, s.u8(j) | (lm >> 4) << 6)
        }
    }
}
