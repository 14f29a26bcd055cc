import CKernels
import Foundation
import Models
import Quantization
import Tensors
import Testing

// The C dot-product kernels: every SIMD level against the scalar reference, and the
// scalar reference against f32 arithmetic on the dequantized weights.

/// Row lengths to try: one block, a few, an odd count and many.
func lengths(_ t: KernelType) -> [Int] {
    t.blockSize == 32 ? [32, 96, 544, 1056, 4096] : [256, 768, 1280, 4096]
}

/// With power-of-two scales and small activation quants every intermediate is an exactly
/// representable f32, so the order of additions cannot matter: a SIMD kernel must equal
/// the scalar reference bit for bit. Any slip in unpacking, sign handling, saturation or
/// scale indexing shows up as a mismatch.
@Test(arguments: KernelType.all)
func simdKernelsEqualScalarExactlyWithPowerOfTwoScales(_ t: KernelType) throws {
    var rng = SplitMix64(seed: 7 &+ UInt64(t.id))
    let rows = 5
    for n in lengths(t) {
        let w = t.randomRows(rows, n: n, rng: &rng,
                             scale: { [1 / 16, 1 / 32][Int.random(in: 0...1, using: &$0)] },
                             minimum: { Float(-Int.random(in: 0...8, using: &$0)) / 16 })
        let act = ActivationRow(type: t, n: n)
        act.set(quants: (0..<n).map { _ in Int8.random(in: -3...3, using: &rng) },
                scales: (0..<n / act.blockSize).map { _ in [0.5, 0.25][Int.random(in: 0...1, using: &rng)] })
        let (scalarLevel, reference) = kernelDots(t, level: 0, n: n, weights: w, rows: rows, act: act)
        #expect(scalarLevel == 0)
        #expect(reference.allSatisfy { $0.isFinite })
        for level in simdLevels {
            let (used, got) = kernelDots(t, level: level, n: n, weights: w, rows: rows, act: act)
            #expect(used >= 1, "\(t) has no SIMD kernel at level \(level)")
            #expect(got == reference, "\(t) n=\(n) level \(level) (kernel \(used))")
        }
    }
}

/// Realistic scales and full-range activations: the integer sums are still exact, the
/// f32 combination of blocks may round differently, so SIMD and scalar agree within
/// 1e-4 × Σ|wᵢ·x̂ᵢ| (x̂ the dequantized activation; rounding alone is ~1e-6 of that).
@Test(arguments: KernelType.all)
func simdKernelsMatchScalarOnRandomBlocks(_ t: KernelType) throws {
    var rng = SplitMix64(seed: 11 &+ UInt64(t.id))
    let rows = 9
    for n in lengths(t) {
        let w = t.randomRows(rows, n: n, rng: &rng, scale: { Float.random(in: 0.001...0.02, using: &$0) },
                             minimum: { t.minIsSubtracted ? Float.random(in: 0...0.01, using: &$0)
                                                          : -Float.random(in: 0...0.1, using: &$0) })
        let act = ActivationRow(type: t, quantizing: (0..<n).map { _ in gaussian(&rng) })
        let wf = t.dequantize(w, count: rows * n), xq = act.dequantized
        let (_, reference) = kernelDots(t, level: 0, n: n, weights: w, rows: rows, act: act)
        for level in simdLevels {
            let (used, got) = kernelDots(t, level: level, n: n, weights: w, rows: rows, act: act)
            #expect(used >= 1)
            for r in 0..<rows {
                let magnitude = (0..<n).reduce(0.0) { $0 + abs(Double(wf[r * n + $1]) * Double(xq[$1])) }
                #expect(abs(Double(got[r]) - Double(reference[r])) <= 1e-4 * magnitude,
                        "\(t) n=\(n) level \(used) row \(r): \(got[r]) vs \(reference[r])")
            }
        }
    }
}

/// The scalar reference (and so every kernel) computes Σ wᵢ·x̂ᵢ: against f64 arithmetic on
/// the dequantized weights and the dequantized activation quants it agrees within
/// 1e-5 × Σ|wᵢ·x̂ᵢ| (f32 rounding of block scales and sums).
@Test(arguments: KernelType.all)
func scalarReferenceIsTheDotOfDequantizedValues(_ t: KernelType) throws {
    var rng = SplitMix64(seed: 13 &+ UInt64(t.id))
    let rows = 6, n = 4 * 256
    let w = t.randomRows(rows, n: n, rng: &rng, scale: { Float.random(in: 0.001...0.02, using: &$0) },
                         minimum: { t.minIsSubtracted ? Float.random(in: 0...0.01, using: &$0)
                                                      : -Float.random(in: 0...0.1, using: &$0) })
    let act = ActivationRow(type: t, quantizing: (0..<n).map { _ in gaussian(&rng) })
    let wf = t.dequantize(w, count: rows * n), xq = act.dequantized
    let (_, got) = kernelDots(t, level: 0, n: n, weights: w, rows: rows, act: act)
    for r in 0..<rows {
        var exact = 0.0, magnitude = 0.0
        for i in 0..<n {
            exact += Double(wf[r * n + i]) * Double(xq[i])
            magnitude += abs(Double(wf[r * n + i]) * Double(xq[i]))
        }
        #expect(abs(Double(got[r]) - exact) <= 1e-5 * magnitude, "\(t) row \(r): \(got[r]) vs \(exact)")
    }
}

/// Against the original f32 activations the only extra error is activation rounding,
/// |x̂ᵢ − xᵢ| ≤ dᵢ/2: the result must lie within Σ|wᵢ|·dᵢ/2 (a hard bound) and, for these
/// sizes, within 1% of ‖w‖·‖x‖ (typically ~0.1%).
@Test(arguments: KernelType.all)
func quantizedDotApproximatesTheFloatDot(_ t: KernelType) throws {
    var rng = SplitMix64(seed: 17 &+ UInt64(t.id))
    let rows = 16, n = t.blockSize == 32 ? 576 : 1536
    let w = t.randomRows(rows, n: n, rng: &rng, scale: { Float.random(in: 0.001...0.02, using: &$0) },
                         minimum: { t.minIsSubtracted ? Float.random(in: 0...0.01, using: &$0)
                                                      : -Float.random(in: 0...0.1, using: &$0) })
    let x = (0..<n).map { _ in gaussian(&rng) }
    let act = ActivationRow(type: t, quantizing: x)
    let wf = t.dequantize(w, count: rows * n)
    var out = [Float](repeating: 0, count: rows)
    w.withUnsafeBytes { sq_qdot_rows(t.id, n, $0.baseAddress!, t.type.byteCount(elements: n)!, rows, act.pointer, &out) }
    let xNorm = sqrt(x.reduce(0.0) { $0 + Double($1) * Double($1) })
    var worst = 0.0
    for r in 0..<rows {
        var exact = 0.0, bound = 0.0, wNorm = 0.0, magnitude = 0.0
        for i in 0..<n {
            let wi = Double(wf[r * n + i])
            exact += wi * Double(x[i])
            bound += abs(wi) * Double(act.d(i / act.blockSize)) / 2
            wNorm += wi * wi
            magnitude += abs(wi * Double(x[i]))
        }
        let err = abs(Double(out[r]) - exact)
        #expect(err <= bound * 1.001 + 1e-5 * magnitude, "\(t) row \(r): error \(err) above the bound \(bound)")
        worst = max(worst, err / (wNorm.squareRoot() * xNorm))
    }
    #expect(worst < 0.01, "\(t): error \(worst) of ‖w‖·‖x‖")
}

/// The multi-row entry point (`sq_qdot_gemm`, which unpacks each weight block once for up
/// to eight activation rows) at every level equals the scalar single-row reference: bit for
/// bit with power-of-two scales, within 1e-4 × Σ|wᵢ·x̂ᵢ| with realistic ones. Activation
/// counts cover a partial group, exact groups and more than one group.
@Test(arguments: KernelType.all)
func multiRowKernelsEqualTheScalarReference(_ t: KernelType) throws {
    var rng = SplitMix64(seed: 23 &+ UInt64(t.id))
    let rows = 3, n = t.blockSize == 32 ? 96 : 512
    let rowBytes = t.type.byteCount(elements: n)!
    for exact in [true, false] {
        let w = t.randomRows(rows, n: n, rng: &rng,
                             scale: { exact ? [1 / 16, 1 / 32][Int.random(in: 0...1, using: &$0)]
                                            : Float.random(in: 0.001...0.02, using: &$0) },
                             minimum: { exact ? Float(-Int.random(in: 0...8, using: &$0)) / 16
                                              : (t.minIsSubtracted ? 0.005 : -0.05) })
        let wf = t.dequantize(w, count: rows * n)
        for nact in [1, 3, 4, 8, 11] {
            let acts = (0..<nact).map { _ -> ActivationRow in
                if !exact { return ActivationRow(type: t, quantizing: (0..<n).map { _ in gaussian(&rng) }) }
                let a = ActivationRow(type: t, n: n)
                a.set(quants: (0..<n).map { _ in Int8.random(in: -3...3, using: &rng) },
                      scales: (0..<n / a.blockSize).map { _ in [0.5, 0.25][Int.random(in: 0...1, using: &rng)] })
                return a
            }
            // The rows packed at a stride, as QuantizedLinear lays them out.
            let stride = (acts[0].byteCount + 63) & ~63
            let packed = UnsafeMutableRawPointer.allocate(byteCount: stride * nact, alignment: 64)
            defer { packed.deallocate() }
            for (i, a) in acts.enumerated() { (packed + i * stride).copyMemory(from: a.pointer, byteCount: a.byteCount) }
            for level in [0] + simdLevels {
                var out = [Float](repeating: .nan, count: nact * rows)
                let used = w.withUnsafeBytes {
                    sq_qdot_gemm_level(level, t.id, n, $0.baseAddress!, rowBytes, rows, packed, stride, nact, &out, rows)
                }
                #expect(used >= 0)
                for (i, a) in acts.enumerated() {
                    let (_, reference) = kernelDots(t, level: 0, n: n, weights: w, rows: rows, act: a)
                    let xq = a.dequantized
                    for r in 0..<rows {
                        let got = out[i * rows + r]
                        if exact {
                            #expect(got == reference[r], "\(t) level \(used) nact=\(nact) [\(i),\(r)]")
                        } else {
                            let magnitude = (0..<n).reduce(0.0) { $0 + abs(Double(wf[r * n + $1]) * Double(xq[$1])) }
                            #expect(abs(Double(got) - Double(reference[r])) <= 1e-4 * magnitude,
                                    "\(t) level \(used) nact=\(nact) [\(i),\(r)]")
                        }
                    }
                }
            }
        }
    }
}

/// The single-row AVX-512 kernels (four blocks per step, masked loads for a last group of
/// one to three blocks) on edge cases, against the scalar reference bit for bit: all-zero
/// weights and activations, quants at their extremes (nibbles 0 and 15, Q8_0's −128 and
/// 127, activations ±127), and subnormal f16 weight scales. Scales are powers of two at
/// most a factor 2 apart and rows short enough (≤ 15 blocks) that every f32 intermediate
/// is exact, so any order of additions gives the same bits. Lengths cover 1–5 blocks, 8 + 4 + 2 and 8 + 4 + 3 blocks.
@Test(arguments: KernelType.all.filter { $0.blockSize == 32 })
func singleRowKernelsEqualScalarOnEdgeCases(_ t: KernelType) throws {
    var rng = SplitMix64(seed: 29 &+ UInt64(t.id))
    let rows = 5, bpb = t.type.bytesPerBlock
    let extremes: [UInt8] = [0x00, 0xFF, 0x7F, 0x80, 0x0F, 0xF0]
    for n in [32, 64, 96, 128, 160, 448, 480] {
        for edge in ["zeros", "extremes", "subnormal scales"] {
            var w = t.randomRows(rows, n: n, rng: &rng,
                                 scale: { edge == "subnormal scales" ? [0x1p-24, 0x1p-23][Int.random(in: 0...1, using: &$0)]
                                                                     : [1 / 16, 1 / 32][Int.random(in: 0...1, using: &$0)] },
                                 minimum: { -[1 / 16, 1 / 32][Int.random(in: 0...1, using: &$0)] })
            let act = ActivationRow(type: t, n: n)
            if edge == "zeros" {
                w = [UInt8](repeating: 0, count: w.count)
                act.set(quants: [Int8](repeating: 0, count: n), scales: [Float](repeating: 0, count: n / 32))
            } else {
                let fields = Set(t.scaleOffsets.flatMap { [$0, $0 + 1] })
                for i in w.indices where !fields.contains(i % bpb) { w[i] = extremes.randomElement(using: &rng)! }
                act.set(quants: (0..<n).map { _ in [-127, 127, 0, 1][Int.random(in: 0...3, using: &rng)] },
                        scales: [Float](repeating: 0.5, count: n / 32))
            }
            let (_, reference) = kernelDots(t, level: 0, n: n, weights: w, rows: rows, act: act)
            if edge == "zeros" { #expect(reference.allSatisfy { $0 == 0 }) }
            for level in simdLevels {
                let (used, got) = kernelDots(t, level: level, n: n, weights: w, rows: rows, act: act)
                #expect(used >= 1)
                #expect(got == reference, "\(t) n=\(n) \(edge) level \(used)")
            }
        }
    }
}

/// The activation layouts: scale max|x|/127, nearest-even quants, and the per-block sums.
@Test func activationQuantizationFollowsTheLayout() {
    var rng = SplitMix64(seed: 3)
    let x = (0..<512).map { _ in gaussian(&rng, sigma: 3) }
    for t in [KernelType.all[0], KernelType.all[2], KernelType.all[6]] {  // Q8_0, Q4_1 (paired), Q2_K
        let act = ActivationRow(type: t, quantizing: Array(x.prefix(t.blockSize == 32 ? 480 : 512)))
        for b in 0..<act.blocks {
            let block = x[b * act.blockSize..<(b + 1) * act.blockSize]
            let d = block.map(abs).max()! / 127
            #expect(act.d(b) == d)
            for i in block.indices { #expect(act.quant(i) == Int8((x[i] * (1 / d)).rounded(.toNearestOrEven))) }
            let qsum = block.indices.reduce(0) { $0 + Int(act.quant($1)) }
            if act.blockSize == 32 {
                #expect(act.s(b) == d * Float(qsum))
            } else {
                #expect((0..<16).reduce(0) { $0 + Int(act.bsums[16 * b + $1]) } == qsum)
            }
        }
    }
    // The paired layout: blocks 2p and 2p+1 interleave their halves; an odd last block
    // (480 = 15 blocks) stays in order; every position is used once.
    let q41 = ActivationRow(type: KernelType.all[2], n: 480)
    #expect((0..<16).map(q41.position) == Array(0..<16))
    #expect((16..<32).map(q41.position) == Array(32..<48))
    #expect((32..<48).map(q41.position) == Array(16..<32))
    #expect((448..<480).map(q41.position) == Array(448..<480))
    #expect(Set((0..<480).map(q41.position)) == Set(0..<480))
    // An all-zero block quantizes to zeros with scale 0 (no division by zero).
    let zero = ActivationRow(type: KernelType.all[0], quantizing: [Float](repeating: 0, count: 32))
    #expect(zero.d(0) == 0 && (0..<32).allSatisfy { zero.qs[$0] == 0 })
}

@Test func kernelLevelsAndSupport() {
    for t in KernelType.all {
        #expect(sq_qdot_supported(t.id) == 1)
        #expect(QuantizedLinear.hasKernel(t.type))
        #expect(sq_qdot_level(t.id) >= 0)
    }
    for t in [DType.f32, .f16, .q8_1, .q8_K, .tq1_0, .mxfp4, .iq2_xxs] {
        #expect(sq_qdot_supported(t.ggmlTypeID!) == 0)
        #expect(!QuantizedLinear.hasKernel(t))
        #expect(sq_qdot_level(t.ggmlTypeID!) == -1)
    }
    #if arch(x86_64)
    // Levels beyond the CPU's, or of the other architecture, are refused.
    var out: Float = 0
    let act = ActivationRow(type: KernelType.all[0], n: 32)
    let w = [UInt8](repeating: 0, count: 34)
    #expect(sq_qdot_rows_level(3, 8, 32, w, 34, 1, act.pointer, &out) == -1)
    if sq_cpu_level() < 2 { #expect(sq_qdot_rows_level(2, 8, 32, w, 34, 1, act.pointer, &out) == -1) }
    #endif
}

/// Generation's four-row kernels (one activation row, weight rows four at a time, the rest
/// one at a time) at every level equal the scalar reference bit for bit with power-of-two
/// scales, for every row count from 1 to 9 (no group, one, two, with 0–3 rows left over),
/// an odd block count (the last block in order) and an even one, and rows spaced wider
/// than they are long.
@Test(arguments: KernelType.all)
func fourRowGenerationKernelsEqualScalarForEveryRowCount(_ t: KernelType) throws {
    var rng = SplitMix64(seed: 31 &+ UInt64(t.id))
    let rowBytes = t.type.byteCount(elements: t.blockSize * 5)!
    for n in [t.blockSize * 5, t.blockSize * 4] {
        let bytes = t.type.byteCount(elements: n)!
        for rows in 1...9 {
            let w = t.randomRows(rows, n: n, rng: &rng,
                                 scale: { [1 / 16, 1 / 32][Int.random(in: 0...1, using: &$0)] },
                                 minimum: { Float(-Int.random(in: 0...8, using: &$0)) / 16 })
            // The same rows at a stride of `rowBytes + 64` (the padding is never read as weights).
            let stride = rowBytes + 64
            var spaced = [UInt8](repeating: 0xAB, count: rows * stride)
            for r in 0..<rows { spaced.replaceSubrange(r * stride..<r * stride + bytes, with: w[r * bytes..<(r + 1) * bytes]) }
            let act = ActivationRow(type: t, n: n)
            act.set(quants: (0..<n).map { _ in Int8.random(in: -3...3, using: &rng) },
                    scales: (0..<n / act.blockSize).map { _ in [0.5, 0.25][Int.random(in: 0...1, using: &rng)] })
            let (_, reference) = kernelDots(t, level: 0, n: n, weights: w, rows: rows, act: act)
            for level in simdLevels {
                let (used, got) = kernelDots(t, level: level, n: n, weights: w, rows: rows, act: act)
                #expect(got == reference, "\(t) n=\(n) rows=\(rows) level \(used)")
                var out = [Float](repeating: .nan, count: rows)
                _ = spaced.withUnsafeBytes { sq_qdot_rows_level(level, t.id, n, $0.baseAddress!, stride, rows, act.pointer, &out) }
                #expect(out == reference, "\(t) n=\(n) rows=\(rows) stride \(stride) level \(used)")
            }
        }
    }
}
