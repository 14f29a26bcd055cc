import Foundation
import Testing
@testable import Formats
import Quantization
import Tensors

@Suite struct HFQuantizedReaderTests {
    /// Writes the tiny model as `format`, lets `edit` change its tensors (name → replacement
    /// dtype/shape/bytes, or nil to drop), and returns the error loading it throws.
    func corrupted(_ format: HFQuantizedFormat = .gptq, bits: Int = 4, symmetric: Bool = false,
                   config: ((String) -> String)? = nil,
                   _ edit: (String, DType, [Int], [UInt8]) -> (DType, [Int], [UInt8])?) throws -> String? {
        let layers = try TinyHFSource.layers(bits: bits, groupSize: 32, actOrder: format != .awq, symmetric: symmetric,
                                             minimumZero: format == .gptq ? 1 : 0)
        return try TinyHFSource.withFolder { folder in
            try HFQuantizedWriter(format: format, floatType: .f32).write(source: TinyHFSource.make(), layers: layers, to: folder)
            let path = folder + "/model.safetensors"
            let file = try SafeTensorsFile(path: path)
            var writer = SafeTensorsWriter(metadata: ["format": "pt"])
            for info in file.tensors {
                let bytes = Array(try file.data(for: info.name))
                if let (dtype, shape, data) = edit(info.name, info.dtype, info.shape, bytes) {
                    try writer.add(info.name, dtype: dtype, shape: shape, bytes: data)
                }
            }
            try writer.write(to: path)
            if let config {
                let text = try String(contentsOfFile: folder + "/config.json", encoding: .utf8)
                try config(text).write(toFile: folder + "/config.json", atomically: true, encoding: .utf8)
            }
            do {
                let source = try QuantizationSource(huggingFaceQuantized: folder)
                for t in source.tensors { _ = try t.decode() }
                return nil
            } catch let error as HFQuantizedError {
                let text = error.description
                #expect(!text.contains("\n"))
                #expect(text.hasPrefix(folder + "/"), "\(text)")
                return String(text.dropFirst(folder.count + 1))
            }
        }
    }

    func int32Bytes(_ values: [Int32]) -> [UInt8] { HFQuantizedWriter.bytes(values) }

    @Test func anUntouchedFolderLoads() throws {
        #expect(try corrupted { ($1, $2, $3) } == nil)
        #expect(try corrupted(.awq) { ($1, $2, $3) } == nil)
    }

    @Test func missingAndMisshapenTensorsAreNamed() throws {
        let missing = try corrupted { name, d, s, b in name == "model.layers.1.mlp.up_proj.qzeros" ? nil : (d, s, b) }
        #expect(missing?.contains("model.safetensors: missing tensor model.layers.1.mlp.up_proj.qzeros") == true, "\(missing ?? "")")
        let scales = try corrupted(.awq) { name, d, s, b in name == "model.layers.0.self_attn.o_proj.scales" ? nil : (d, s, b) }
        #expect(scales?.contains("missing tensor model.layers.0.self_attn.o_proj.scales") == true, "\(scales ?? "")")
        let shape = try corrupted { name, d, s, b in
            name == "model.layers.0.self_attn.q_proj.qweight" ? (d, [s[1], s[0]], b) : (d, s, b)
        }
        #expect(shape?.contains("tensor model.layers.0.self_attn.q_proj.qweight has shape [64, 8], expected [8, 64]") == true, "\(shape ?? "")")
        let dtype = try corrupted { name, d, s, b in
            name == "model.layers.0.mlp.down_proj.qzeros" ? (.f32, s, b) : (d, s, b)
        }
        #expect(dtype?.contains("model.layers.0.mlp.down_proj.qzeros has dtype F32, expected I32") == true, "\(dtype ?? "")")
        let norm = try corrupted { name, d, s, b in name == "model.norm.weight" ? nil : (d, s, b) }
        #expect(norm?.contains("missing tensor model.norm.weight") == true, "\(norm ?? "")")
        // A GPTQ module without g_idx reads with the identity grouping.
        let noIndex = try corrupted(.gptqV2) { name, d, s, b in name.hasSuffix(".g_idx") ? nil : (d, s, b) }
        #expect(noIndex == nil)
    }

    @Test func valuesOutsideTheGridAreRefused() throws {
        // g_idx pointing past the last group.
        let gidx = try corrupted { name, d, s, b in
            name == "model.layers.0.mlp.gate_proj.g_idx" ? (d, s, int32Bytes(Array(repeating: 9, count: s[0]))) : (d, s, b)
        }
        #expect(gidx?.contains("module model.layers.0.mlp.gate_proj: groupIndex[0] = 9 is outside 0..<2") == true, "\(gidx ?? "")")
        // Too many columns in one group.
        let crowded = try corrupted { name, d, s, b in
            name == "model.layers.0.mlp.gate_proj.g_idx" ? (d, s, int32Bytes(Array(repeating: 0, count: s[0]))) : (d, s, b)
        }
        #expect(crowded?.contains("group 0 has 64 columns, more than the group size 32") == true, "\(crowded ?? "")")
        // A stored 0xF in format v1 means zero point 16 at 4 bits.
        let zero = try corrupted { name, d, s, b in
            name == "model.layers.1.self_attn.v_proj.qzeros" ? (d, s, int32Bytes(Array(repeating: -1, count: s[0] * s[1]))) : (d, s, b)
        }
        #expect(zero?.contains("zeroPoints[0] = 16 is outside 0..<16 (a stored 2^bits−1 in checkpoint format gptq") == true, "\(zero ?? "")")
        // sym: true with zero points other than 2^(bits−1).
        let sym = try corrupted(config: { $0.replacingOccurrences(of: "\"sym\": false", with: "\"sym\": true") }) { ($1, $2, $3) }
        #expect(sym?.contains("(quantization_config says sym: true)") == true, "\(sym ?? "")")
        // Non-finite scales.
        let scales = try corrupted { name, d, s, b in
            name == "model.layers.0.mlp.up_proj.scales" ? (d, s, Array(repeating: 0xFF, count: b.count)) : (d, s, b)
        }
        #expect(scales?.contains("scales[0] is not finite") == true, "\(scales ?? "")")
    }

    @Test func unexpectedTensorsAndBiasesAreRefused() throws {
        let layers = try TinyHFSource.layers(bits: 4, groupSize: 32, actOrder: false)
        /// Writes the tiny model with extra f16 tensors and returns the load error, if any.
        func load(adding extra: [(String, [Float])]) throws -> String? {
            try TinyHFSource.withFolder { folder in
                try HFQuantizedWriter(format: .gptqV2).write(source: TinyHFSource.make(), layers: layers, to: folder)
                let path = folder + "/model.safetensors"
                let file = try SafeTensorsFile(path: path)
                var writer = SafeTensorsWriter(metadata: ["format": "pt"])
                for info in file.tensors { try writer.add(info.name, from: file) }
                for (name, values) in extra { try writer.add(name, shape: [values.count], floats: values, as: .f16) }
                try writer.write(to: folder + "/edited.safetensors")
                try FileManager.default.removeItem(atPath: path)
                try FileManager.default.moveItem(atPath: folder + "/edited.safetensors", toPath: path)
                do {
                    _ = try QuantizationSource(huggingFaceQuantized: folder)
                    return nil
                } catch let error as HFQuantizedError {
                    return String(error.description.dropFirst(folder.count + 1))
                }
            }
        }
        // A zero bias on a projection (AutoGPTQ writes one) is accepted; a real one is not.
        #expect(try load(adding: [("model.layers.0.mlp.down_proj.bias", Array(repeating: 0, count: 64))]) == nil)
        #expect(try load(adding: [("model.layers.0.mlp.up_proj.bias", Array(repeating: 1, count: 128))])
                == "model.safetensors: tensor model.layers.0.mlp.up_proj.bias: a bias on this projection is not supported")
        #expect(try load(adding: [("model.layers.0.mlp.surprise", [1])])
                == "model.safetensors: unexpected tensor model.layers.0.mlp.surprise (not part of a llama model)")
    }

    @Test func unsupportedConfigsAreNamed() throws {
        func configError(_ edit: @escaping (String) -> String) throws -> String? {
            try corrupted(config: edit) { ($1, $2, $3) }
        }
        let marlin = try configError { $0.replacingOccurrences(of: "\"checkpoint_format\": \"gptq\"", with: "\"checkpoint_format\": \"marlin\"") }
        #expect(marlin == "config.json: GPTQ checkpoint_format 'marlin' is not supported (gptq, gptq_v2)")
        let bits = try configError { $0.replacingOccurrences(of: "\"bits\": 4", with: "\"bits\": 5") }
        #expect(bits == "config.json: 5 bits are not supported (GPTQ: 2, 3, 4, 8)")
        let method = try configError { $0.replacingOccurrences(of: "\"quant_method\": \"gptq\"", with: "\"quant_method\": \"hqq\"") }
        #expect(method == "config.json: quant_method 'hqq' is not supported (gptq, awq, bitsandbytes)")
        let bnb = try configError { $0.replacingOccurrences(of: "\"quant_method\": \"gptq\"", with: "\"quant_method\": \"bitsandbytes\"") }
        #expect(bnb == "config.json: a bitsandbytes quantization_config without load_in_8bit")
        // A different declared bit width makes every packed shape wrong: named, not misread.
        let eight = try configError { $0.replacingOccurrences(of: "\"bits\": 4", with: "\"bits\": 8") }
        #expect(eight?.contains("has shape [8, 64], expected [16, 64] for gptq 8-bit") == true, "\(eight ?? "")")
    }

    @Test func isQuantizedFolderTellsTheKindsApart() throws {
        let layers = try TinyHFSource.layers(bits: 4, groupSize: 32, actOrder: false)
        try TinyHFSource.withFolder { folder in
            #expect(!HFQuantizedCheckpoint.isQuantizedFolder(folder))
            try HFQuantizedWriter(format: .awq).write(source: TinyHFSource.make(), layers: layers, to: folder)
            #expect(HFQuantizedCheckpoint.isQuantizedFolder(folder))
            #expect(!HFQuantizedCheckpoint.isQuantizedFolder(folder + "/config.json"))
            // The float-only reader still refuses it, pointing here.
            #expect(throws: QuantizeError.self) { try QuantizationSource(huggingFace: folder) }
            #expect(throws: Never.self) { try QuantizationSource(anyHuggingFace: folder) }
        }
    }
}

@Suite struct HFQuantizedTokenizerTests {
    /// SmolLM2's tokenizer written as tokenizer.json from its GGUF metadata reads back as the
    /// same metadata.
    @Test func smolLM2TokenizerRoundTripsThroughTokenizerJSON() throws {
        let source = QuantizationSource(gguf: try GGUFTestSupport.smolLM2())
        let export = try HFTokenizerExport(source: source, contextLength: 8192)
        try GGUFTestSupport.withTemporaryFolder { url in
            let folder = url.path
            try HFQuantizedWriter.writeText(export.tokenizerJSON().text(indent: 0), to: folder + "/tokenizer.json")
            try HFQuantizedWriter.writeText(export.tokenizerConfigJSON().text(indent: 2), to: folder + "/tokenizer_config.json")
            let back = try HFTokenizerMetadata.read(folder: folder, architecture: "llama", vocabSize: 49152, config: .object([]))
            func value(_ key: String) -> GGUFValue? { back.first { $0.key == key }?.value }
            for key in ["tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type",
                        "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                        "tokenizer.ggml.padding_token_id", "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.add_bos_token", "tokenizer.chat_template",
                        "tokenizer.ggml.add_space_prefix"] {
                #expect(value(key) != nil && value(key)?.stringArrayValue ?? [] == source[key]?.stringArrayValue ?? [], "\(key)")
                #expect(value(key)?.intArrayValue == source[key]?.intArrayValue, "\(key)")
                #expect(value(key)?.stringValue == source[key]?.stringValue, "\(key)")
                #expect(value(key)?.intValue == source[key]?.intValue, "\(key)")
                #expect(value(key)?.boolValue == source[key]?.boolValue, "\(key)")
            }
        }
    }

    @Test func tokenizersOtherThanByteLevelBPEAreReportedNotWritten() throws {
        var source = TinyHFSource.make()
        source.metadata = source.metadata.map { $0.key == "tokenizer.ggml.model" ? GGUFKeyValue($0.key, .string("llama")) : $0 }
        let layers = try TinyHFSource.layers(bits: 4, groupSize: 32, actOrder: false)
        try TinyHFSource.withFolder { folder in
            let summary = try HFQuantizedWriter(format: .awq).write(source: source, layers: layers, to: folder)
            #expect(!summary.files.contains("tokenizer.json"))
            #expect(summary.notes == ["no tokenizer written: tokenizer.ggml.model 'llama' is not byte-level BPE (gpt2); only those are rebuilt"])
        }
    }
}
