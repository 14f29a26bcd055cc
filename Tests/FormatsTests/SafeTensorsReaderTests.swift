import Testing
@testable import Formats
import Tensors

/// Reading real and reference-written safetensors files. Expected numbers were computed
/// once with the Python `safetensors` package (0.8.0) and numpy, e.g.
///
///     from safetensors.numpy import load_file
///     a = load_file(path)["embeddings.word_embeddings.weight"].astype(np.float64)
///     a.sum(), (a * a).sum(), a.ravel()[:3]
@Suite struct SafeTensorsReaderTests {
    typealias F = SafeTensorsFixtures

    @Test func miniLMHeader() throws {
        let file = try SafeTensorsFile(path: try F.miniLMFolder() + "/model.safetensors")
        #expect(file.tensors.count == 104)
        #expect(file.headerLength == 11408)
        #expect(file.fileSize == 90_868_376)
        #expect(file.metadata == ["format": "pt"])
        // Header order, as written by the reference library (I64 first, then F32 by name).
        #expect(file.tensors.first?.name == "embeddings.position_ids")
        #expect(file.tensors[1].name == "embeddings.LayerNorm.bias")
        #expect(file.tensors.last?.name == "pooler.dense.weight")
        #expect(file.sortedTensors.first?.name == "embeddings.LayerNorm.bias")
        #expect(file.sortedTensors.map(\.name) == file.names.sorted())

        let emb = try file.info("embeddings.word_embeddings.weight")
        #expect(emb.dtype == .f32)
        #expect(emb.shape == [30522, 384])
        #expect(emb.elementCount == 30522 * 384)
        #expect(emb.dataOffsets == 796_672..<47_678_464)
        #expect(emb.fileRange == (796_672 + 8 + 11408)..<(47_678_464 + 8 + 11408))
        #expect(emb.byteCount == 30522 * 384 * 4)
        #expect(file["no.such.tensor"] == nil)
        #expect(throws: SafeTensorsError.tensorNotFound(path: file.path, tensor: "nope")) { try file.info("nope") }
    }

    @Test func miniLMValues() throws {
        let file = try SafeTensorsFile(path: try F.miniLMFolder() + "/model.safetensors")
        let emb = try file.floats("embeddings.word_embeddings.weight")
        #expect(Array(emb.prefix(3)) == [-0.019989013671875, -0.0034027099609375, -0.014678955078125])
        #expect(emb.last == 0.004570063669234514)
        #expect(Array(emb[(101 * 384)..<(101 * 384 + 3)]) == [-0.01761939749121666, -0.007600549608469009, 0.047105543315410614])
        let m = F.moments(emb)
        #expect(abs(m.sum - 138.05072214923618) < 1e-6)
        #expect(abs(m.sumSquares / 36262.5528803781 - 1) < 1e-9)

        let dense = try file.tensor("encoder.layer.5.output.dense.weight")
        #expect(dense.shape == [384, 1536])
        #expect(Array(dense.data.prefix(3)) == [-0.056546345353126526, 0.009879817254841328, -0.012258711270987988])
        #expect(abs(F.moments(dense.data).sum - -53.19849107446487) < 1e-6)

        let bias = try file.floats("encoder.layer.0.attention.self.query.bias")
        #expect(Array(bias.prefix(3)) == [-0.1737075299024582, -0.03423604369163513, 0.10978688299655914])
        #expect(abs(F.moments(bias).sum - 7.6932342518121) < 1e-9)

        // I64 position ids convert to 0, 1, …, 511.
        let ids = try file.floats("embeddings.position_ids")
        #expect(ids == (0..<512).map { Float($0) })

        // Data access is a view into the mapping, not a copy.
        let raw = try file.data(for: "embeddings.word_embeddings.weight")
        #expect(raw.baseAddress == file.bytes.baseAddress! + 8 + 11408 + 796_672)
        #expect(raw.count == 30522 * 384 * 4)
    }

    @Test func miniLMEveryTensor() throws {
        let file = try SafeTensorsFile(path: try F.miniLMFolder() + "/model.safetensors")
        var sum = 0.0, squares = 0.0, elements = 0
        for t in file.tensors {
            let m = F.moments(try file.floats(t.name))
            sum += m.sum
            squares += m.sumSquares
            elements += t.elementCount
        }
        #expect(elements == 22_713_728)
        #expect(abs(sum - 132524.4429346042) < 1e-4)
        #expect(abs(squares / 44686866.828941256 - 1) < 1e-9)
    }

    /// A file written by the reference library with every dtype (see `referenceFile`).
    @Test func everyDTypeFromReference() throws {
        var writer = SafeTensorsWriter(metadata: ["format": "pt"], order: .reference)
        try SafeTensorsWriterTests.addReferenceTensors(to: &writer)
        let bytes = writer.headerBytes() + (try SafeTensorsWriterTests.referenceData(writer))
        let file = try SafeTensorsFile(bytes: bytes, path: "ref.safetensors")
        #expect(file.tensors.count == 17)
        #expect(try file.floats("a\"q\\") == [5.2421875, 58.375, 685.0])
        #expect(try file.floats("b") == [5.516420653606247e-16, 1.6111880540847778e-07, 46.75, 13488881664.0])
        let f64 = try file.floats("é/ü")
        #expect(f64 == [0] && f64[0].sign == .minus)
        #expect(try file.floats("Z") == [-5.93388008690942e+18])
        #expect(try file.info("Z").shape == [])
        #expect(try file.floats("i8") == [-39, -32, -25, -18, -11])
        #expect(try file.floats("u64") == [9.69159686451993e+18])
        #expect(try file.floats("i16") == [-15942, -12344])
        #expect(try file.floats("u16") == [7703])
        #expect(try file.floats("i32") == [Int32(-1331060069), -859455817].map { Float($0) })  // nearest floats
        #expect(try file.floats("u32") == [UInt32(1262763318), 1734367570].map { Float($0) })
        #expect(try file.floats("layers.0.w") == [2.868219365293077e-26, 2.475821325731431e-09, 207876992.0,
                                                  1.7103032506834345e+25, -1.1964959808499181e-35, -1.0474501242794671e-18])
        #expect(try file.floats("e4") == [-0.04296875, -0.078125, -0.140625, -0.25])
        #expect(try file.floats("e5") == [-0.1875, -0.625, -2.0])
        #expect(try file.floats("mask") == [0, 1, 0, 1])
        #expect(try file.floats("empty") == [])
        #expect(try file.info("empty").shape == [0, 4])
    }

    @Test func float8Tables() {
        typealias C = SafeTensorsConversion
        #expect(C.f8e4m3ToFloat(0x38) == 1)
        #expect(C.f8e4m3ToFloat(0x7E) == 448)
        #expect(C.f8e4m3ToFloat(0xFE) == -448)
        #expect(C.f8e4m3ToFloat(0x7F).isNaN && C.f8e4m3ToFloat(0xFF).isNaN)
        #expect(C.f8e4m3ToFloat(0x08) == 0x1p-6)   // smallest normal
        #expect(C.f8e4m3ToFloat(0x01) == 0x1p-9)   // smallest subnormal
        #expect(C.f8e4m3ToFloat(0x80) == 0 && C.f8e4m3ToFloat(0x80).sign == .minus)
        #expect(C.f8e5m2ToFloat(0x3C) == 1)
        #expect(C.f8e5m2ToFloat(0x7B) == 57344)
        #expect(C.f8e5m2ToFloat(0x7C) == .infinity)
        #expect(C.f8e5m2ToFloat(0x7D).isNaN)
        #expect(C.f8e5m2ToFloat(0x01) == 0x1p-16)
    }

    @Test func lenientButValidEdgeCases() throws {
        // No tensors at all.
        #expect(try SafeTensorsFile(bytes: F.file("{}      ")).tensors.isEmpty)
        // Leading whitespace, as the reference accepts.
        #expect(try SafeTensorsFile(bytes: F.file(" \n{}")).tensors.isEmpty)
        // Zero-size tensors may share an offset, anywhere; scalars; unknown fields ignored;
        // `__metadata__: null`; trailing JSON whitespace.
        let header = #"{"__metadata__":null,"z":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"#
            + #""s":{"dtype":"F32","shape":[],"data_offsets":[0,4],"extra":[1,{"x":null}]},"#
            + #""y":{"shape":[2,0],"dtype":"BF16","data_offsets":[4,4]},"w":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}"#
            + " \n\t\r"
        let file = try SafeTensorsFile(bytes: F.file(header, data: [0, 0, 0x80, 0x3F, 7, 9]))
        #expect(file.names == ["z", "s", "y", "w"])
        #expect(file.metadata == nil)
        #expect(try file.floats("s") == [1])
        #expect(try file.floats("w") == [7, 9])
        #expect(try file.floats("y") == [])
        // Escaped names decode.
        let escaped = try SafeTensorsFile(bytes: F.file(#"{"a\u00e9\ud83d\ude00\n":{"dtype":"I8","shape":[1],"data_offsets":[0,1]}}"#, data: [255]))
        #expect(escaped.names == ["aé😀\n"])
        #expect(try escaped.floats("aé😀\n") == [-1])
    }
}
