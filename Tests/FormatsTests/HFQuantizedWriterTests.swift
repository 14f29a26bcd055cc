import Foundation
import Testing
@testable import Formats
import Quantization
import Tensors

/// A tiny Llama (2 blocks, hidden 64, FFN 128, 2 query heads and 1 KV head of 32) held in
/// memory as a `QuantizationSource`, with a byte-level BPE tokenizer in its metadata.
enum TinyHFSource {
    static let vocab = 40, hidden = 64, ffn = 128, layers = 2

    static func make(seed: UInt64 = 7) -> QuantizationSource {
        var rng = HFQuantizedRandom(state: seed)
        var tensors: [SourceTensor] = []
        func add(_ name: String, _ shape: [Int]) {
            let values = (0..<shape.reduce(1, *)).map { _ in rng.float() - 0.5 }
            let cache = BytesCache()
            tensors.append(SourceTensor(name: name, shape: shape, type: .f32,
                                        raw: { cache.bytes { BytesCache.floatBytes(values) } }, decode: { values }))
        }
        add("token_embd.weight", [vocab, hidden])
        add("output_norm.weight", [hidden])
        for l in 0..<layers {
            let p = "blk.\(l)."
            add(p + "attn_norm.weight", [hidden])
            add(p + "attn_q.weight", [64, hidden])
            add(p + "attn_k.weight", [32, hidden])
            add(p + "attn_v.weight", [32, hidden])
            add(p + "attn_output.weight", [hidden, 64])
            add(p + "ffn_norm.weight", [hidden])
            add(p + "ffn_gate.weight", [ffn, hidden])
            add(p + "ffn_up.weight", [ffn, hidden])
            add(p + "ffn_down.weight", [hidden, ffn])
        }
        // Distinct tokens: a control token, two merge results, then single letters and "ax"…
        var tokens: [String] = ["<|endoftext|>", "ab", "Ġa", "Ġ"]
        for i in 0..<(vocab - 4) {
            let letter = String(UnicodeScalar(UInt8(97 + i % 26)))
            tokens.append(i < 26 ? letter : letter + "x")
        }
        let metadata: [GGUFKeyValue] = [
            GGUFKeyValue("general.architecture", .string("llama")),
            GGUFKeyValue("llama.block_count", .uint32(UInt32(layers))),
            GGUFKeyValue("llama.context_length", .uint32(256)),
            GGUFKeyValue("llama.embedding_length", .uint32(UInt32(hidden))),
            GGUFKeyValue("llama.feed_forward_length", .uint32(UInt32(ffn))),
            GGUFKeyValue("llama.attention.head_count", .uint32(2)),
            GGUFKeyValue("llama.attention.head_count_kv", .uint32(1)),
            GGUFKeyValue("llama.rope.freq_base", .float32(10000)),
            GGUFKeyValue("llama.attention.layer_norm_rms_epsilon", .float32(1e-5)),
            GGUFKeyValue("llama.vocab_size", .uint32(UInt32(vocab))),
            GGUFKeyValue("tokenizer.ggml.model", .string("gpt2")),
            GGUFKeyValue("tokenizer.ggml.pre", .string("gpt-2")),
            GGUFKeyValue("tokenizer.ggml.tokens", .stringArray(tokens)),
            GGUFKeyValue("tokenizer.ggml.token_type", .int32Array([3] + Array(repeating: 1, count: vocab - 1))),
            GGUFKeyValue("tokenizer.ggml.merges", .stringArray(["a b", "Ġ a"])),
            GGUFKeyValue("tokenizer.ggml.bos_token_id", .uint32(0)),
            GGUFKeyValue("tokenizer.ggml.eos_token_id", .uint32(0)),
        ]
        return QuantizationSource(path: "tiny.gguf", metadata: metadata, tensors: tensors)
    }

    /// Every block projection quantized with random codes.
    static func layers(bits: Int, groupSize: Int, actOrder: Bool, symmetric: Bool = false, minimumZero: Int32 = 0,
                       seed: UInt64 = 3) throws -> [String: GroupQuantizedMatrix] {
        var rng = HFQuantizedRandom(state: seed)
        var out: [String: GroupQuantizedMatrix] = [:]
        let source = make()
        for name in HFQuantizedWriter.quantizableLayers(of: source) {
            let shape = source.tensors.first { $0.name == name }!.shape
            out[name] = try rng.matrix(rows: shape[0], columns: shape[1], bits: bits, groupSize: groupSize,
                                       symmetric: symmetric, actOrder: actOrder, minimumZero: minimumZero)
        }
        return out
    }

    static func withFolder<R>(_ body: (String) throws -> R) throws -> R {
        try GGUFTestSupport.withTemporaryFolder { try body($0.path) }
    }
}

@Suite struct HFQuantizedWriterTests {
    static let cases: [(HFQuantizedFormat, Int)] = [(.gptq, 2), (.gptq, 3), (.gptq, 4), (.gptq, 8),
                                                     (.gptqV2, 2), (.gptqV2, 3), (.gptqV2, 4), (.gptqV2, 8), (.awq, 4)]

    @Test(arguments: cases)
    func writeThenReadGivesTheSameLayers(format: HFQuantizedFormat, bits: Int) throws {
        let source = TinyHFSource.make()
        let actOrder = format != .awq
        let layers = try TinyHFSource.layers(bits: bits, groupSize: 32, actOrder: actOrder,
                                             minimumZero: format == .gptq ? 1 : 0)
        try TinyHFSource.withFolder { folder in
            let summary = try HFQuantizedWriter(format: format, floatType: .f32).write(source: source, layers: layers, to: folder)
            #expect(summary.config == HFQuantizationConfig(format: format, bits: bits, groupSize: 32, symmetric: false,
                                                           descAct: actOrder))
            #expect(summary.files.contains("tokenizer.json"))
            #expect(summary.notes.isEmpty)
            let checkpoint = try HFQuantizedCheckpoint(folder: folder)
            #expect(checkpoint.config == summary.config)
            let back = try checkpoint.layers()
            #expect(back.keys.sorted() == layers.keys.sorted())
            for (name, m) in layers { #expect(back[name] == m, "\(name)") }

            // The whole model as a source: quantized tensors dequantized, the rest as written.
            let loaded = try QuantizationSource(huggingFaceQuantized: folder)
            #expect(loaded.tensors.map(\.name).sorted() == source.tensors.map(\.name).sorted())
            for t in source.tensors {
                let mine = try #require(loaded.tensors.first { $0.name == t.name })
                #expect(mine.shape == t.shape)
                #expect(try mine.decode() == (layers[t.name]?.dequantized() ?? t.decode()), "\(t.name)")
            }
            #expect(loaded["tokenizer.ggml.tokens"] == source["tokenizer.ggml.tokens"])
            #expect(loaded["tokenizer.ggml.merges"] == source["tokenizer.ggml.merges"])
            #expect(loaded["llama.attention.head_count_kv"]?.intValue == 1)
        }
    }

    @Test func symmetricPerChannelLayersWriteGroupSizeMinusOne() throws {
        let layers = try TinyHFSource.layers(bits: 4, groupSize: -1, actOrder: false, symmetric: true)
        try TinyHFSource.withFolder { folder in
            let summary = try HFQuantizedWriter(format: .gptq).write(source: TinyHFSource.make(), layers: layers, to: folder)
            #expect(summary.config.groupSize == -1 && summary.config.symmetric && !summary.config.descAct)
            let back = try HFQuantizedCheckpoint(folder: folder).layers()
            for (name, m) in layers { #expect(back[name] == m, "\(name)") }
            let config = try String(contentsOfFile: folder + "/config.json", encoding: .utf8)
            #expect(config.contains("\"group_size\": -1") && config.contains("\"sym\": true"))
            #expect(config.contains("\"checkpoint_format\": \"gptq\""))
            // Symmetric 4-bit zero points (8) are stored as 7 in format v1: every word 0x77777777.
            let file = try SafeTensorsFile(path: folder + "/model.safetensors")
            let raw = try file.data(for: "model.layers.0.mlp.up_proj.qzeros")
            #expect((0..<raw.count / 4).allSatisfy { raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self) == 0x7777_7777 })
        }
    }

    @Test func unquantizedProjectionsAreListedAndReadAsFloats() throws {
        var layers = try TinyHFSource.layers(bits: 4, groupSize: 32, actOrder: false)
        layers["blk.1.ffn_down.weight"] = nil
        let source = TinyHFSource.make()
        for format in [HFQuantizedFormat.gptqV2, .awq] {
            try TinyHFSource.withFolder { folder in
                let summary = try HFQuantizedWriter(format: format, floatType: .f32).write(source: source, layers: layers, to: folder)
                #expect(summary.config.notQuantized == ["model.layers.1.mlp.down_proj"])
                // Block 0 keeps its down_proj quantized and block 1 does not: GPTQ notes that
                // transformers ignores `dynamic`.
                #expect(summary.notes.count == (format == .awq ? 1 : 2))
                #expect(summary.config.modulesInBlockToQuantize == nil)
                let config = try String(contentsOfFile: folder + "/config.json", encoding: .utf8)
                #expect(config.contains(format == .awq ? "\"model.layers.1.mlp.down_proj\"" : "\"-:^model\\\\.layers\\\\.1\\\\.mlp\\\\.down_proj$\""))
                let checkpoint = try HFQuantizedCheckpoint(folder: folder)
                #expect(try checkpoint.layer("blk.1.ffn_down.weight") == nil)
                let loaded = try QuantizationSource(huggingFaceQuantized: folder)
                let down = try #require(loaded.tensors.first { $0.name == "blk.1.ffn_down.weight" })
                #expect(try down.decode() == source.tensors.first { $0.name == "blk.1.ffn_down.weight" }!.decode())
            }
        }
    }

    @Test func theSameProjectionsLeftOutOfEveryBlockAreListedForTransformers() throws {
        var layers = try TinyHFSource.layers(bits: 4, groupSize: 32, actOrder: false, minimumZero: 1)
        layers["blk.0.ffn_down.weight"] = nil
        layers["blk.1.ffn_down.weight"] = nil
        try TinyHFSource.withFolder { folder in
            let summary = try HFQuantizedWriter(format: .gptq).write(source: TinyHFSource.make(), layers: layers, to: folder)
            #expect(summary.notes.count == 1)
            let expected = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj"]
            #expect(summary.config.modulesInBlockToQuantize == expected)
            #expect(try HFQuantizedCheckpoint(folder: folder).config.modulesInBlockToQuantize == expected)
        }
    }

    @Test func qAndKRowsAreWrittenInHuggingFaceOrder() throws {
        // Row r of the source's attn_q is llama.cpp's order; in the file, Hugging Face row
        // sourceRow(r) must hold it (rotate-half pairs back in two halves per head).
        let layers = try TinyHFSource.layers(bits: 8, groupSize: 64, actOrder: false)
        try TinyHFSource.withFolder { folder in
            try HFQuantizedWriter(format: .gptqV2).write(source: TinyHFSource.make(), layers: layers, to: folder)
            let file = try SafeTensorsFile(path: folder + "/model.safetensors")
            let raw = try file.data(for: "model.layers.0.self_attn.q_proj.qweight")  // [64·8/32 = 16, 64]
            let permutation = RowPermutation(rows: 64, heads: 2)
            let m = layers["blk.0.attn_q.weight"]!
            for r in 0..<64 {
                let hf = permutation.sourceRow(r)
                let word = raw.loadUnaligned(fromByteOffset: (0 * 64 + hf) * 4, as: UInt32.self)  // inputs 0…3 of HF row hf
                let expected = (0..<4).reduce(UInt32(0)) { $0 | UInt32(m.codes[r * 64 + $1]) << UInt32(8 * $1) }
                #expect(word == expected, "row \(r)")
            }
        }
    }

    @Test func outputIsByteIdenticalAcrossRuns() throws {
        let layers = try TinyHFSource.layers(bits: 3, groupSize: 32, actOrder: true, minimumZero: 1)
        try TinyHFSource.withFolder { a in
            try TinyHFSource.withFolder { b in
                try HFQuantizedWriter(format: .gptq).write(source: TinyHFSource.make(), layers: layers, to: a)
                try HFQuantizedWriter(format: .gptq).write(source: TinyHFSource.make(), layers: layers, to: b)
                for name in ["model.safetensors", "config.json", "quantize_config.json", "tokenizer.json", "tokenizer_config.json"] {
                    #expect(FileManager.default.contents(atPath: a + "/" + name) == FileManager.default.contents(atPath: b + "/" + name), "\(name)")
                }
            }
        }
    }

    func expectExportError(_ layers: [String: GroupQuantizedMatrix], _ format: HFQuantizedFormat, _ fragment: String,
                           sourceLocation: SourceLocation = #_sourceLocation) throws {
        try TinyHFSource.withFolder { folder in
            do {
                try HFQuantizedWriter(format: format).write(source: TinyHFSource.make(), layers: layers, to: folder)
                Issue.record("no error (expected one mentioning \(fragment))", sourceLocation: sourceLocation)
            } catch let error as HFQuantizedError {
                #expect(error.description.contains(fragment), "\(error)", sourceLocation: sourceLocation)
                #expect(!FileManager.default.fileExists(atPath: folder + "/model.safetensors"), sourceLocation: sourceLocation)
            }
        }
    }

    @Test func layersTheFormatCannotHoldAreRefusedBeforeWriting() throws {
        let base = try TinyHFSource.layers(bits: 4, groupSize: 32, actOrder: false)
        // Zero point 0 cannot be stored as zero − 1 in GPTQ format v1.
        var zero = base
        zero["blk.0.attn_v.weight"]!.zeroPoints[5] = 0
        try expectExportError(zero, .gptq, "gptq_v2")
        try TinyHFSource.withFolder { try HFQuantizedWriter(format: .gptqV2).write(source: TinyHFSource.make(), layers: zero, to: $0) }
        // AWQ: no act-order, 4 bits only.
        try expectExportError(try TinyHFSource.layers(bits: 4, groupSize: 32, actOrder: true), .awq, "act-order")
        try expectExportError(try TinyHFSource.layers(bits: 8, groupSize: 32, actOrder: false), .awq, "4")
        // One bit width and one group size per checkpoint.
        var mixed = base
        mixed["blk.0.ffn_up.weight"] = try TinyHFSource.layers(bits: 8, groupSize: 32, actOrder: false)["blk.0.ffn_up.weight"]
        try expectExportError(mixed, .gptqV2, "mix bit widths")
        mixed = base
        mixed["blk.0.ffn_up.weight"] = try TinyHFSource.layers(bits: 4, groupSize: 16, actOrder: false)["blk.0.ffn_up.weight"]
        try expectExportError(mixed, .gptqV2, "mix group sizes")
        // Names and shapes must be the source's projections.
        var wrong = base
        wrong["token_embd.weight"] = base["blk.0.attn_q.weight"]
        try expectExportError(wrong, .gptqV2, "token_embd.weight")
        wrong = base
        wrong["blk.0.attn_k.weight"] = base["blk.0.attn_q.weight"]
        try expectExportError(wrong, .gptqV2, "64×64")
        try expectExportError([:], .gptq, "no quantized layers")
    }
}

/// Writing a folder layer by layer through a spill file.
@Suite struct HFQuantizedStreamTests {
    @Test func streamedFolderIsByteIdenticalToTheInMemoryOne() throws {
        let layers = try TinyHFSource.layers(bits: 4, groupSize: 32, actOrder: true, minimumZero: 1)
        try TinyHFSource.withFolder { a in
            try TinyHFSource.withFolder { b in
                try HFQuantizedWriter(format: .gptq).write(source: TinyHFSource.make(), layers: layers, to: a)
                let stream = try HFQuantizedWriter(format: .gptq).stream(source: TinyHFSource.make(), to: b)
                // The order layers finish in does not matter: the file's order is fixed.
                for name in layers.keys.sorted().reversed() { try stream.add(layer: name, layers[name]!) }
                try stream.finish()
                for name in ["model.safetensors", "config.json", "quantize_config.json", "tokenizer.json"] {
                    let x = FileManager.default.contents(atPath: a + "/" + name)
                    #expect(x != nil && x == FileManager.default.contents(atPath: b + "/" + name), "\(name)")
                }
                // Nothing but the outputs is left in the folder (the spill file had no name).
                let left = try FileManager.default.contentsOfDirectory(atPath: b).sorted()
                #expect(left == (try FileManager.default.contentsOfDirectory(atPath: a).sorted()))
                #expect(!left.contains { $0.hasPrefix(".") })
            }
        }
    }

    @Test func aLayerThatDisagreesIsRefusedWhenAdded() throws {
        let base = try TinyHFSource.layers(bits: 4, groupSize: 32, actOrder: false)
        let other = try TinyHFSource.layers(bits: 8, groupSize: 32, actOrder: false)
        try TinyHFSource.withFolder { folder in
            let stream = try HFQuantizedWriter(format: .gptqV2).stream(source: TinyHFSource.make(), to: folder)
            try stream.add(layer: "blk.0.attn_q.weight", base["blk.0.attn_q.weight"]!)
            #expect(throws: HFQuantizedError.self) { try stream.add(layer: "blk.0.attn_k.weight", other["blk.0.attn_k.weight"]!) }
            #expect(throws: HFQuantizedError.self) { try stream.add(layer: "blk.0.attn_q.weight", base["blk.0.attn_q.weight"]!) }
            #expect(throws: HFQuantizedError.self) { try stream.add(layer: "output_norm.weight", base["blk.0.attn_q.weight"]!) }
        }
    }

    @Test func anAbandonedStreamLeavesNoFolderBehind() throws {
        let layers = try TinyHFSource.layers(bits: 4, groupSize: 32, actOrder: false)
        try TinyHFSource.withFolder { parent in
            let folder = parent + "/out"
            do {
                let stream = try HFQuantizedWriter(format: .gptqV2).stream(source: TinyHFSource.make(), to: folder)
                try stream.add(layer: "blk.0.attn_q.weight", layers["blk.0.attn_q.weight"]!)
                #expect(FileManager.default.fileExists(atPath: folder))
            }
            #expect(!FileManager.default.fileExists(atPath: folder))
        }
    }
}

/// The spill file that parks finished tensors until an output is written.
@Suite struct SpillFileTests {
    @Test func bytesComeBackWholeAndInChunks() throws {
        try GGUFTestSupport.withTemporaryFolder { folder in
            let spill = try SpillFile(folder: folder.path)
            var rng = HFQuantizedRandom(state: 11)
            let pieces = (0..<20).map { i in (0..<(i * 997 + 1)).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }
            // Appended from several threads at once: each slice still holds its own bytes.
            nonisolated(unsafe) var slices = [SpillFile.Slice?](repeating: nil, count: pieces.count)
            let lock = NSLock()
            DispatchQueue.concurrentPerform(iterations: pieces.count) { i in
                let s = try! spill.append(pieces[i])
                lock.withLock { slices[i] = s }
            }
            #expect(spill.size == pieces.reduce(0) { $0 + $1.count })
            for (i, piece) in pieces.enumerated() {
                let slice = try #require(slices[i])
                #expect(try slice.load() == piece)
                var joined: [UInt8] = []
                try slice.forEachChunk(1000) { joined += $0 }
                #expect(joined == piece)
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)
        }
    }

    @Test func aMissingFolderIsNamedInTheError() {
        #expect { try SpillFile(folder: "/nonexistent/swiftquant-folder") } throws: {
            "\($0)".contains("/nonexistent/swiftquant-folder")
        }
    }

    @Test func aSpilledSafeTensorsFileEqualsTheInMemoryOne() throws {
        try GGUFTestSupport.withTemporaryFolder { folder in
            func build(_ spill: SpillFile?) throws -> [UInt8] {
                var w = SafeTensorsWriter(metadata: ["format": "pt"], order: .reference, spill: spill)
                try w.add("b", shape: [3, 2], floats: [1, 2, 3, 4, 5, 6], as: .f16)
                try w.add("a", dtype: .i32, shape: [2], bytes: [1, 0, 0, 0, 2, 0, 0, 0])
                let path = folder.path + "/x.safetensors"
                try w.write(to: path)
                return Array(FileManager.default.contents(atPath: path)!)
            }
            let spilled = try build(SpillFile(folder: folder.path)), held = try build(nil)
            #expect(spilled == held)
        }
    }
}

/// bitsandbytes 8-bit (LLM.int8()) folders.
@Suite struct HFBitsAndBytesTests {
    /// Every block projection as random int8 rows (codes 1…255 around 128) with positive
    /// scales of the form max|w| / 127 (what the file stores is max|w|).
    static func layers(seed: UInt64 = 5) throws -> [String: GroupQuantizedMatrix] {
        var rng = HFQuantizedRandom(state: seed)
        let source = TinyHFSource.make()
        var out: [String: GroupQuantizedMatrix] = [:]
        for name in HFQuantizedWriter.quantizableLayers(of: source) {
            let shape = source.tensors.first { $0.name == name }!.shape
            let codes = (0..<shape[0] * shape[1]).map { _ in UInt8(1 + rng.int(255)) }
            let scales = (0..<shape[0]).map { _ in (0.1 + rng.float()) / 127 }
            out[name] = try GroupQuantizedMatrix(rows: shape[0], columns: shape[1], bits: 8, groupSize: shape[1], codes: codes,
                                                 scales: scales, zeroPoints: [Int32](repeating: 128, count: shape[0]), symmetric: true)
        }
        return out
    }

    @Test func writeThenReadGivesTheSameLayersAndThreshold() throws {
        let layers = try Self.layers()
        try TinyHFSource.withFolder { folder in
            var writer = HFQuantizedWriter(format: .bitsAndBytes, floatType: .f32)
            writer.outlierThreshold = 4.5
            let summary = try writer.write(source: TinyHFSource.make(), layers: layers, to: folder)
            #expect(summary.files == ["model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"])
            let checkpoint = try HFQuantizedCheckpoint(folder: folder)
            #expect(checkpoint.config.format == .bitsAndBytes && checkpoint.config.bits == 8 && checkpoint.config.groupSize == -1)
            #expect(checkpoint.config.outlierThreshold == 4.5)
            let back = try checkpoint.layers()
            #expect(back.keys.sorted() == layers.keys.sorted())
            for (name, m) in layers { #expect(back[name] == m, "\(name)") }
            // The layout transformers saves: int8 weight, f32 SCB = 127 · scale, uint8 weight_format 0.
            let file = try SafeTensorsFile(path: folder + "/model.safetensors")
            let w = try file.info("model.layers.1.mlp.down_proj.weight")
            #expect(w.dtype == .i8 && w.shape == [64, 128])
            let scb = try file.info("model.layers.1.mlp.down_proj.SCB")
            #expect(scb.dtype == .f32 && scb.shape == [64])
            let absmax = SafeTensorsConversion.floats(file.data(for: scb), dtype: .f32, count: 64)
            let m = layers["blk.1.ffn_down.weight"]!
            for r in 0..<64 { #expect(absmax[r] / 127 == m.scales[r]) }
            let format = try file.info("model.layers.1.mlp.down_proj.weight_format")
            #expect(format.dtype == .u8 && format.shape == [] && Array(file.data(for: format)) == [0])
            // The whole model as a source: int8 rows dequantized.
            let loaded = try QuantizationSource(huggingFaceQuantized: folder)
            let t = try #require(loaded.tensors.first { $0.name == "blk.0.ffn_up.weight" })
            #expect(try t.decode() == layers["blk.0.ffn_up.weight"]!.dequantized())
        }
    }

    @Test func anyScaleIsStoredToWithinOneUlp() {
        var rng = HFQuantizedRandom(state: 9)
        for _ in 0..<10_000 {
            let s = 1e-4 + rng.float() / 10
            let back = HFQuantizedPacking.scale(absmax: HFQuantizedPacking.absmax(scale: s))
            #expect(abs(back - s) <= s.ulp)
        }
    }

    @Test func configIsTransformersBitsAndBytesConfig() throws {
        try TinyHFSource.withFolder { folder in
            try HFQuantizedWriter(format: .bitsAndBytes).write(source: TinyHFSource.make(), layers: Self.layers(), to: folder)
            let data = try #require(FileManager.default.contents(atPath: folder + "/config.json"))
            let q = try #require(try JSONValue.parse(Array(data), maxDepth: 64, allowDuplicateKeys: false)["quantization_config"])
            #expect(q["quant_method"]?.stringValue == "bitsandbytes")
            #expect(q["load_in_8bit"]?.boolValue == true && q["load_in_4bit"]?.boolValue == false)
            #expect(q["llm_int8_threshold"]?.doubleValue == 6)
            #expect(q["llm_int8_has_fp16_weight"]?.boolValue == false)
            #expect(!FileManager.default.fileExists(atPath: folder + "/quantize_config.json"))
        }
    }

    @Test func layersBitsAndBytesCannotHoldAreRefused() throws {
        let base = try Self.layers()
        var low = base
        low["blk.0.attn_q.weight"]!.codes[3] = 0  // −128
        #expect(throws: HFQuantizedError.self) {
            try TinyHFSource.withFolder { try HFQuantizedWriter(format: .bitsAndBytes).write(source: TinyHFSource.make(), layers: low, to: $0) }
        }
        let grouped = try TinyHFSource.layers(bits: 8, groupSize: 32, actOrder: false, symmetric: true)
        #expect(throws: HFQuantizedError.self) {
            try TinyHFSource.withFolder { try HFQuantizedWriter(format: .bitsAndBytes).write(source: TinyHFSource.make(), layers: grouped, to: $0) }
        }
    }

    /// Rewrites one tensor of a written folder's model.safetensors.
    static func corrupt(_ folder: String, _ tensor: String, dtype: DType? = nil, shape: [Int]? = nil,
                        bytes: ([UInt8]) -> [UInt8] = { $0 }) throws {
        let path = folder + "/model.safetensors"
        let file = try SafeTensorsFile(path: path)
        var writer = SafeTensorsWriter(metadata: file.metadata)
        for t in file.tensors {
            if t.name == tensor {
                let info = try file.info(t.name)
                try writer.add(t.name, dtype: dtype ?? info.dtype, shape: shape ?? info.shape, bytes: bytes(Array(file.data(for: info))))
            } else {
                try writer.add(t.name, from: file)
            }
        }
        try writer.write(to: path)
    }

    @Test func corruptModulesAreRejectedNamingFileAndTensor() throws {
        let module = "model.layers.0.self_attn.v_proj"
        let cases: [(String, DType?, [Int]?, ([UInt8]) -> [UInt8], String)] = [
            (module + ".weight", nil, nil, { var b = $0; b[7] = 0x80; return b }, "−128"),
            (module + ".SCB", nil, nil, { var b = $0; b[3] = 0xBF; return b }, "SCB row 0"),
            (module + ".weight_format", nil, nil, { _ in [1] }, "weight_format is 1"),
            (module + ".SCB", .i32, nil, { $0 }, "dtype I32"),
        ]
        for (tensor, dtype, shape, edit, fragment) in cases {
            try TinyHFSource.withFolder { folder in
                try HFQuantizedWriter(format: .bitsAndBytes).write(source: TinyHFSource.make(), layers: Self.layers(), to: folder)
                try Self.corrupt(folder, tensor, dtype: dtype, shape: shape, bytes: edit)
                let checkpoint = try HFQuantizedCheckpoint(folder: folder)
                do {
                    _ = try checkpoint.layer("blk.0.attn_v.weight")
                    Issue.record("no error for \(fragment)")
                } catch let error as HFQuantizedError {
                    #expect("\(error)".contains(fragment) && "\(error)".contains("model.safetensors"), "\(error)")
                }
            }
        }
    }

    @Test func fourBitBitsAndBytesConfigsAreRefused() throws {
        let q = try JSONValue.parse(Array(#"{"quant_method":"bitsandbytes","load_in_4bit":true,"bnb_4bit_quant_type":"nf4"}"#.utf8),
                                    maxDepth: 8, allowDuplicateKeys: false)
        #expect { try HFQuantizationConfig(json: q, path: "x/config.json") } throws: { "\($0)".contains("4-bit") }
    }
}
