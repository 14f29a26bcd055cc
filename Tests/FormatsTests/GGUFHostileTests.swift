import Foundation
import Testing
import Tensors
@testable import Formats

/// Truncated, corrupt and hostile files: each must throw a `GGUFError` with a one-line
/// message, never crash, hang or allocate what a count claims.
@Suite struct GGUFHostileTests {
    /// Every prefix of the real file's first 4 KiB, a stride through the rest of the
    /// metadata and tensor infos, each tensor info's boundaries, and the file less its
    /// last byte.
    @Test func truncatedRealFile() throws {
        let file = try GGUFTestSupport.smolLM2()
        let all = file.bytes
        var lengths = Set(0..<4096)
        lengths.formUnion(stride(from: 4096, to: file.dataOffset + 64, by: 6007))
        let infoEnd = file.dataOffset - 32 + 1  // somewhere in the padding before the data
        lengths.formUnion((infoEnd - 64)...(file.dataOffset + 1))
        lengths.insert(file.fileSize - 1)
        lengths.insert(file.fileSize - file.tensors.last!.byteCount)
        var kinds: [String: Int] = [:]
        for n in lengths.sorted() {
            do {
                _ = try GGUFFile(bytes: all[0..<n], path: "prefix-\(n)")
                Issue.record("a prefix of \(n) bytes parsed without error")
            } catch let error as GGUFError {
                let text = error.description
                #expect(text.hasPrefix("prefix-\(n): ") && !text.contains("\n"), "\(text)")
                kinds[Self.caseName(error), default: 0] += 1
            }
        }
        // The spread reached every stage of the file.
        #expect(Set(kinds.keys) == ["badMagic", "truncated", "countTooLarge", "invalidTensor"], "\(kinds)")
        #expect(kinds["truncated", default: 0] > 500 && kinds["countTooLarge", default: 0] > 500, "\(kinds)")
    }

    /// The case of `error`, e.g. `truncated`.
    static func caseName(_ error: GGUFError) -> String {
        Mirror(reflecting: error).children.first?.label ?? "?"
    }

    @Test func magicAndVersion() {
        GGUFTestSupport.expectError([], "empty")
        GGUFTestSupport.expectError(Array("GGU".utf8), "short-magic")
        GGUFTestSupport.expectError(Array("GGML\u{3}\0\0\0".utf8), "ggml")
        GGUFTestSupport.expectError(Array("GGUF".utf8) + [3, 0], "short-version")
        for version: UInt32 in [0, 1, 4, 0x0300_0000, .max] {
            let e = GGUFTestSupport.expectError(RawGGUF.header(version: version, tensors: 0, kvs: 0).bytes, "version-\(version)")
            #expect(e == .unsupportedVersion(path: "crafted/version-\(version).gguf", version: version))
        }
        var short = RawGGUF.header(tensors: 0, kvs: 0)
        short.bytes.removeLast()
        #expect(GGUFTestSupport.expectError(short.bytes, "short-counts")
                == .truncated(path: "crafted/short-counts.gguf", offset: 16, needed: 8, context: "the metadata key/value count"))
    }

    @Test func absurdCounts() {
        for count: UInt64 in [.max, 1 << 63, 1 << 40, 2] {
            let t = GGUFTestSupport.expectError(RawGGUF.header(tensors: count, kvs: 0).bytes, "tensors-\(count)")
            #expect(t == .countTooLarge(path: "crafted/tensors-\(count).gguf", offset: 8, count: count, context: "tensor count"))
            let k = GGUFTestSupport.expectError(RawGGUF.header(tensors: 0, kvs: count).bytes, "kvs-\(count)")
            #expect(k == .countTooLarge(path: "crafted/kvs-\(count).gguf", offset: 16, count: count,
                                        context: "metadata key/value count"))
        }
        // Arrays: the element count must fit in what is left, at the element type's size.
        let cases: [(GGUFValueType, UInt64, Int)] = [(.uint8, .max, 0), (.uint8, 5, 4), (.uint64, 2, 15),
                                                      (.string, 3, 23), (.array, 2, 23), (.float32, 1 << 62, 100)]
        for (type, count, spare) in cases {
            var r = RawGGUF.header(tensors: 0, kvs: 1)
            r.key("a", .array)
            r.u32(type.rawValue)
            r.u64(count)
            r.raw([UInt8](repeating: 0, count: spare))
            let e = GGUFTestSupport.expectError(r.bytes, "array-\(type)-\(count)")
            guard case .countTooLarge = e else { Issue.record("array-\(type)-\(count): \(String(describing: e))"); continue }
        }
    }

    @Test func stringsPastTheEnd() {
        for length: UInt64 in [.max, 1 << 63, 100, 31] {  // 30 bytes follow the length
            var key = RawGGUF.header(tensors: 0, kvs: 1)
            key.u64(length)
            key.raw([UInt8](repeating: 65, count: 30))
            guard case .truncated = GGUFTestSupport.expectError(key.bytes, "key-length-\(length)") else {
                Issue.record("key-length-\(length)"); continue
            }
            var value = RawGGUF.header(tensors: 0, kvs: 1)
            value.key("s", .string)
            value.u64(length)
            value.raw([UInt8](repeating: 65, count: 30))
            guard case .truncated = GGUFTestSupport.expectError(value.bytes, "value-length-\(length)") else {
                Issue.record("value-length-\(length)"); continue
            }
            var name = RawGGUF.header(tensors: 1, kvs: 0)
            name.u64(length)
            name.raw([UInt8](repeating: 65, count: 30))
            guard case .truncated = GGUFTestSupport.expectError(name.bytes, "name-length-\(length)") else {
                Issue.record("name-length-\(length)"); continue
            }
        }
    }

    @Test func invalidUTF8() {
        let bad: [[UInt8]] = [[0xFF], [0xC3], [0xED, 0xA0, 0x80] /* surrogate */, [0xC0, 0xAF] /* overlong */]
        for (i, b) in bad.enumerated() {
            var key = RawGGUF.header(tensors: 0, kvs: 1)
            key.str(b)
            key.u32(GGUFValueType.uint8.rawValue)
            key.u8(0)
            #expect(GGUFTestSupport.expectError(key.bytes, "key-\(i)")
                    == .invalidUTF8(path: "crafted/key-\(i).gguf", offset: 32, context: "the key of metadata entry 0"))
            var value = RawGGUF.header(tensors: 0, kvs: 1)
            value.key("s", .string)
            value.str(b)
            guard case .invalidUTF8 = GGUFTestSupport.expectError(value.bytes, "value-\(i)") else { Issue.record("value-\(i)"); continue }
            var element = RawGGUF.header(tensors: 0, kvs: 1)
            element.key("a", .array)
            element.u32(GGUFValueType.string.rawValue)
            element.u64(2)
            element.str("ok")
            element.str(b)
            guard case .invalidUTF8 = GGUFTestSupport.expectError(element.bytes, "element-\(i)") else { Issue.record("element-\(i)"); continue }
            var name = RawGGUF.header(tensors: 1, kvs: 0)
            name.str(b)
            name.raw([UInt8](repeating: 0, count: 24))
            guard case .invalidUTF8 = GGUFTestSupport.expectError(name.bytes, "name-\(i)") else { Issue.record("name-\(i)"); continue }
        }
    }

    @Test func badValues() {
        var type = RawGGUF.header(tensors: 0, kvs: 1)
        type.str("k")
        type.u32(13)
        type.u64(0)
        #expect(GGUFTestSupport.expectError(type.bytes, "type") == .unknownValueType(path: "crafted/type.gguf", key: "k", typeID: 13))
        var element = RawGGUF.header(tensors: 0, kvs: 1)
        element.key("k", .array)
        element.u32(0xFFFF_FFFF)
        element.u64(0)
        #expect(GGUFTestSupport.expectError(element.bytes, "element")
                == .unknownValueType(path: "crafted/element.gguf", key: "k", typeID: 0xFFFF_FFFF))
        var bool = RawGGUF.header(tensors: 0, kvs: 1)
        bool.key("b", .bool)
        bool.u8(2)
        #expect(GGUFTestSupport.expectError(bool.bytes, "bool") == .invalidBool(path: "crafted/bool.gguf", key: "b", byte: 2))
        var bools = RawGGUF.header(tensors: 0, kvs: 1)
        bools.key("b", .array)
        bools.u32(GGUFValueType.bool.rawValue)
        bools.u64(3)
        bools.raw([1, 0, 0xFF])
        #expect(GGUFTestSupport.expectError(bools.bytes, "bools") == .invalidBool(path: "crafted/bools.gguf", key: "b", byte: 0xFF))
        var duplicate = RawGGUF.header(tensors: 0, kvs: 2)
        duplicate.key("k", .uint8)
        duplicate.u8(1)
        duplicate.key("k", .int8)
        duplicate.u8(1)
        #expect(GGUFTestSupport.expectError(duplicate.bytes, "duplicate") == .duplicateKey(path: "crafted/duplicate.gguf", key: "k"))
        var truncatedValue = RawGGUF.header(tensors: 0, kvs: 1)
        truncatedValue.key("k", .float64)
        truncatedValue.raw([1, 2, 3])
        guard case .truncated = GGUFTestSupport.expectError(truncatedValue.bytes, "float64") else { Issue.record("float64"); return }
    }

    @Test func nestingLimit() throws {
        func nested(_ levels: Int) -> [UInt8] {
            var r = RawGGUF.header(tensors: 0, kvs: 1)
            r.key("n", .array)
            for _ in 1..<levels {
                r.u32(GGUFValueType.array.rawValue)
                r.u64(1)
            }
            r.u32(GGUFValueType.uint8.rawValue)
            r.u64(0)
            return r.bytes
        }
        let ok = try GGUFFile(bytes: nested(GGUFFile.maxArrayNesting))
        #expect(ok["n"]?.type == .array)
        for levels in [GGUFFile.maxArrayNesting + 1, 1000] {
            #expect(GGUFTestSupport.expectError(nested(levels), "nested-\(levels)")
                    == .nestingTooDeep(path: "crafted/nested-\(levels).gguf", key: "n", limit: GGUFFile.maxArrayNesting))
        }
    }

    @Test func badAlignment() {
        func file(_ type: GGUFValueType, _ value: [UInt8]) -> [UInt8] {
            var r = RawGGUF.header(tensors: 0, kvs: 1)
            r.key("general.alignment", type)
            r.raw(value)
            return r.bytes
        }
        for a: UInt32 in [0, 3, 48, 0xFFFF_FFFF] {
            var le: [UInt8] = []
            le.appendLittleEndian(a)
            #expect(GGUFTestSupport.expectError(file(.uint32, le), "align-\(a)")
                    == .badAlignment(path: "crafted/align-\(a).gguf", detail: "is \(a)"))
        }
        #expect(GGUFTestSupport.expectError(file(.uint64, [32, 0, 0, 0, 0, 0, 0, 0]), "align-u64")
                == .badAlignment(path: "crafted/align-u64.gguf", detail: "has type uint64"))
        #expect(GGUFTestSupport.expectError(file(.string, [0, 0, 0, 0, 0, 0, 0, 0]), "align-string")
                == .badAlignment(path: "crafted/align-string.gguf", detail: "has type string"))
    }

    /// One tensor info (after an optional alignment entry) and `dataBytes` of data.
    static func oneTensor(dims: [UInt64], type: UInt32 = 0, offset: UInt64 = 0, dataBytes: Int = 64,
                          name: String = "t") -> [UInt8] {
        var r = RawGGUF.header(tensors: 1, kvs: 0)
        r.tensor(name, dims: dims, type: type, offset: offset)
        r.data(dataBytes)
        return r.bytes
    }

    @Test func badTensorInfos() throws {
        func reason(_ bytes: [UInt8], _ label: String) -> String? {
            guard case let .invalidTensor(_, _, reason) = GGUFTestSupport.expectError(bytes, label) else { return nil }
            return reason
        }
        #expect(try GGUFFile(bytes: Self.oneTensor(dims: [16])).tensors.first?.byteCount == 64)
        #expect(reason(Self.oneTensor(dims: [1, 1, 1, 1, 1]), "5-dims") == "5 dimensions, at most 4 are supported")
        #expect(reason(Self.oneTensor(dims: [UInt64](repeating: 1, count: 1000)), "1000-dims")
                == "1000 dimensions, at most 4 are supported")
        var hugeDimCount = RawGGUF.header(tensors: 1, kvs: 0)
        hugeDimCount.str("t")
        hugeDimCount.u32(.max)
        hugeDimCount.raw([UInt8](repeating: 0, count: 40))
        #expect(reason(hugeDimCount.bytes, "max-dims") == "4294967295 dimensions, at most 4 are supported")
        #expect(reason(Self.oneTensor(dims: [16, 0]), "zero-dim") == "dimension 1 is 0, must be at least 1")
        #expect(reason(Self.oneTensor(dims: [1 << 63]), "dim-2^63") == "dimension 0 is 9223372036854775808, too large")
        #expect(reason(Self.oneTensor(dims: [1 << 32, 1 << 32]), "overflow")
                == "dimensions [4294967296, 4294967296] overflow the element count")
        #expect(reason(Self.oneTensor(dims: [1 << 31, 1 << 31, 2]), "overflow-3")
                == "dimensions [2147483648, 2147483648, 2] overflow the element count")
        #expect(reason(Self.oneTensor(dims: [1 << 61], type: 0), "bytes-overflow")
                == "dimensions [2305843009213693952] of F32 overflow the byte count")
        #expect(reason(Self.oneTensor(dims: [48, 2], type: 2), "block")
                == "first dimension 48 is not a multiple of the block size 32 of Q4_0")
        #expect(reason(Self.oneTensor(dims: [], type: 2), "scalar-block")
                == "first dimension 1 is not a multiple of the block size 32 of Q4_0")
        #expect(reason(Self.oneTensor(dims: [16], offset: 16), "misaligned")
                == "data offset 16 is not a multiple of the alignment 32")
        #expect(reason(Self.oneTensor(dims: [16], offset: 1 << 63), "offset-2^63")?.contains("run past the end") == true)
        #expect(reason(Self.oneTensor(dims: [16], offset: 64, dataBytes: 64), "offset-past")?.contains("run past the end") == true)
        #expect(reason(Self.oneTensor(dims: [17], dataBytes: 64), "size-past")?.contains("run past the end") == true)
        #expect(reason(Self.oneTensor(dims: [1 << 40]), "huge")?.contains("run past the end") == true)
        for id: UInt32 in [4, 5, 31, 40, .max] {
            #expect(GGUFTestSupport.expectError(Self.oneTensor(dims: [32], type: id), "type-\(id)")
                    == .unknownTensorType(path: "crafted/type-\(id).gguf", tensor: "t", typeID: id))
        }
        var truncatedDims = RawGGUF.header(tensors: 1, kvs: 0)
        truncatedDims.str("t")
        truncatedDims.u32(3)
        truncatedDims.u64(4)
        truncatedDims.raw([UInt8](repeating: 0, count: 10))
        guard case .truncated = GGUFTestSupport.expectError(truncatedDims.bytes, "dims-truncated") else {
            Issue.record("dims-truncated"); return
        }
    }

    @Test func duplicateAndOverlappingTensors() throws {
        var duplicate = RawGGUF.header(tensors: 2, kvs: 0)
        duplicate.tensor("t", dims: [8], type: 0, offset: 0)
        duplicate.tensor("t", dims: [8], type: 0, offset: 32)
        duplicate.data(64)
        #expect(GGUFTestSupport.expectError(duplicate.bytes, "duplicate") == .duplicateTensorName(path: "crafted/duplicate.gguf", tensor: "t"))

        var overlap = RawGGUF.header(tensors: 2, kvs: 0)
        overlap.tensor("a", dims: [16], type: 0, offset: 32)
        overlap.tensor("b", dims: [8], type: 0, offset: 64)
        overlap.data(128)
        #expect(GGUFTestSupport.expectError(overlap.bytes, "overlap") == .overlappingTensors(path: "crafted/overlap.gguf", first: "a", second: "b"))

        var same = RawGGUF.header(tensors: 2, kvs: 0)
        same.tensor("a", dims: [1], type: 0, offset: 0)
        same.tensor("b", dims: [1], type: 0, offset: 0)
        same.data(32)
        #expect(GGUFTestSupport.expectError(same.bytes, "same") == .overlappingTensors(path: "crafted/same.gguf", first: "a", second: "b"))

        // Out of order but disjoint, with a gap: accepted, and the writer lays it out canonically.
        var reordered = RawGGUF.header(tensors: 2, kvs: 0)
        reordered.tensor("a", dims: [8], type: 0, offset: 96)
        reordered.tensor("b", dims: [8], type: 0, offset: 0)
        reordered.data(128)
        let file = try GGUFFile(bytes: reordered.bytes)
        #expect(file.tensors.map(\.offset) == [96, 0])
        let rewritten = try GGUFFile(bytes: try GGUFWriter(copying: file).serialized())
        #expect(rewritten.tensors.map(\.offset) == [0, 32])
    }

    @Test func openingMissingOrOddPaths() throws {
        #expect(throws: GGUFError.self) { try GGUFFile(path: "/nonexistent/model.gguf") }
        do {
            _ = try GGUFFile(path: "/nonexistent/model.gguf")
        } catch let error as GGUFError {
            #expect(error.description.hasPrefix("/nonexistent/model.gguf: cannot open: "))
        }
        #expect(throws: GGUFError.self) { try GGUFFile(path: "/tmp") }
        try GGUFTestSupport.withTemporaryFolder { folder in
            let empty = folder.appendingPathComponent("empty.gguf").path
            #expect(FileManager.default.createFile(atPath: empty, contents: Data()))
            #expect(throws: GGUFError.badMagic(path: empty, found: [])) { try GGUFFile(path: empty) }
        }
    }
}
