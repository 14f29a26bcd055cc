import Foundation
import Testing
import Evaluation
import Formats
@testable import Models
import Quantization
import Tokenizers

private func tempDir() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sq-quantize-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

private func recipe(_ mix: QuantMix, _ file: GGUFFile) -> QuantRecipe {
    QuantRecipe(mix: mix, tiedEmbeddings: file.tensor(named: "output.weight") == nil, layerCount: 30, gqa: 3)
}

/// Log-probabilities of a GGUF (native weights) on the scored rows of the first chunks of wikitext-2 test.
private func logProbs(_ path: String, chunks: Int = 2) throws -> [Float] {
    let file = try GGUFFile(path: path)
    let model = try LlamaLoader.load(file, weights: .native)
    let text = try String(contentsOf: RealModel.root.deletingLastPathComponent().appendingPathComponent("shared/data/wikitext-2/test.txt"), encoding: .utf8)
    let tokens = try BPETokenizer(gguf: file).encode(String(text.prefix(60_000)), addBOS: false, parseSpecial: false)
    var all: [Float] = []
    _ = try PerplexityRun(context: 256, maxChunks: chunks).evaluate(model, tokens: tokens, record: { lp, _ in all += lp })
    return all
}

/// Mean KL(p‖q) over rows of `vocab` log-probabilities.
private func meanKL(_ p: [Float], _ q: [Float], vocab: Int) -> Double {
    let rows = p.count / vocab
    var total = 0.0
    for r in 0..<rows {
        var kl = 0.0
        for i in (r * vocab)..<((r + 1) * vocab) { kl += exp(Double(p[i])) * Double(p[i] - q[i]) }
        total += kl
    }
    return total / Double(rows)
}

@Test func quantizingAQuantizedFileIsRefusedAndLeavesNothingBehind() throws {
    let file = try RealModel.open()
    let dir = try tempDir()
    defer { try? FileManager.default.removeItem(at: dir) }
    let out = dir.appendingPathComponent("out.gguf").path
    #expect(throws: QuantizeError.self) {
        _ = try GGUFQuantizer(recipe: recipe(.q8_0, file)).quantize(QuantizationSource(gguf: file), to: out)
    }
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
}

@Test func quantizedFilesFollowTheRecipeHoldTheCodecBytesAndRankByBits() throws {
    let file = try RealModel.open()
    let dir = try tempDir()
    defer { try? FileManager.default.removeItem(at: dir) }
    // The full-precision reference as a file, then the mixes from it.
    let f32Path = dir.appendingPathComponent("f32.gguf").path
    _ = try GGUFQuantizer(recipe: recipe(.f32, file), allowRequantize: true).quantize(QuantizationSource(gguf: file), to: f32Path)
    let f32 = try GGUFFile(path: f32Path)
    #expect(f32.tensors.allSatisfy { $0.type == .f32 })
    let reference = try logProbs(f32Path)
    var kld: [QuantMix: Double] = [:]
    for mix in [QuantMix.q8_0, .q4_K_M, .q2_K] {
        let path = dir.appendingPathComponent("\(mix.rawValue).gguf").path
        let q = GGUFQuantizer(recipe: recipe(mix, f32))
        let reports = try q.quantize(QuantizationSource(gguf: f32), to: path)
        let out = try GGUFFile(path: path)
        #expect(out.int("general.file_type") == mix.fileType)
        #expect(out.tensors.map(\.name) == f32.tensors.map(\.name))
        for (t, step) in zip(out.tensors, q.plan(QuantizationSource(gguf: f32))) { #expect(t.type == step.choice.type, "\(t.name)") }
        #expect(reports.count == out.tensors.count)
        // One tensor's bytes are exactly the codec's output on the decoded input.
        let name = "blk.7.ffn_down.weight"
        let src = f32.tensor(named: name)!, dst = out.tensor(named: name)!
        let x = Array(f32.data(for: src).bindMemory(to: Float.self))
        let expected = try Codecs.quantize(dst.type, x, rowLength: src.shape[1])
        #expect(Array(out.data(for: dst)) == expected)
        kld[mix] = meanKL(reference, try logProbs(path), vocab: 49152)
    }
    print("quantize pipeline mean KLD vs f32 (2 chunks of 256):", kld.sorted { $0.value < $1.value }.map { "\($0.key.rawValue) \($0.value)" })
    // Q8_0 is nearly lossless; fewer bits cost more, in order.
    #expect(kld[.q8_0]! < 0.005)
    #expect(kld[.q8_0]! < kld[.q4_K_M]! && kld[.q4_K_M]! < kld[.q2_K]!)
    #expect(kld[.q2_K]! > 0.1)
}

/// A source whose norms were replaced (as AWQ writes its folded norms) is written with the
/// replacements as f32 tensors and everything else as before; replacing a missing tensor or
/// with the wrong count is refused.
@Test func replacedNormsAreWrittenInPlaceOfTheSourcesOwn() throws {
    let file = try RealModel.open()
    let source = QuantizationSource(gguf: file)
    let norm = (0..<576).map { Float($0) / 100 + 0.5 }
    let replaced = try source.replacing(["blk.3.ffn_norm.weight": norm])
    #expect(throws: QuantizeError.self) { _ = try source.replacing(["blk.99.ffn_norm.weight": norm]) }
    #expect(throws: QuantizeError.self) { _ = try source.replacing(["blk.3.ffn_norm.weight": Array(norm.prefix(10))]) }
    let dir = try tempDir()
    defer { try? FileManager.default.removeItem(at: dir) }
    let out = dir.appendingPathComponent("q8.gguf").path
    _ = try GGUFQuantizer(recipe: recipe(.q8_0, file), allowRequantize: true).quantize(replaced, to: out)
    let written = try GGUFFile(path: out)
    let t = try #require(written.tensor(named: "blk.3.ffn_norm.weight"))
    #expect(t.type == .f32)
    #expect(try Codecs.dequantize(.f32, bytes: written.data(for: t), count: 576) == norm)
    let other = try #require(written.tensor(named: "blk.4.ffn_norm.weight"))
    #expect(try Codecs.dequantize(.f32, bytes: written.data(for: other), count: 576)
            == (try source.tensors.first { $0.name == "blk.4.ffn_norm.weight" }!.decode()))
}
