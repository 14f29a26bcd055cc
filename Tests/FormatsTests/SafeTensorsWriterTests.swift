#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Testing
@testable import Formats
import Tensors

/// Writing: byte-identical round trips and bytes equal to the reference library's.
@Suite struct SafeTensorsWriterTests {
    typealias F = SafeTensorsFixtures

    /// The reference file: Python `safetensors.serialize` (0.8.0) of these tensors, given as
    /// a dict in this order, with `metadata={"format": "pt"}`. Tensor k's byte j is
    /// `(k*31 + j*7) % 256` (BOOL: `j % 2`).
    static let referenceSpecs: [(String, DType, [Int])] = [
        ("layers.0.w", .f32, [2, 3]), ("b", .bf16, [4]), ("a\"q\\", .f16, [3]), ("é/ü", .f64, [1]),
        ("Z", .i64, []), ("i32", .i32, [2]), ("i16", .i16, [2]), ("i8", .i8, [5]), ("u8", .u8, [3]),
        ("u16", .u16, [1]), ("u32", .u32, [2]), ("u64", .u64, [1]), ("mask", .bool, [4]),
        ("e4", .f8_e4m3, [2, 2]), ("e5", .f8_e5m2, [3]), ("empty", .f32, [0, 4]), ("A", .f32, [1]),
    ]
    /// What the reference wrote: its header JSON (1024 bytes with padding), total size, FNV-1a.
    static let referenceHeader = #"{"__metadata__":{"format":"pt"},"u64":{"dtype":"U64","shape":[1],"data_offsets":[0,8]},"Z":{"dtype":"I64","shape":[],"data_offsets":[8,16]},"é/ü":{"dtype":"F64","shape":[1],"data_offsets":[16,24]},"A":{"dtype":"F32","shape":[1],"data_offsets":[24,28]},"empty":{"dtype":"F32","shape":[0,4],"data_offsets":[28,28]},"layers.0.w":{"dtype":"F32","shape":[2,3],"data_offsets":[28,52]},"u32":{"dtype":"U32","shape":[2],"data_offsets":[52,60]},"i32":{"dtype":"I32","shape":[2],"data_offsets":[60,68]},"b":{"dtype":"BF16","shape":[4],"data_offsets":[68,76]},"a\"q\\":{"dtype":"F16","shape":[3],"data_offsets":[76,82]},"u16":{"dtype":"U16","shape":[1],"data_offsets":[82,84]},"i16":{"dtype":"I16","shape":[2],"data_offsets":[84,88]},"e4":{"dtype":"F8_E4M3","shape":[2,2],"data_offsets":[88,92]},"e5":{"dtype":"F8_E5M2","shape":[3],"data_offsets":[92,95]},"i8":{"dtype":"I8","shape":[5],"data_offsets":[95,100]},"u8":{"dtype":"U8","shape":[3],"data_offsets":[100,103]},"mask":{"dtype":"BOOL","shape":[4],"data_offsets":[103,107]}}   "#
    static let referenceSize = 1139
    static let referenceFNV: UInt64 = 0x2bc8_bae5_5238_3147

    static func addReferenceTensors(to writer: inout SafeTensorsWriter) throws {
        for (k, (name, dtype, shape)) in referenceSpecs.enumerated() {
            let n = shape.reduce(1, *) * dtype.bytesPerBlock
            let bytes = (0..<n).map { j in dtype == .bool ? UInt8(j % 2) : UInt8((k * 31 + j * 7) % 256) }
            try writer.add(name, dtype: dtype, shape: shape, bytes: bytes)
        }
    }

    /// The data section the writer will produce (by reading its own output back).
    static func referenceData(_ writer: SafeTensorsWriter) throws -> [UInt8] {
        let folder = try F.temporaryFolder()
        defer { F.remove(folder) }
        try writer.write(to: folder + "/x.safetensors")
        let all = try F.readBytes(folder + "/x.safetensors")
        return Array(all[writer.headerBytes().count...])
    }

    @Test func matchesReferenceLibraryBytes() throws {
        var writer = SafeTensorsWriter(metadata: ["format": "pt"], order: .reference)
        try Self.addReferenceTensors(to: &writer)
        let header = writer.headerBytes()
        #expect(header.count == 8 + 1024)
        #expect(header.prefix(8) == [0, 4, 0, 0, 0, 0, 0, 0])
        #expect(String(decoding: header.dropFirst(8), as: UTF8.self) == Self.referenceHeader)

        let folder = try F.temporaryFolder()
        defer { F.remove(folder) }
        try writer.write(to: folder + "/ref.safetensors")
        let written = try F.readBytes(folder + "/ref.safetensors")
        #expect(written.count == Self.referenceSize)
        #expect(written.withUnsafeBytes(F.fnv1a) == Self.referenceFNV)
    }

    @Test func realFileRoundTripIsByteIdentical() throws {
        let source = try F.miniLMFolder() + "/model.safetensors"
        let file = try SafeTensorsFile(path: source)
        let folder = try F.temporaryFolder()
        defer { F.remove(folder) }
        let copy = folder + "/model.safetensors"
        try SafeTensorsWriter.copy(file, to: copy)
        let a = try MappedFile(path: source), b = try MappedFile(path: copy)
        #expect(a.count == b.count)
        #expect(a.count == b.count && memcmp(a.bytes.baseAddress!, b.bytes.baseAddress!, a.count) == 0,
                "round trip of \(source) differs")
        // Re-adding tensors in reference order from the file gives the same bytes too.
        var writer = SafeTensorsWriter(metadata: file.metadata, order: .reference)
        for t in file.tensors.reversed() { try writer.add(t.name, from: file) }
        #expect(writer.headerBytes().elementsEqual(a.bytes.prefix(8 + file.headerLength)))
    }

    @Test func floatsStoredAsHalfTypes() throws {
        var writer = SafeTensorsWriter()
        try writer.add("f32", shape: [3], floats: [1, -2.5, 3e-3])
        try writer.add("f16", shape: [3], floats: [1, -2.5, 65520], as: .f16)
        try writer.add("bf16", shape: [1, 2], floats: [1, 1.00390625], as: .bf16)
        let file = try SafeTensorsFile(bytes: writer.headerBytes() + (try SafeTensorsWriterTests.referenceData(writer)))
        #expect(file.metadata == nil)
        #expect(file.names == ["f32", "f16", "bf16"])
        #expect(try file.floats("f32") == [1, -2.5, 3e-3])
        #expect(try file.floats("f16") == [1, -2.5, .infinity])  // 65520 rounds up past f16's max
        #expect(try file.floats("bf16") == [1, 1])  // ties to even
        #expect(throws: SafeTensorsError.self) { try writer.add("q", shape: [1], floats: [1], as: .q8_0) }
    }

    @Test func metadataEscapingAndOrder() throws {
        var meta = SafeTensorsMetadata()
        meta["z"] = "1"
        meta["a"] = "q\"\\\n\u{1}é/"
        meta["m"] = "x"
        meta["m"] = nil
        var writer = SafeTensorsWriter(metadata: meta)
        try writer.add("t", dtype: .u8, shape: [1], bytes: [42])
        let header = String(decoding: writer.headerBytes().dropFirst(8), as: UTF8.self)
        // serde_json's escaping, as observed from the reference library.
        #expect(header.hasPrefix(#"{"__metadata__":{"z":"1","a":"q\"\\\n\u0001é/"},"t":"#))
        let back = try SafeTensorsFile(bytes: writer.headerBytes() + [42])
        #expect(back.metadata == meta)
        #expect(back.metadata?.keys == ["z", "a"])
        // Empty metadata is written as valid JSON (the reference 0.8.0 writes `{},"__metadata__":{}}`).
        let empty = SafeTensorsWriter(metadata: SafeTensorsMetadata())
        #expect(String(decoding: empty.headerBytes().dropFirst(8), as: UTF8.self) == #"{"__metadata__":{}}     "#)
        #expect(try SafeTensorsFile(bytes: empty.headerBytes()).metadata == SafeTensorsMetadata())
    }

    @Test func rejectsInconsistentTensors() throws {
        var w = SafeTensorsWriter()
        try w.add("a", dtype: .f32, shape: [2], bytes: [UInt8](repeating: 0, count: 8))
        func kind(_ body: () throws -> Void) -> String {
            do { try body(); return "ok" } catch { return F.caseName(error) }
        }
        #expect(kind { try w.add("a", dtype: .f32, shape: [2], bytes: [UInt8](repeating: 0, count: 8)) } == "duplicateName")
        #expect(kind { try w.add("b", dtype: .f32, shape: [3], bytes: [UInt8](repeating: 0, count: 8)) } == "invalidTensor")
        #expect(kind { try w.add("c", dtype: .f32, shape: [-2], bytes: []) } == "invalidTensor")
        #expect(kind { try w.add("d", dtype: .q4_0, shape: [32], bytes: [UInt8](repeating: 0, count: 18)) } == "invalidTensor")
        #expect(kind { try w.add("__metadata__", dtype: .u8, shape: [], bytes: [0]) } == "invalidTensor")
        #expect(kind { try w.add("e", dtype: .u8, shape: [Int.max, 2], bytes: []) } == "invalidTensor")
        #expect(w.count == 1)
    }

    @Test func writeIsAtomic() throws {
        let folder = try F.temporaryFolder()
        defer { F.remove(folder) }
        var w = SafeTensorsWriter()
        try w.add("a", dtype: .u8, shape: [1], bytes: [1])
        let path = folder + "/out.safetensors"
        try w.write(to: path)
        var w2 = SafeTensorsWriter()
        try w2.add("b", dtype: .u8, shape: [2], bytes: [2, 3])
        try w2.write(to: path)  // replaces
        #expect(try SafeTensorsFile(path: path).names == ["b"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["out.safetensors"])
        do {
            try w.write(to: folder + "/no/such/folder/x.safetensors")
            Issue.record("write into a missing folder succeeded")
        } catch let error as SafeTensorsError {
            guard case .writeFailed = error else { Issue.record("unexpected \(error)"); return }
            #expect(error.description.contains("no/such/folder/x.safetensors"))
        }
    }
}
