import Testing
@testable import Quantization

/// Range observers and calibration: exact values on small inputs, and on heavy-tailed data
/// percentile and MSE clipping beat min–max at 4 bits.
@Suite struct ToolkitObserverTests {
    /// 4-bit asymmetric MSE of `x` over the given range.
    func mse(_ x: [Float], _ range: (min: Float, max: Float), grid: AffineGrid = AffineGrid(bits: 4, symmetric: false)) -> Double {
        let p = grid.parameters(min: range.min, max: range.max)
        return ToolkitData.mse(x, x.map { grid.fakeQuantize($0, p) })
    }

    @Test func minMaxAndMovingAverage() {
        var mm = MinMaxObserver()
        #expect(mm.range() == (0, 0))
        mm.observe([1, -2, .nan, 3])
        mm.observe([-5, .infinity])
        #expect(mm.range() == (-5, 3))
        var ma = MovingAverageMinMaxObserver(momentum: 0.75)
        ma.observe([-1, 1])
        ma.observe([-3, 5])
        #expect(ma.range() == (-1.5, 2))
        ma.observe([Float.nan])
        #expect(ma.range() == (-1.5, 2))
    }

    @Test func percentileIsExactOnSmallInputs() {
        var p = PercentileObserver(percentile: 99)
        p.observe((0...100).map(Float.init))  // 101 values: the 99th percentile is 99
        p.observe([Float.nan])
        #expect(p.range() == (1, 99))
        var q = PercentileObserver(percentile: 90)
        q.observe([0, 10])  // interpolates between order statistics
        #expect(q.range() == (1, 9))
    }

    @Test func reservoirIsBoundedAndDeterministic() {
        var a = Reservoir(capacity: 100), b = Reservoir(capacity: 100)
        let x = ToolkitData.gaussian(10_000, seed: 1)
        a.add(x.withUnsafeBufferPointer { $0 })
        for chunk in stride(from: 0, to: 10_000, by: 333) {
            x[chunk..<min(chunk + 333, 10_000)].withUnsafeBufferPointer { b.add($0) }
        }
        #expect(a.values.count == 100 && a.seen == 10_000 && a.values == b.values)
        #expect(Set(a.values).isSubset(of: Set(x)))
    }

    @Test func clippingBeatsMinMaxOnHeavyTails() {
        let x = ToolkitData.heavyTailed(50_000, seed: 7)
        var minMax = MinMaxObserver(), percentile = PercentileObserver(percentile: 99.9)
        let grid = AffineGrid(bits: 4, symmetric: false)
        var clip = MSEClippingObserver(grid: grid)
        for chunk in stride(from: 0, to: x.count, by: 5000) {
            let batch = Array(x[chunk..<(chunk + 5000)])
            minMax.observe(batch)
            percentile.observe(batch)
            clip.observe(batch)
        }
        let eMinMax = mse(x, minMax.range()), ePercentile = mse(x, percentile.range()), eClip = mse(x, clip.range())
        #expect(ePercentile < eMinMax * 0.5, "percentile \(ePercentile) vs min-max \(eMinMax)")
        #expect(eClip < eMinMax * 0.5, "mse-clipping \(eClip) vs min-max \(eMinMax)")
        #expect(clip.range().max < minMax.range().max)
    }

    @Test func mseClippingKeepsFullRangeOnUniformData() {
        var rng = SplitMix64(seed: 3)
        let x = (0..<20_000).map { _ in Float.random(in: -1...1, using: &rng) }
        var clip = MSEClippingObserver(grid: AffineGrid(bits: 8, symmetric: true))
        clip.observe(x)
        let r = clip.range()
        #expect(r.max > 0.95 && r.min < -0.95, "\(r)")
    }

    @Test func entropyClipsOutliersButNotUniformData() {
        let x = ToolkitData.heavyTailed(200_000, seed: 11)
        var e = EntropyObserver(bits: 8)
        for chunk in stride(from: 0, to: x.count, by: 20_000) { e.observe(Array(x[chunk..<(chunk + 20_000)])) }
        let absmax = x.map(abs).max()!
        #expect(e.histogram.reduce(0, +) == Double(x.count))
        #expect(e.histogramMax >= absmax)
        let t = e.range()
        #expect(t.max > 3 && t.max < absmax / 2, "threshold \(t) vs absmax \(absmax)")
        #expect(t.min == -t.max)

        var rng = SplitMix64(seed: 3)
        var u = EntropyObserver(bits: 8)
        u.observe((0..<100_000).map { _ in Float.random(in: -1...1, using: &rng) })
        #expect(u.range().max > 0.9)
    }

    @Test func entropyHistogramGrowsByMerging() {
        var e = EntropyObserver(bits: 2, bins: 8)
        e.observe([0.5, 1])          // range [0, 1): 0.5 → bin 4, 1 → the last bin
        #expect(e.histogram == [0, 0, 0, 0, 1, 0, 0, 1])
        e.observe([3.5])             // range doubles twice to 4: bins merge by 4
        #expect(e.histogramMax == 4)
        #expect(e.histogram == [0, 2, 0, 0, 0, 0, 0, 1])
        // Two levels of four bins each: Q = P.
        #expect(e.divergence(threshold: 8) == 0)
        // Threshold 4: P = [0, 2, 0, 1] with the tail folded in, but Q's upper level is empty.
        #expect(e.divergence(threshold: 4) > 5)
        #expect(e.bestThreshold() == 8)
    }

    @Test func errorMetrics() {
        let e = QuantizationError(reference: [3, 4, 0], approximation: [3, 4, 1])
        #expect(e.mse == 1.0 / 3 && e.maxAbs == 1 && e.count == 3)
        #expect(abs(e.sqnrDB - 10 * log10(25.0)) < 1e-12)
        #expect(abs(e.cosine - 25 / (5 * 26.0.squareRoot())) < 1e-12)
        let exact = QuantizationError(reference: [1, 2], approximation: [1, 2])
        #expect(exact.sqnrDB == .infinity && exact.cosine == 1 && exact.mse == 0)
        #expect(QuantizationError().cosine == 1 && QuantizationError().mse == 0)
        // Merging equals measuring the concatenation.
        let a = ToolkitData.gaussian(100, seed: 1), b = ToolkitData.gaussian(100, seed: 2)
        let c = ToolkitData.gaussian(50, seed: 3), d = ToolkitData.gaussian(50, seed: 4)
        let whole = QuantizationError(reference: a + c, approximation: b + d)
        let parts = QuantizationError(reference: a, approximation: b).merged(with: QuantizationError(reference: c, approximation: d))
        #expect(abs(whole.mse - parts.mse) < 1e-12 && whole.maxAbs == parts.maxAbs)
        #expect(abs(whole.cosine - parts.cosine) < 1e-12 && abs(whole.sqnrDB - parts.sqnrDB) < 1e-9)
    }

    @Test func errorsByLayer() {
        let one = QuantizationError(reference: [1], approximation: [0])
        let two = QuantizationError(reference: [2, 2], approximation: [2, 0])
        let layers = QuantizationError.byLayer([
            ("blk.0.attn_q.weight", one), ("blk.0.ffn_up.weight", two), ("token_embd.weight", one),
            ("model.layers.1.self_attn.q_proj.weight", two), ("blk.0.attn_k.weight", one),
        ])
        #expect(layers.map(\.layer) == ["blk.0", "token_embd", "layers.1"])
        #expect(layers[0].error.count == 4 && layers[0].error.mse == 6.0 / 4)
        #expect(QuantizationError.layerName(of: "encoder.layer.3.output.dense.weight") == "layer.3")
        #expect(QuantizationError.layerName(of: "output") == "output")
    }
}

import Foundation
