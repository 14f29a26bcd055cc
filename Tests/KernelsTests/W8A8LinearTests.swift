import CKernels
import Foundation
@testable import Models
import Tensors
import Testing

// W8A8Linear and OutlierDecomposedLinear against DenseLinear on the same f32 weights.

/// The worst-case error of one W8A8 output. With x̂ = x + eₓ and ŵ = w + e_w, where
/// rounding to nearest keeps |eₓ| ≤ sx/2 and |e_w| ≤ sw/2 (no saturation),
///     |x̂·ŵ − x·w| ≤ (sx/2)·Σ|w| + (sw/2)·Σ|x| + k·(sx/2)·(sw/2),
/// plus f32 rounding of both results, allowed as 1e-5·Σ|x·w| (and 0.1% on the bound for
/// the rounding of the scale reciprocals).
func w8a8Bound(x: ArraySlice<Float>, w: ArraySlice<Float>, sx: Float, sw: Float) -> Double {
    let hx = Double(sx) / 2, hw = Double(sw) / 2
    var sumW = 0.0, sumX = 0.0, sumXW = 0.0
    for (a, b) in zip(x, w) {
        sumW += abs(Double(b))
        sumX += abs(Double(a))
        sumXW += abs(Double(a) * Double(b))
    }
    return 1.001 * (hx * sumW + hw * sumX + Double(x.count) * hx * hw) + 1e-5 * sumXW + 1e-7
}

/// A random dense layer (weights ~ N(0, 0.05²), a bias) and inputs ~ N(0, 1).
func randomDense(out: Int, in inF: Int, bias: Bool, seed: UInt64) -> (DenseLinear, [Float]) {
    var rng = SplitMix64(seed: seed)
    let w = (0..<out * inF).map { _ in gaussian(&rng, sigma: 0.05) }
    let b = bias ? (0..<out).map { _ in gaussian(&rng) } : nil
    return (DenseLinear(weight: FloatStorage(w), outFeatures: out, inFeatures: inF, bias: b), w)
}

func forward(_ layer: any Linear, _ x: [Float], rows: Int) -> [Float] {
    var y = [Float](repeating: .nan, count: rows * layer.outFeatures)
    layer.forward(x, rows: rows, into: &y)
    return y
}

/// ‖got − want‖ / ‖want‖.
func relativeRMS(_ got: [Float], _ want: [Float]) -> Double {
    let e = zip(got, want).reduce(0.0) { $0 + pow(Double($1.0) - Double($1.1), 2) }
    let s = want.reduce(0.0) { $0 + Double($1) * Double($1) }
    return (e / s).squareRoot()
}

/// Every output within the worst-case bound above, for dynamic and calibrated static
/// activations, at 1 row (generation), a few, and 300 (two row tiles, many channel tiles,
/// several threads). The typical error is far below the bound: for independent N(0, 1)
/// inputs the relative RMS error is about √2 · (max|x| / 127) / √12 ≈ 1%, asserted < 2%.
@Test(arguments: [false, true])
func w8a8LinearIsWithinTheQuantizationBoundOfDense(_ isStatic: Bool) {
    let out = 200, inF = 576
    let (dense, w) = randomDense(out: out, in: inF, bias: true, seed: 901)
    var rng = SplitMix64(seed: 902)
    for rows in [1, 5, 300] {
        let x = (0..<rows * inF).map { _ in gaussian(&rng) }
        let globalMax = x.map(abs).max()!
        let mode: W8A8Linear.ActivationMode = isStatic
            ? .staticPerTensor(scale: W8A8Linear.staticScale(maxAbs: globalMax)) : .dynamicPerToken
        let layer = W8A8Linear(dense, activations: mode)
        #expect(layer.storageBytes == sq_s8_packed_bytes(out, inF))
        let got = forward(layer, x, rows: rows), want = forward(dense, x, rows: rows)
        for r in 0..<rows {
            let xr = x[r * inF..<(r + 1) * inF]
            let sx = isStatic ? globalMax / 127 : xr.map(abs).max()! / 127
            for j in 0..<out {
                let bound = w8a8Bound(x: xr, w: w[j * inF..<(j + 1) * inF], sx: sx, sw: layer.weightScales[j])
                let err = abs(Double(got[r * out + j]) - Double(want[r * out + j]))
                #expect(err <= bound, "\(mode) rows=\(rows) [\(r), \(j)]: \(err) > \(bound)")
            }
        }
        let rel = relativeRMS(got, want)
        print(String(format: "W8A8 %@ rows=%d: relative RMS error %.4f%%", mode.description, rows, 100 * rel))
        #expect(rel < (isStatic && rows > 1 ? 0.03 : 0.02))
    }
}

/// Rows are independent and tiles exact: the whole batch at once (many tiles over the
/// threads) equals each row alone (one tile, one thread), bit for bit.
@Test func w8a8RowsAreIndependentOfBatchingAndThreads() {
    let out = 203, inF = 1001, rows = 300
    let (dense, _) = randomDense(out: out, in: inF, bias: true, seed: 903)
    let layer = W8A8Linear(dense)
    var rng = SplitMix64(seed: 904)
    let x = (0..<rows * inF).map { _ in gaussian(&rng) }
    let batched = forward(layer, x, rows: rows)
    var single = [Float](repeating: .nan, count: rows * out)
    x.withUnsafeBufferPointer { xb in
        single.withUnsafeMutableBufferPointer { yb in
            for r in 0..<rows { layer.forward(xb.baseAddress! + r * inF, rows: 1, into: yb.baseAddress! + r * out) }
        }
    }
    #expect(bits(batched) == bits(single))
}

/// The stored weights are the per-channel symmetric quantization: scale = max|row| / 127,
/// every weight within half a step, −128 never used; the layer's output equals the
/// scalar kernel on the same quantized operands.
@Test func w8a8WeightsArePerChannelSymmetricInt8() {
    let out = 37, inF = 70
    let (dense, w) = randomDense(out: out, in: inF, bias: false, seed: 905)
    let layer = W8A8Linear(dense)
    let deq = layer.dequantizedWeight()
    for j in 0..<out {
        let row = w[j * inF..<(j + 1) * inF]
        #expect(layer.weightScales[j] == row.map(abs).max()! / 127)
        let q = layer.quantizedWeightRow(j)
        #expect(q.contains { abs($0) == 127 } && !q.contains(-128))
        for c in 0..<inF {
            #expect(abs(deq[j * inF + c] - row[row.startIndex + c]) <= layer.weightScales[j] / 2 * 1.0001)
        }
    }
    // The same product through the scalar reference level.
    var rng = SplitMix64(seed: 906)
    let rows = 7
    let x = (0..<rows * inF).map { _ in gaussian(&rng) }
    var q = [Int8](repeating: 0, count: rows * inF), s = [Float](repeating: 0, count: rows)
    sq_s8_quantize_rows(x, inF, rows, inF, &q, inF, &s)
    let packed = UnsafeMutableRawPointer.allocate(byteCount: sq_s8_packed_bytes(out, inF), alignment: 64)
    defer { packed.deallocate() }
    let qw = (0..<out).flatMap { layer.quantizedWeightRow($0) }
    sq_s8_pack(qw, inF, out, inF, layer.weightScales, nil, packed)
    var reference = [Float](repeating: 0, count: rows * out)
    #expect(sq_s8_gemm_level(0, q, inF, s, rows, packed, out, inF, 0, out, &reference, out) == 0)
    #expect(bits(forward(layer, x, rows: rows)) == bits(reference))
}

/// Static activations saturate at ±127·scale: inputs beyond the calibrated range give
/// exactly the output of the clamped inputs; zero inputs give the bias.
@Test func w8a8StaticActivationsSaturateAtTheCalibratedRange() {
    let out = 40, inF = 96, rows = 6
    let (dense, _) = randomDense(out: out, in: inF, bias: true, seed: 907)
    let scale: Float = 0.02
    let layer = W8A8Linear(dense, activations: .staticPerTensor(scale: scale))
    var rng = SplitMix64(seed: 908)
    let x = (0..<rows * inF).map { _ in gaussian(&rng, sigma: 3) }
    let limit = 127 * scale
    let clamped = x.map { min(limit, max(-limit, $0)) }
    #expect(x.contains { abs($0) > limit })
    #expect(bits(forward(layer, x, rows: rows)) == bits(forward(layer, clamped, rows: rows)))
    let zeros = forward(layer, [Float](repeating: 0, count: rows * inF), rows: rows)
    #expect(zeros == Array((0..<rows).map { _ in dense.bias! }.joined()))
}

/// Outlier columns (LLM.int8()): found by |x| > threshold in any token (either sign, the
/// threshold itself excluded).
@Test func outlierColumnsAreThoseAboveTheThresholdInAnyToken() {
    let columns = 8
    var x = [Float](repeating: 0.5, count: 3 * columns)
    x[0 * columns + 2] = 6.01
    x[2 * columns + 5] = -7
    x[1 * columns + 6] = 6.0
    #expect(x.withUnsafeBufferPointer {
        OutlierDecomposedLinear.outlierColumns(in: $0.baseAddress!, rows: 3, columns: columns)
    } == [2, 5])
    #expect(x.withUnsafeBufferPointer {
        OutlierDecomposedLinear.outlierColumns(in: $0.baseAddress!, rows: 3, columns: columns, threshold: 0.4)
    } == Array(0..<columns))
}

/// An input that lives only on the outlier columns is computed entirely in f32: the
/// output is the BLAS product of those columns bit for bit (the int8 part contributes
/// exact zeros), and equals the dense layer up to f32 summation order.
@Test func outlierDecompositionIsExactF32OnOutlierColumns() {
    let out = 70, inF = 130, rows = 9
    let (dense, w) = randomDense(out: out, in: inF, bias: false, seed: 909)
    let cols = [3, 64, 65, 129]
    let layer = OutlierDecomposedLinear(dense, outlierColumns: [129, 3, 65, 64, 3])
    #expect(layer.outlierColumns == cols)
    #expect(layer.storageBytes == layer.int8Part.storageBytes + 4 * out * cols.count)
    var rng = SplitMix64(seed: 910)
    var x = [Float](repeating: 0, count: rows * inF)
    for r in 0..<rows { for c in cols { x[r * inF + c] = gaussian(&rng, sigma: 30) } }
    let got = forward(layer, x, rows: rows)
    // The same BLAS call on the gathered columns.
    let xo = (0..<rows).flatMap { r in cols.map { x[r * inF + $0] } }
    let wo = (0..<out).flatMap { j in cols.map { w[j * inF + $0] } }
    var want = [Float](repeating: 0, count: rows * out)
    BLAS.gemm(transposeB: true, m: rows, n: out, k: cols.count, xo, lda: cols.count, wo, ldb: cols.count, beta: 1,
              &want, ldc: out)
    #expect(bits(got) == bits(want))
    let full = forward(dense, x, rows: rows)
    for i in 0..<rows * out {
        let r = i / out, j = i % out
        let magnitude = cols.reduce(0.0) { $0 + abs(Double(x[r * inF + $1]) * Double(w[j * inF + $1])) }
        #expect(abs(Double(got[i]) - Double(full[i])) <= 1e-6 * magnitude + 1e-7)
    }
}

/// Activations with a few large feature columns (|x| ≈ 60 against N(0, 1) elsewhere, the
/// pattern LLM.int8() describes): one per-token scale spends its range on them, so plain
/// W8A8 rounds the ordinary features coarsely; decomposing those columns into f32 brings
/// the error back to the outlier-free bound, many times smaller.
@Test func outlierDecompositionBeatsPlainW8A8WhenActivationsHaveOutliers() {
    let out = 128, inF = 512, rows = 64
    let (dense, w) = randomDense(out: out, in: inF, bias: true, seed: 911)
    var rng = SplitMix64(seed: 912)
    var x = (0..<rows * inF).map { _ in gaussian(&rng) }
    let outliers = [7, 100, 301, 480]
    for r in 0..<rows { for c in outliers { x[r * inF + c] = (Bool.random(using: &rng) ? 1 : -1) * Float.random(in: 40...70, using: &rng) } }
    let found = x.withUnsafeBufferPointer {
        OutlierDecomposedLinear.outlierColumns(in: $0.baseAddress!, rows: rows, columns: inF)
    }
    #expect(found == outliers)
    let plain = W8A8Linear(dense), mixed = OutlierDecomposedLinear(dense, outlierColumns: found)
    let want = forward(dense, x, rows: rows)
    let plainErr = relativeRMS(forward(plain, x, rows: rows), want)
    let got = forward(mixed, x, rows: rows)
    let mixedErr = relativeRMS(got, want)
    print(String(format: "outlier activations: plain W8A8 relative RMS error %.3f%%, decomposed %.3f%%",
                 100 * plainErr, 100 * mixedErr))
    #expect(mixedErr * 5 < plainErr)
    // Per output: within the W8A8 bound of the non-outlier columns alone.
    let rest = (0..<inF).filter { !outliers.contains($0) }
    for r in 0..<rows {
        let xr = rest.map { x[r * inF + $0] }
        let sx = xr.map(abs).max()! / 127
        for j in 0..<out {
            let wr = rest.map { w[j * inF + $0] }
            let bound = w8a8Bound(x: xr[...], w: wr[...], sx: sx, sw: mixed.int8Part.weightScales[j])
            #expect(abs(Double(got[r * out + j]) - Double(want[r * out + j])) <= bound + 1e-4)
        }
    }
}

/// LLM.int8() over stored int8 rows: the outlier columns are found in each batch (|x| ≥
/// threshold in any row), multiplied in f32 with the dequantized int8 columns, and the
/// rest goes through the int8 product. Without outliers (or with threshold 0) it is the
/// plain W8A8 layer over the same rows, bit for bit.
@Test func llmInt8FindsOutliersPerBatchAndUsesTheStoredRows() {
    let out = 96, inF = 256, rows = 12
    let (dense, _) = randomDense(out: out, in: inF, bias: false, seed: 913)
    let w8a8 = W8A8Linear(dense)
    let q = (0..<out).flatMap { w8a8.quantizedWeightRow($0) }
    let layer = LLMInt8Linear(quantizedWeight: q, scales: w8a8.weightScales, outFeatures: out, inFeatures: inF, threshold: 6)
    let off = LLMInt8Linear(quantizedWeight: q, scales: w8a8.weightScales, outFeatures: out, inFeatures: inF, threshold: 0)
    #expect(layer.storageBytes == out * inF + 4 * out)
    var rng = SplitMix64(seed: 914)
    var x = (0..<rows * inF).map { _ in gaussian(&rng, sigma: 0.5) }
    for i in x.indices { x[i] = max(-5.9, min(5.9, x[i])) }
    // No column reaches the threshold: the plain int8 product.
    #expect(bits(forward(layer, x, rows: rows)) == bits(forward(w8a8, x, rows: rows)))
    // Two columns reach it in one row each (≥, as bitsandbytes compares).
    x[3 * inF + 17] = 6
    x[9 * inF + 200] = -40
    let found = x.withUnsafeBufferPointer { layer.outlierColumns($0.baseAddress!, rows: rows) }
    #expect(found == [17, 200])
    let got = forward(layer, x, rows: rows)
    #expect(bits(forward(off, x, rows: rows)) == bits(forward(w8a8, x, rows: rows)))
    // The reference: int8 part with the columns zeroed, plus the f32 product of the columns
    // with the dequantized stored weights.
    var rest = x
    for r in 0..<rows { for c in found { rest[r * inF + c] = 0 } }
    var want = forward(w8a8, rest, rows: rows)
    for r in 0..<rows {
        for j in 0..<out {
            var s: Float = 0
            for c in found { s += x[r * inF + c] * (Float(q[j * inF + c]) * w8a8.weightScales[j]) }
            want[r * out + j] += s
        }
    }
    for i in want.indices { #expect(abs(got[i] - want[i]) <= 1e-5 * max(1, abs(want[i]))) }
    // The outlier feature no longer costs the other features their resolution.
    let exact = forward(dense, x, rows: rows)
    #expect(relativeRMS(got, exact) * 3 < relativeRMS(forward(w8a8, x, rows: rows), exact))
}
