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
