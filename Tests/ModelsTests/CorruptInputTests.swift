import Foundation
import Testing
import Formats
import Models
import Quantization
import Tensors

/// A copy of SmolLM2 with one f16 field of one block of `tensor` overwritten by `bits`.
private func patchedSmolLM2(tensor: String, block: Int, fieldOffset: Int, bits: UInt16) throws -> (URL, GGUFFile) {
    let original = try RealModel.open()
    guard let t = original.tensor(named: tensor) else { throw CancellationError() }
    var bytes = try Data(contentsOf: URL(fileURLWithPath: original.path))
    let at = original.dataOffset + t.offset + block * t.type.bytesPerBlock + fieldOffset
    bytes[at] = UInt8(bits & 0xFF)
    bytes[at + 1] = UInt8(bits >> 8)
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("sq-corrupt-\(UUID().uuidString).gguf")
    try bytes.write(to: url)
    return (url, try GGUFFile(path: url.path))
}

@Test(arguments: [(UInt16(0x7E00), "d"), (UInt16(0x7C00), "dmin")])
func aQuantizedFileWithANonFiniteBlockScaleIsRejectedOnLoad(_ bits: UInt16, _ field: String) throws {
    // SmolLM2's Q4_1 blocks: f16 d at byte 0, f16 m (min) at byte 2.
    let name = "blk.7.ffn_up.weight"
    let (url, file) = try patchedSmolLM2(tensor: name, block: 1234, fieldOffset: field == "d" ? 0 : 2, bits: bits)
    defer { try? FileManager.default.removeItem(at: url) }
    for mode in [WeightMode.native, .f32] {
        do {
            _ = try LlamaLoader.load(file, weights: mode)
            Issue.record("a corrupt block was accepted (\(mode))")
        } catch let error as ModelError {
            guard case let .corruptTensor(path, tensor, reason) = error else {
                Issue.record("unexpected error \(error)")
                continue
            }
            #expect(path == url.path && tensor == name)
            #expect(reason.contains("block 1234") && reason.contains(field))
            #expect(!error.description.contains("\n"))
        }
    }
}

@Test func quantizingNonFiniteWeightsIsRefusedAndLeavesNothingBehind() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sq-nan-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    var values = (0..<(64 * 32)).map { Float(sin(Double($0))) }
    values[100] = .infinity
    // Only `decode` is used: every tensor here is converted, none copied.
    let tensor = SourceTensor(name: "blk.0.ffn_up.weight", shape: [32, 64], type: .f32,
                              raw: { throw CancellationError() }, decode: { values })
    let source = QuantizationSource(path: "synthetic.gguf", metadata: [], tensors: [tensor])
    let out = dir.appendingPathComponent("out.gguf").path
    let recipe = QuantRecipe(mix: .q4_0, tiedEmbeddings: true, layerCount: 1, gqa: 1)
    #expect(throws: QuantizeError.nonFiniteWeight(path: "synthetic.gguf", tensor: "blk.0.ffn_up.weight", index: 100, value: .infinity)) {
        _ = try GGUFQuantizer(recipe: recipe).quantize(source, to: out)
    }
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)

    var imp = [Float](repeating: 1, count: 64)
    imp[3] = -.nan
    values[100] = 0
    let clean = SourceTensor(name: "blk.0.ffn_up.weight", shape: [32, 64], type: .f32,
                             raw: { throw CancellationError() }, decode: { values })
    #expect(throws: QuantizeError.self) {
        _ = try GGUFQuantizer(recipe: recipe, importance: ["blk.0.ffn_up.weight": imp])
            .quantize(QuantizationSource(path: "synthetic.gguf", metadata: [], tensors: [clean]), to: out)
    }
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
}
