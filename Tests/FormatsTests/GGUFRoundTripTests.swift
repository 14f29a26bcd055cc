import Foundation
import Testing
import Tensors
@testable import Formats

/// Synthetic files: every metadata type, nested arrays, version 2, the writer's checks.
@Suite struct GGUFRoundTripTests {
    /// One entry of every wire type, typed arrays of every element type (some empty),
    /// and arrays of arrays.
    static let everyType: [GGUFKeyValue] = [
        GGUFKeyValue("general.architecture", .string("llama")),
        GGUFKeyValue("general.alignment", .uint32(64)),
        GGUFKeyValue("t.uint8", .uint8(0xFE)),
        GGUFKeyValue("t.int8", .int8(-128)),
        GGUFKeyValue("t.uint16", .uint16(0xBEEF)),
        GGUFKeyValue("t.int16", .int16(-12345)),
        GGUFKeyValue("t.uint32", .uint32(0xDEAD_BEEF)),
        GGUFKeyValue("t.int32", .int32(-7)),
        GGUFKeyValue("t.float32", .float32(-1.5e-7)),
        GGUFKeyValue("t.bool.true", .bool(true)),
        GGUFKeyValue("t.bool.false", .bool(false)),
        GGUFKeyValue("t.string", .string("héllo\u{0} wörld 🙂")),
        GGUFKeyValue("t.string.empty", .string("")),
        GGUFKeyValue("t.uint64", .uint64(.max)),
        GGUFKeyValue("t.int64", .int64(.min)),
        GGUFKeyValue("t.float64", .float64(-.infinity)),
        GGUFKeyValue("a.uint8", .uint8Array([0, 1, 255])),
        GGUFKeyValue("a.int8", .int8Array([-1, 127])),
        GGUFKeyValue("a.uint16", .uint16Array([])),
        GGUFKeyValue("a.int16", .int16Array([-2, 3])),
        GGUFKeyValue("a.uint32", .uint32Array([7, 0xFFFF_FFFF])),
        GGUFKeyValue("a.int32", .int32Array([-3, 3, 0])),
        GGUFKeyValue("a.float32", .float32Array([0.25, -0.0, .infinity])),
        GGUFKeyValue("a.bool", .boolArray([true, false, true])),
        GGUFKeyValue("a.string", .stringArray(["a", "", "ünïcode", String(repeating: "x", count: 300)])),
        GGUFKeyValue("a.string.empty", .stringArray([])),
        GGUFKeyValue("a.uint64", .uint64Array([1 << 63])),
        GGUFKeyValue("a.int64", .int64Array([.min, .max])),
        GGUFKeyValue("a.float64", .float64Array([.pi])),
        GGUFKeyValue("a.float64.empty", .float64Array([])),
        GGUFKeyValue("n.empty", .array([])),
        GGUFKeyValue("n.mixed", .array([.int32Array([1, 2]), .stringArray(["x"]), .float32Array([]), .array([])])),
        GGUFKeyValue("n.deep", .array([.array([.array([.boolArray([true]), .uint8Array([])])])])),
    ]

    /// A writer with `everyType` and tensors of several types and ranks.
    static func sampleWriter(version: UInt32 = 3) -> GGUFWriter {
        var writer = GGUFWriter(version: version, metadata: everyType)
        let f32 = (0..<24).flatMap { i in withUnsafeBytes(of: Float(i).bitPattern.littleEndian, Array.init) }
        writer.addTensor(name: "f32.matrix", dims: [4, 6], type: .f32, data: .bytes(f32))
        writer.addTensor(name: "q4_0.rows", dims: [64, 3], type: .q4_0, data: .fill { buffer in
            for i in buffer.indices { buffer[i] = UInt8(truncatingIfNeeded: i &* 7) }
        })
        writer.addTensor(name: "f16.3d", dims: [3, 1, 5], type: .f16, data: .bytes([UInt8](repeating: 0x3C, count: 30)))
        writer.addTensor(name: "q8_0.4d", dims: [32, 2, 1, 2], type: .q8_0, data: .bytes([UInt8](repeating: 9, count: 4 * 34)))
        writer.addTensor(name: "scalar", dims: [], type: .f32, data: .bytes([0, 0, 0x80, 0x3F]))
        writer.addTensor(name: "i8", dims: [1], type: .i8, data: .bytes([0xAB]))
        return writer
    }

    @Test func everyMetadataTypeRoundTrips() throws {
        let bytes = try Self.sampleWriter().serialized()
        let file = try GGUFFile(bytes: bytes)
        #expect(file.version == 3)
        #expect(file.metadata == Self.everyType)
        #expect(file.alignment == 64)
        #expect(file.dataOffset % 64 == 0)
        #expect(file["a.uint16"]?.elementType == .uint16 && file["a.uint16"]?.count == 0)
        #expect(file["n.empty"]?.elementType == .array)
        #expect(file["n.mixed"]?.typeDescription == "array[array]")

        #expect(file.tensors.map(\.name) == ["f32.matrix", "q4_0.rows", "f16.3d", "q8_0.4d", "scalar", "i8"])
        #expect(file.tensors.map(\.offset) == [0, 128, 256, 320, 512, 576])
        let matrix = try #require(file.tensor(named: "f32.matrix"))
        #expect(matrix.dims == [4, 6] && matrix.shape == [6, 4] && matrix.byteCount == 96)
        #expect(file.data(for: matrix).loadUnaligned(fromByteOffset: 23 * 4, as: Float.self) == 23)
        let q = try #require(file.tensor(named: "q4_0.rows"))
        #expect(q.elementCount == 192 && q.byteCount == 6 * 18)
        #expect(Array(file.data(for: q).prefix(3)) == [0, 7, 14])
        let scalar = try #require(file.tensor(named: "scalar"))
        #expect(scalar.dims == [] && scalar.elementCount == 1)
        #expect(file.data(for: scalar).loadUnaligned(as: Float.self) == 1)
        #expect(bytes.count == file.dataOffset + 576 + 64)  // the last tensor is padded too

        // Written again from what was read: the same bytes.
        #expect(try GGUFWriter(copying: file).serialized() == bytes)
    }

    @Test func typedAccessors() throws {
        let file = try GGUFFile(bytes: try Self.sampleWriter().serialized())
        #expect(file.int("t.uint8") == 254)
        #expect(file.int("t.int8") == -128)
        #expect(file.int("t.uint32") == 0xDEAD_BEEF)
        #expect(file.int("t.int64") == Int(Int64.min))
        #expect(file.int("t.uint64") == nil)  // does not fit in Int
        #expect(file.int("t.string") == nil)
        #expect(file.int("absent") == nil)
        #expect(file.float("t.float32") == -1.5e-7)
        #expect(file.double("t.float64") == -.infinity)
        #expect(file.float("t.int32") == nil)
        #expect(file.bool("t.bool.true") == true)
        #expect(file.string("t.string") == "héllo\u{0} wörld 🙂")
        #expect(file.stringArray("a.string")?.count == 4)
        #expect(file.intArray("a.int8") == [-1, 127])
        #expect(file.intArray("a.uint64") == nil)
        #expect(file.intArray("a.float32") == nil)
        #expect(file.floatArray("a.float32") == [0.25, -0.0, .infinity])
        #expect(file.floatArray("a.float64") == [Float(Double.pi)])
    }

    @Test func nanBitsArePreserved() throws {
        let nan = Float(bitPattern: 0x7FC0_1234)
        let writer = GGUFWriter(metadata: [GGUFKeyValue("nan", .float32(nan)),
                                           GGUFKeyValue("nans", .float64Array([Double(bitPattern: 0xFFF8_0000_0000_0001)]))])
        let bytes = try writer.serialized()
        let file = try GGUFFile(bytes: bytes)
        guard case let .float32(read) = file["nan"] else { Issue.record("not a float32"); return }
        #expect(read.bitPattern == 0x7FC0_1234)
        #expect(try GGUFWriter(copying: file).serialized() == bytes)
    }

    @Test func readsVersion2() throws {
        let v3 = try Self.sampleWriter(version: 3).serialized()
        let v2 = try Self.sampleWriter(version: 2).serialized()
        #expect(v2[4] == 2 && v3[4] == 3)
        #expect(v2[5...] == v3[5...])  // the layouts are identical apart from the version
        let file = try GGUFFile(bytes: v2)
        #expect(file.version == 2)
        #expect(file.metadata == Self.everyType)
        #expect(try GGUFWriter(copying: file).serialized() == v2)
    }

    @Test func emptyFileHasOnlyHeader() throws {
        let bytes = try GGUFWriter().serialized()
        #expect(bytes.count == 32)  // 24 header bytes padded to 32
        let file = try GGUFFile(bytes: bytes)
        #expect(file.metadata.isEmpty && file.tensors.isEmpty && file.dataOffset == 32)
        // A header with no padding after it (no tensors) is accepted too.
        #expect(try GGUFFile(bytes: bytes.prefix(24)).dataOffset == 32)
    }

    @Test func writesAtomicallyToDisk() throws {
        try GGUFTestSupport.withTemporaryFolder { folder in
            let out = folder.appendingPathComponent("model.gguf").path
            let writer = Self.sampleWriter()
            try writer.write(to: out)
            let file = try GGUFFile(path: out)
            #expect(Array(file.bytes) == (try writer.serialized()))
            // Overwrite in place while the old file is mapped.
            var edited = GGUFWriter(copying: file)
            edited.setValue(.string("edited"), forKey: "general.architecture")
            edited.removeValue(forKey: "t.uint8")
            try edited.write(to: out)
            let again = try GGUFFile(path: out)
            #expect(again.architecture == "edited")
            #expect(again.metadata.first?.key == "general.architecture" && again["t.uint8"] == nil)
            #expect(again.tensors.map(\.name) == file.tensors.map(\.name))
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["model.gguf"])

            // Invalid contents: nothing is created, no temporary file is left behind.
            var bad = writer
            bad.addTensor(name: "f32.matrix", dims: [1], type: .f32, data: .bytes([0, 0, 0, 0]))
            let other = folder.appendingPathComponent("bad.gguf").path
            #expect(throws: GGUFError.duplicateTensorName(path: other, tensor: "f32.matrix")) { try bad.write(to: other) }
            // A closure that throws while writing: the temporary file is removed.
            struct Failure: Error {}
            var failing = GGUFWriter()
            failing.addTensor(name: "x", dims: [4], type: .f32, data: .fill { _ in throw Failure() })
            #expect(throws: Failure.self) { try failing.write(to: other) }
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["model.gguf"])
            // A folder that does not exist.
            #expect(throws: GGUFError.self) { try writer.write(to: folder.path + "/missing/x.gguf") }
        }
    }

    @Test func writerRejectsInvalidContents() throws {
        let path = "<memory>"
        func rejects(_ expected: GGUFError, _ writer: GGUFWriter, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(throws: expected, sourceLocation: sourceLocation) { try writer.serialized() }
        }
        rejects(.unsupportedVersion(path: path, version: 1), GGUFWriter(version: 1))
        rejects(.duplicateKey(path: path, key: "k"),
                GGUFWriter(metadata: [GGUFKeyValue("k", .bool(true)), GGUFKeyValue("k", .bool(false))]))
        rejects(.badAlignment(path: path, detail: "is 48"), GGUFWriter(metadata: [GGUFKeyValue("general.alignment", .uint32(48))]))
        rejects(.badAlignment(path: path, detail: "has type uint64"),
                GGUFWriter(metadata: [GGUFKeyValue("general.alignment", .uint64(32))]))
        rejects(.invalidValue(path: path, key: "n", reason: "an .array element is a uint8, but must be an array"),
                GGUFWriter(metadata: [GGUFKeyValue("n", .array([.uint8(1)]))]))
        var deep = GGUFValue.int8Array([])
        for _ in 1..<GGUFFile.maxArrayNesting { deep = .array([deep]) }
        #expect(throws: Never.self) { try GGUFWriter(metadata: [GGUFKeyValue("d", deep)]).serialized() }
        rejects(.nestingTooDeep(path: path, key: "d", limit: GGUFFile.maxArrayNesting),
                GGUFWriter(metadata: [GGUFKeyValue("d", .array([deep]))]))

        func tensor(_ dims: [Int], _ type: DType, _ data: GGUFWriter.TensorData) -> GGUFWriter {
            GGUFWriter(tensors: [GGUFWriter.TensorEntry(name: "t", dims: dims, type: type, data: data)])
        }
        rejects(.invalidTensor(path: path, tensor: "t", reason: "4 bytes of data given, F32 [2] needs 8"),
                tensor([2], .f32, .bytes([0, 0, 0, 0])))
        rejects(.invalidTensor(path: path, tensor: "t", reason: "first dimension 16 is not a multiple of the block size 32 of Q4_0"),
                tensor([16, 2], .q4_0, .fill { _ in }))
        rejects(.invalidTensor(path: path, tensor: "t", reason: "dimension 1 is 0, must be at least 1"),
                tensor([32, 0], .f32, .fill { _ in }))
        rejects(.invalidTensor(path: path, tensor: "t", reason: "5 dimensions, at most 4 are supported"),
                tensor([1, 1, 1, 1, 1], .f32, .fill { _ in }))
        rejects(.invalidTensor(path: path, tensor: "t", reason: "type U8 has no GGML type id"),
                tensor([1], .u8, .fill { _ in }))
        rejects(.invalidTensor(path: path, tensor: "t", reason: "dimensions [4294967296, 4294967296] overflow the element count"),
                tensor([1 << 32, 1 << 32], .f32, .fill { _ in }))
    }

    @Test func errorDescriptionsAreOneLine() {
        let error = GGUFError.invalidTensor(path: "/x/y.gguf", tensor: "evil\nname\u{2028}", reason: "bad")
        #expect(error.description == "/x/y.gguf: tensor 'evil\\nname\\u{2028}': bad")
        let long = GGUFError.duplicateKey(path: "p", key: String(repeating: "k", count: 500))
        #expect(long.description.count < 130)
        #expect(GGUFError.unsupportedVersion(path: "p", version: 0x0300_0000).description.contains("big-endian"))
    }
}
