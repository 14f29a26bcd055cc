import Foundation
import Testing
import Formats
@testable import Models
import Quantization
import Tensors

/// SmolLM2 written as GPTQ and AWQ folders (round-to-nearest int4) loads back as exactly
/// the fake-quantized model, and the independent numpy checks agree with the files.
@Suite(.serialized) struct HFQuantizedSmolLM2Tests {
    /// Round-to-nearest layers for every block projection of SmolLM2 (GGUF row order).
    static func layers(_ source: QuantizationSource, groupSize: Int, minimumZero: Int32) throws -> [String: GroupQuantizedMatrix] {
        var out: [String: GroupQuantizedMatrix] = [:]
        for t in source.tensors where HFQuantizedWriter.quantizableLayers(of: source).contains(t.name) {
            out[t.name] = try GroupQuantizedMatrix.roundToNearest(try t.decode(), rows: t.shape[0], columns: t.shape[1], bits: 4,
                                                                  groupSize: groupSize, symmetric: false, minimumZeroPoint: minimumZero)
        }
        return out
    }

    /// The f32 model with each quantized projection replaced by its dequantized weight.
    static func fakeQuantized(_ file: GGUFFile, _ layers: [String: GroupQuantizedMatrix]) throws -> LlamaModel {
        let model = try LlamaLoader.load(file)
        func dense(_ name: String) -> DenseLinear {
            let m = layers[name]!
            return DenseLinear(weight: FloatStorage(m.dequantized()), outFeatures: m.rows, inFeatures: m.columns)
        }
        for l in model.blocks.indices {
            let p = "blk.\(l)."
            model.blocks[l].query = dense(p + "attn_q.weight")
            model.blocks[l].key = dense(p + "attn_k.weight")
            model.blocks[l].value = dense(p + "attn_v.weight")
            model.blocks[l].output = dense(p + "attn_output.weight")
            model.blocks[l].gate = dense(p + "ffn_gate.weight")
            model.blocks[l].up = dense(p + "ffn_up.weight")
            model.blocks[l].down = dense(p + "ffn_down.weight")
        }
        return model
    }

    static func weights(_ linear: any Linear) -> [Float] {
        let d = linear as! DenseLinear
        return d.weight.withPointer { Array(UnsafeBufferPointer(start: $0, count: d.weight.count)) }
    }

    /// Runs a check script; returns its exit status and output.
    static func python(_ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + arguments
        process.currentDirectoryURL = RealModel.root
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    func roundTrip(_ format: HFQuantizedFormat, groupSize: Int, script: String) throws {
        let file = try RealModel.open()
        let source = QuantizationSource(gguf: file)
        let layers = try Self.layers(source, groupSize: groupSize, minimumZero: format == .gptq ? 1 : 0)
        #expect(layers.count == 30 * 7)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("swiftquant-hfq-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let summary = try HFQuantizedWriter(format: format, floatType: .f32).write(source: source, layers: layers, to: folder)
        #expect(summary.files.contains("tokenizer.json") && summary.notes.isEmpty)

        let loaded = try LlamaLoader.load(huggingFaceQuantized: folder)
        let fake = try Self.fakeQuantized(file, layers)
        #expect(loaded.hp == fake.hp)
        // Every weight is bit for bit what the quantized layers define.
        for l in [0, 13, 29] {
            let (a, b) = (loaded.blocks[l], fake.blocks[l])
            for (x, y) in [(a.query, b.query), (a.key, b.key), (a.value, b.value), (a.output, b.output),
                           (a.gate, b.gate), (a.up, b.up), (a.down, b.down)] {
                #expect(Self.weights(x) == Self.weights(y), "block \(l)")
            }
            #expect(a.attentionNorm == b.attentionNorm && a.mlpNorm == b.mlpNorm)
        }
        let tokens = try HFSmolLM2.tokens()
        let diff = HFSmolLM2.maxDifference(HFSmolLM2.logits(loaded, tokens), HFSmolLM2.logits(fake, tokens))
        print("SmolLM2 \(format.rawValue) int4 g\(groupSize) folder vs fake-quantized model: max |Δ logit| = \(diff)")
        #expect(diff <= 1e-5)

        // The numpy unpacking of the files, written independently, gives the same weights.
        let reference = folder + "/reference.safetensors"
        try HFQuantizedWriter.writeDequantizedReference(source: source, layers: layers, to: reference)
        var arguments = [script, folder, "--reference", reference]
        if FileManager.default.fileExists(atPath: HFSmolLM2.folder + "/config.json") { arguments += ["--original", HFSmolLM2.folder] }
        let (status, output) = try Self.python(arguments)
        #expect(status == 0, "\(output)")
        #expect(output.contains("210 modules checked, 0 failures"), "\(output)")
    }

    @Test func gptqFolderLoadsAsTheFakeQuantizedModel() throws {
        try roundTrip(.gptq, groupSize: 128, script: "scripts/check_gptq_checkpoint.py")
    }

    @Test func awqFolderLoadsAsTheFakeQuantizedModel() throws {
        try roundTrip(.awq, groupSize: 64, script: "scripts/check_awq_checkpoint.py")
    }

    /// LLM.int8(): SmolLM2 as a bitsandbytes 8-bit folder loads back running LLMInt8Linear
    /// on exactly the rows written (logits identical to the f32 model with the same layers
    /// swapped in), stays close to f32, and the numpy check finds bitsandbytes' own rounding.
    @Test func bitsAndBytesFolderRunsAsLLMInt8OnItsStoredRows() throws {
        let file = try RealModel.open()
        let source = QuantizationSource(gguf: file)
        var layers: [String: GroupQuantizedMatrix] = [:]
        for t in source.tensors where HFQuantizedWriter.quantizableLayers(of: source).contains(t.name) {
            layers[t.name] = try LLMInt8Linear.quantizedMatrix(weights: t.decode(), rows: t.shape[0], columns: t.shape[1])
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("swiftquant-bnb-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try HFQuantizedWriter(format: .bitsAndBytes, floatType: .f32).write(source: source, layers: layers, to: folder)

        let loaded = try LlamaLoader.load(huggingFaceQuantized: folder)
        let int8Layers = loaded.linearNames.filter { loaded.linear(named: $0) is LLMInt8Linear }
        #expect(int8Layers.count == 210)
        let expected = try LlamaLoader.load(file)
        for (name, m) in layers { _ = expected.replaceLinear(named: name, with: LLMInt8Linear(m, threshold: 6)) }
        let tokens = try HFSmolLM2.tokens()
        let got = HFSmolLM2.logits(loaded, tokens)
        #expect(HFSmolLM2.maxDifference(got, HFSmolLM2.logits(expected, tokens)) == 0)
        // Close to f32: the same next token at most positions.
        let f32 = HFSmolLM2.logits(try LlamaLoader.load(file), tokens)
        let vocab = got.count / tokens.count
        func top(_ l: [Float], _ i: Int) -> Int { (0..<vocab).max { l[i * vocab + $0] < l[i * vocab + $1] }! }
        let agree = (0..<tokens.count).filter { top(got, $0) == top(f32, $0) }.count
        print("SmolLM2 bitsandbytes int8 folder (LLM.int8()): top-1 agreement with f32 \(agree)/\(tokens.count)")
        #expect(agree * 10 >= tokens.count * 8)  // 18/20 measured; a misread row would scramble them

        let reference = folder + "/reference.safetensors"
        try HFQuantizedWriter.writeDequantizedReference(source: source, layers: layers, format: .bitsAndBytes, to: reference)
        var arguments = ["scripts/check_bnb_checkpoint.py", folder, "--reference", reference]
        if FileManager.default.fileExists(atPath: HFSmolLM2.folder + "/config.json") { arguments += ["--original", HFSmolLM2.folder] }
        let (status, output) = try Self.python(arguments)
        #expect(status == 0, "\(output)")
        #expect(output.contains("210 modules checked, 0 failures"), "\(output)")
    }
}
