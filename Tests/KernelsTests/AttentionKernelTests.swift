import CKernels
import Foundation
import Testing

/// Plain softmax attention of one query row, in f64, as the reference.
private func referenceAttention(q: [Float], keys: [Float], values: [Float], stride: Int, visible: Int,
                                heads: Int, kvHeads: Int, headDim: Int, scale: Float) -> [Float] {
    var out = [Float](repeating: 0, count: heads * headDim)
    let group = heads / kvHeads
    for h in 0..<heads {
        let g = h / group
        var s = [Double](repeating: 0, count: visible)
        for j in 0..<visible {
            var d = 0.0
            for i in 0..<headDim { d += Double(q[h * headDim + i]) * Double(keys[j * stride + g * headDim + i]) }
            s[j] = Double(scale) * d
        }
        let m = s.max()!
        let e = s.map { exp($0 - m) }
        let l = e.reduce(0, +)
        for i in 0..<headDim {
            var acc = 0.0
            for j in 0..<visible { acc += e[j] * Double(values[j * stride + g * headDim + i]) }
            out[h * headDim + i] = Float(acc / l)
        }
    }
    return out
}

/// The generation attention kernel equals plain softmax attention (to f32 rounding) for
/// every split of the positions over threads, with grouped heads, head widths on and off
/// the SIMD path, padded cache rows, and scores spread wide enough that the merge of the
/// parts' maxima matters.
@Test(arguments: [(9, 3, 64), (4, 4, 8), (6, 2, 12), (8, 1, 128)])
func attentionDecodeMatchesPlainSoftmax(shape: (Int, Int, Int)) {
    let (heads, kvHeads, headDim) = shape
    var rng = SystemRandomNumberGenerator()
    let stride = kvHeads * headDim + 5  // rows padded: the kernel must honour the stride
    for visible in [1, 2, 31, 32, 33, 64, 65, 200] {
        let q = (0..<heads * headDim).map { _ in Float.random(in: -2...2, using: &rng) }
        // Later positions drift upward so that different parts have different maxima.
        let keys = (0..<visible * stride).map { i in Float.random(in: -1...1, using: &rng) + Float(i / stride) * 0.02 }
        let values = (0..<visible * stride).map { _ in Float.random(in: -3...3, using: &rng) }
        let scale = 1 / Float(headDim).squareRoot()
        let expected = referenceAttention(q: q, keys: keys, values: values, stride: stride, visible: visible,
                                          heads: heads, kvHeads: kvHeads, headDim: headDim, scale: scale)
        for threads in [1, 2, 3] {
            var scratch = [Float](repeating: .nan, count: sq_attention_scratch_floats(visible, Int32(heads), Int32(headDim), Int32(threads)))
            var out = [Float](repeating: .nan, count: heads * headDim)
            sq_attention_decode(q, keys, values, stride, visible, Int32(heads), Int32(kvHeads), Int32(headDim), scale,
                                &out, &scratch, Int32(threads))
            let worst = zip(out, expected).map { abs($0 - $1) / max(1, abs($1)) }.max()!
            #expect(worst < 2e-5, "heads \(heads)/\(kvHeads)×\(headDim), \(visible) positions, \(threads) threads: \(worst)")
        }
    }
}

/// SwiGLU on the vector path (groups of eight) and the scalar tail agree with
/// `g / (1 + exp(−g)) · u` in f64 to 4e-7 relative (1e-30 absolute, where f32 underflows)
/// over −100…100, including the clamped
/// ends of the vector exp (−87.3, 88.7), zeros and both signs of `up`.
@Test func swigluMatchesTheDefinition() {
    var rng = SystemRandomNumberGenerator()
    for n in [1, 7, 8, 9, 1536] {
        var gate = (0..<n).map { _ in Float.random(in: -100...100, using: &rng) }
        if n >= 8 { gate[0] = 0; gate[1] = -90; gate[2] = 90; gate[3] = -87.3; gate[4] = 1e-30 }
        let up = (0..<n).map { _ in Float.random(in: -3...3, using: &rng) }
        let expected = zip(gate, up).map { g, u in Double(g) / (1 + exp(-Double(g))) * Double(u) }
        var got = gate
        sq_swiglu(&got, up, n)
        for i in 0..<n {
            let err = abs(Double(got[i]) - expected[i])
            #expect(err <= 4e-7 * abs(expected[i]) + 1e-30, "n \(n) g \(gate[i]) u \(up[i]): \(got[i]) vs \(expected[i])")
        }
    }
}
