import Testing
@testable import Models
import Tensors

/// A small random Llama built in memory, for checks that need no checkpoint.
func tinyLlama(seed: UInt64 = 1, style: RoPE.Style = .halves) -> LlamaModel {
    var rng = SplitMix64(seed: seed)
    func rand(_ n: Int, scale: Float = 0.2) -> [Float] { (0..<n).map { _ in (Float(rng.nextDouble()) * 2 - 1) * scale } }
    let hp = LlamaHyperparameters(vocabSize: 50, hiddenSize: 32, intermediateSize: 48, layerCount: 2, headCount: 4,
                                  kvHeadCount: 2, ropeBase: 10000, ropeStyle: style, contextLength: 64)
    func lin(_ o: Int, _ i: Int) -> DenseLinear { DenseLinear(Tensor(shape: [o, i], data: rand(o * i))) }
    let blocks = (0..<hp.layerCount).map { _ in
        LlamaBlock(attentionNorm: rand(32, scale: 1).map { 1 + $0 * 0.1 }, query: lin(32, 32), key: lin(16, 32),
                   value: lin(16, 32), output: lin(32, 32), mlpNorm: rand(32, scale: 1).map { 1 + $0 * 0.1 },
                   gate: lin(48, 32), up: lin(48, 32), down: lin(32, 48))
    }
    let embed = lin(50, 32)
    return LlamaModel(hp: hp, embedding: embed, blocks: blocks, outputNorm: [Float](repeating: 1, count: 32), head: embed)
}

@Test(arguments: [RoPE.Style.halves, .interleaved])
func incrementalDecodingMatchesBatchPrefill(style: RoPE.Style) {
    let model = tinyLlama(style: style)
    let tokens: [Int32] = [3, 17, 42, 8, 8, 1, 29, 30]
    let batch = model.forward(tokens, cache: model.makeCache(), logitsFrom: 0)
    let cache = model.makeCache()
    var maxDiff: Float = 0
    // Prefill three tokens, then one at a time: every row must match the batch run.
    let first = model.forward(Array(tokens[0..<3]), cache: cache, logitsFrom: 0)
    for i in 0..<3 * 50 { maxDiff = max(maxDiff, abs(first[i] - batch[i])) }
    for i in 3..<tokens.count {
        let row = model.forward([tokens[i]], cache: cache)
        for j in 0..<50 { maxDiff = max(maxDiff, abs(row[j] - batch[i * 50 + j])) }
    }
    #expect(cache.count == tokens.count)
    #expect(maxDiff < 1e-4, "incremental and batch logits differ by \(maxDiff)")
}

@Test func causalMaskHidesTheFuture() {
    let model = tinyLlama()
    let a = model.forward([5, 6, 7, 8], cache: model.makeCache(), logitsFrom: 0)
    let b = model.forward([5, 6, 7, 9], cache: model.makeCache(), logitsFrom: 0)
    #expect(Array(a[0..<150]) == Array(b[0..<150]))
    #expect(Array(a[150...]) != Array(b[150...]))
}

@Test func ropeRotationKeepsNormsAndPositionZeroIsIdentity() {
    for style in [RoPE.Style.halves, .interleaved] {
        let rope = RoPE(dims: 8, base: 10000, style: style)
        var v: [Float] = [1, 2, 3, 4, 5, 6, 7, 8]
        let orig = v
        rope.apply(&v, heads: 1, headDim: 8, position: 0)
        #expect(v == orig)
        rope.apply(&v, heads: 1, headDim: 8, position: 37)
        let n0 = orig.map { $0 * $0 }.reduce(0, +), n1 = v.map { $0 * $0 }.reduce(0, +)
        #expect(abs(n0 - n1) < 1e-3)
        #expect(v != orig)
    }
}

@Test func greedySamplerPicksArgmaxAndSeededSamplingRepeats() {
    var greedy = Sampler(Sampler.Settings())
    #expect(greedy.sample([0.1, 2, -1, 1.9]) == 1)
    var s = Sampler.Settings()
    s.temperature = 0.8
    s.seed = 42
    var a = Sampler(s), b = Sampler(s)
    let logits: [Float] = (0..<100).map { Float($0 % 7) }
    let ra = (0..<20).map { _ in a.sample(logits) }, rb = (0..<20).map { _ in b.sample(logits) }
    #expect(ra == rb)
    #expect(Set(ra).count > 1)
}
