import Foundation
import Testing
import Evaluation
import Formats
@testable import Models
import Quantization
import Tokenizers

/// Perplexity of `model` on the first `chunks` chunks of 256 tokens of wikitext-2 test.
private func perplexity(_ model: LlamaModel, _ file: GGUFFile, chunks: Int = 2) throws -> Double {
    let text = try String(contentsOf: RealModel.root.deletingLastPathComponent().appendingPathComponent("shared/data/wikitext-2/test.txt"),
                          encoding: .utf8)
    let tokens = try BPETokenizer(gguf: file).encode(String(text.prefix(30_000)), addBOS: false, parseSpecial: false)
    return try PerplexityRun(context: 256, maxChunks: chunks).evaluate(model, tokens: tokens).perplexity
}

/// Fake quantization of the real model: the reported error is the error actually installed,
/// int8 per channel is nearly free, and 3-bit costs far more than 4-bit.
@Test func fakeQuantizingSmolLM2ReportsTheInstalledErrorAndRanksSchemes() throws {
    let file = try RealModel.open()
    let reference = try LlamaLoader.load(file, weights: .f32)
    let base = try perplexity(reference, file)
    var results: [String: Double] = [:]
    for scheme in ["int8-sym-channel", "int4-asym-g128", "int3-asym-g128"] {
        let model = try LlamaLoader.load(file, weights: .f32)
        let original = try #require(model.denseWeights(named: "blk.3.ffn_down.weight"))
        let reports = try model.fakeQuantizeWeights(scheme: try QuantScheme(parsing: scheme), where: { _ in true })
        #expect(reports.count == 210)
        // The installed weights are the fake-quantized ones, and the report measured them.
        let installed = try #require(model.denseWeights(named: "blk.3.ffn_down.weight"))
        let report = try #require(reports.first { $0.name == "blk.3.ffn_down.weight" })
        let measured = QuantizationError(reference: original, approximation: installed)
        #expect(abs(measured.sqnrDB - report.error.sqnrDB) < 1e-9 && installed != original)
        results[scheme] = try perplexity(model, file)
    }
    #expect(abs(results["int8-sym-channel"]! / base - 1) < 0.01, "int8: \(results) vs f32 \(base)")
    #expect(results["int4-asym-g128"]! > base * 1.05 && results["int3-asym-g128"]! > results["int4-asym-g128"]! * 1.5,
            "\(results) vs f32 \(base)")
    #expect(throws: FakeQuantError.self) {
        _ = try LlamaLoader.load(file, weights: .native).fakeQuantizeWeights(scheme: try QuantScheme(parsing: "int4-asym-g128"),
                                                                            where: { _ in true })
    }
}
