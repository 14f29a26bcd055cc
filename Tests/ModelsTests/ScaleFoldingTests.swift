import Foundation
import Testing
import Formats
import Quantization
@testable import Models

/// Folding per-channel scales into producers and consumers must leave the f32 model's
/// function unchanged: only float rounding may differ.
@Test func foldingScalesLeavesTheF32ModelsOutputsUnchanged() throws {
    let file = try RealModel.open()
    let model = try LlamaLoader.load(file, weights: .f32)
    let tokens: [Int32] = [504, 3458, 282, 4649, 314, 7042, 30, 378, 1345, 2113, 28, 355, 5284, 253, 4053, 30]
    let before = model.forward(tokens, cache: model.makeCache(capacity: 32), logitsFrom: 0)

    var rng = SystemRandomNumberGenerator()
    for l in [0, 7, 29] {
        for point in FoldPoint.allCases {
            // Scales spanning 1/8…8, as AWQ/SmoothQuant produce.
            let s = (0..<model.channelCount(point)).map { _ in Float(pow(2, Double.random(in: -3...3, using: &rng))) }
            try model.foldScales(s, at: point, layer: l)
        }
    }
    // The consumers really changed (the test would be vacuous otherwise).
    let q0 = try #require(model.denseWeights(named: "blk.0.attn_q.weight"))
    let original = try LlamaLoader.load(file, weights: .f32)
    #expect(q0 != original.denseWeights(named: "blk.0.attn_q.weight"))

    let after = model.forward(tokens, cache: model.makeCache(capacity: 32), logitsFrom: 0)
    var worst: Float = 0, scale: Float = 0
    for i in before.indices {
        worst = max(worst, abs(before[i] - after[i]))
        scale = max(scale, abs(before[i]))
    }
    // Logits reach ~30 in magnitude; f32 rounding through 30 blocks stays far below 1e-3.
    #expect(worst < 1e-3, "max |Δlogit| = \(worst) (max |logit| \(scale))")
}

@Test func foldingRefusesBadScalesAndQuantizedLayersWithoutChangingTheModel() throws {
    let file = try RealModel.open()
    let native = try LlamaLoader.load(file, weights: .native)
    #expect(throws: FoldError.notDense(layer: "blk.0.ffn_gate.weight")) {
        try native.foldScales([Float](repeating: 2, count: 576), at: .mlpInput, layer: 0)
    }
    let fresh = try LlamaLoader.load(file, weights: .native)
    #expect(native.blocks[0].mlpNorm == fresh.blocks[0].mlpNorm,
            "\(native.blocks[0].mlpNorm.prefix(4)) vs \(fresh.blocks[0].mlpNorm.prefix(4))")
    let model = try LlamaLoader.load(file, weights: .f32)
    #expect(throws: FoldError.wrongLength(point: .downInput, expected: 1536, actual: 576)) {
        try model.foldScales([Float](repeating: 2, count: 576), at: .downInput, layer: 0)
    }
    var s = [Float](repeating: 1, count: 576)
    s[5] = 0
    #expect(throws: FoldError.invalidScale(index: 5, value: 0)) { try model.foldScales(s, at: .attentionInput, layer: 0) }
}

/// AWQ's scale pass through the sequential runner, with layers left unrounded: scales are
/// searched and folded into the first blocks' norms and up projections, the runner hands the
/// rescaled weights to the layer quantizer and puts the folded norms back into the model —
/// which must then compute what the original computes (to float rounding), while the norms
/// and weights really changed.
@Test func awqScalePassKeepsTheModelsFunctionWhenNothingIsRounded() throws {
    let file = try RealModel.open()
    let model = try LlamaLoader.load(file, weights: .f32)
    let original = try LlamaLoader.load(file, weights: .f32)
    let tokens: [Int32] = [504, 3458, 282, 4649, 314, 7042, 30, 378, 1345, 2113, 28, 355, 5284, 253, 4053, 30]
    let before = original.forward(tokens, cache: original.makeCache(capacity: 32), logitsFrom: 0)
    let windows = try CalibrationWindows(tokens: tokens + tokens.reversed() + tokens, count: 2, length: 16, seed: 0)
    let grid = try #require(AffineGPTQGrid(try QuantScheme(parsing: "int4-asym-g64")))
    let runner = SequentialQuantizer(model: model, windows: windows)
    runner.blockLimit = 2
    var folds: [AWQFold] = []
    runner.prepareBlock = { l, hessians in
        let (scaled, done) = try model.awqScaleBlock(l, hessians: hessians, include: { _ in true }) { _, w, rows, columns in
            GPTQ.roundToNearest(weights: w, rows: rows, columns: columns, grid: grid)
        }
        folds += done
        return scaled
    }
    var handed: [String: [Float]] = [:]
    _ = try runner.run { job in
        handed[job.name] = job.weights
        return LayerOutcome(weights: job.weights)
    }
    // Three fold points per block (SmolLM2's grouped-query attention rules out value → output).
    #expect(folds.map(\.point) == [.attentionInput, .mlpInput, .downInput, .attentionInput, .mlpInput, .downInput])
    #expect(folds.allSatisfy { $0.error <= $0.unscaledError })
    #expect(folds.contains { $0.alpha > 0 }, "no fold point chose a non-trivial scale: \(folds.map(\.alpha))")
    #expect(model.blocks[0].attentionNorm != original.blocks[0].attentionNorm)
    #expect(handed["blk.1.ffn_down.weight"] != original.denseWeights(named: "blk.1.ffn_down.weight"))
    #expect(handed["blk.1.ffn_down.weight"] == model.denseWeights(named: "blk.1.ffn_down.weight"))

    let after = model.forward(tokens, cache: model.makeCache(capacity: 32), logitsFrom: 0)
    let worst = zip(before, after).map { abs($0 - $1) }.max()!
    #expect(worst < 1e-3, "max |Δlogit| = \(worst)")
}
