import Foundation
import Testing
import Formats
@testable import Models
import Quantization
import Tokenizers

/// On real SmolLM2 blocks with real calibration text, GPTQ's layer-output error
/// ‖(W − Ŵ)X‖² must be below round-to-nearest's on the same grid for every layer.
@Test(arguments: ["int4-asym-g128", "int3-asym-g128", "int4-sym-channel"])
func gptqBeatsRoundToNearestOnEveryLayerOfRealBlocks(_ scheme: String) throws {
    let file = try RealModel.open()
    let model = try LlamaLoader.load(file, weights: .native)
    let text = try String(contentsOf: RealModel.root.deletingLastPathComponent().appendingPathComponent("shared/data/wikitext-2/valid.txt"),
                          encoding: .utf8)
    let tokens = try BPETokenizer(gguf: file).encode(String(text.prefix(200_000)), addBOS: false, parseSpecial: false)
    let windows = try CalibrationWindows(tokens: tokens, count: 8, length: 128, seed: 0)
    #expect(windows.windows == (try CalibrationWindows(tokens: tokens, count: 8, length: 128, seed: 0)).windows)
    let grid = try #require(AffineGPTQGrid(try QuantScheme(parsing: scheme)))
    let runner = SequentialQuantizer(model: model, windows: windows)
    runner.blockLimit = 2
    var ratios: [String: Double] = [:]
    _ = try runner.run { job in
        let r = try GPTQ.quantize(weights: job.weights, rows: job.rows, columns: job.columns, hessian: job.hessian, grid: grid)
        ratios[job.name] = GPTQ.errorRatioToRoundToNearest(weights: job.weights, quantized: r.weights, rows: job.rows,
                                                           columns: job.columns, hessian: job.hessian, grid: grid)
        return LayerOutcome(weights: r.weights)
    }
    #expect(ratios.count == 14)
    for (name, ratio) in ratios { #expect(ratio < 0.95, "\(scheme) \(name): GPTQ/RTN = \(ratio)") }
    // Blocks past the limit are untouched (still the file's quantized blocks).
    #expect(model.blocks[2].query is QuantizedLinear && model.blocks[1].query is DenseLinear)
}

/// The staged single pass (no `prepareBlock`) and the capture pass (with a `prepareBlock`
/// that changes nothing) must hand every layer the same Hessian when the layer quantizer
/// changes nothing: both then see the original block's inputs.
@Test func stagedAndCapturedPassesAgreeWhenNothingIsQuantized() throws {
    let file = try RealModel.open()
    let text = try String(contentsOf: RealModel.root.deletingLastPathComponent().appendingPathComponent("shared/data/wikitext-2/valid.txt"),
                          encoding: .utf8)
    let tokens = try BPETokenizer(gguf: file).encode(String(text.prefix(50_000)), addBOS: false, parseSpecial: false)
    let windows = try CalibrationWindows(tokens: tokens, count: 3, length: 64, seed: 1)
    func hessians(staged: Bool) throws -> [String: [Float]] {
        let runner = SequentialQuantizer(model: try LlamaLoader.load(file, weights: .native), windows: windows)
        runner.blockLimit = 3
        if !staged { runner.prepareBlock = { _, _ in [:] } }
        var out: [String: [Float]] = [:]
        _ = try runner.run { job in
            out[job.name] = job.hessian
            return LayerOutcome(weights: job.weights)
        }
        return out
    }
    let staged = try hessians(staged: true), captured = try hessians(staged: false)
    #expect(staged.count == 21 && Set(staged.keys) == Set(captured.keys))
    for (name, h) in staged {
        let c = captured[name]!
        let scale = c.map { abs($0) }.max()!
        let worst = zip(h, c).map { abs($0 - $1) }.max()!
        #expect(worst <= 1e-4 * scale, "\(name): max |Δ| \(worst) of max \(scale)")
    }
}
