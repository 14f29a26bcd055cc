#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Testing
@testable import Formats
import Tensors

/// Sharded folders, single files and the shard index.
@Suite struct SafeTensorsModelTests {
    typealias F = SafeTensorsFixtures
    static let shard1 = "model-00001-of-00002.safetensors"
    static let shard2 = "model-00002-of-00002.safetensors"

    /// Writes two shards (a, b | c) and an index over them into a new folder.
    static func writeShardedModel(index entries: [SafeTensorsIndex.Entry]? = nil) throws -> String {
        let folder = try F.temporaryFolder()
        var w1 = SafeTensorsWriter(metadata: ["format": "pt"])
        try w1.add("b.weight", shape: [2, 2], floats: [1, 2, 3, 4])
        try w1.add("a.weight", shape: [3], floats: [5, 6, 7], as: .bf16)
        try w1.write(to: folder + "/" + shard1)
        var w2 = SafeTensorsWriter(metadata: ["format": "pt"])
        try w2.add("c.bias", dtype: .i8, shape: [2], bytes: [0xFF, 3])
        try w2.write(to: folder + "/" + shard2)
        let index = SafeTensorsIndex(weightMap: entries ?? [
            .init(tensor: "a.weight", shard: shard1), .init(tensor: "b.weight", shard: shard1),
            .init(tensor: "c.bias", shard: shard2),
        ], totalSize: 16 + 6 + 2)
        try index.write(to: folder + "/" + SafeTensorsIndex.fileName)
        return folder
    }

    @Test func shardedFolder() throws {
        let folder = try Self.writeShardedModel()
        defer { F.remove(folder) }
        let model = try SafeTensorsModel(path: folder)
        #expect(model.index?.totalSize == 24)
        #expect(model.files.map(\.path) == [folder + "/" + Self.shard1, folder + "/" + Self.shard2])
        #expect(model.tensorNames == ["a.weight", "b.weight", "c.bias"])
        #expect(model.tensors.map(\.dtype) == [.bf16, .f32, .i8])
        #expect(try model.floats("a.weight") == [5, 6, 7])
        #expect(try model.tensor("b.weight") == Tensor(shape: [2, 2], data: [1, 2, 3, 4]))
        #expect(try model.floats("c.bias") == [-1, 3])
        #expect(try model.file(containing: "c.bias").path.hasSuffix(Self.shard2))
        #expect(try model.data(for: "c.bias").count == 2)
        #expect(model["zzz"] == nil && !model.contains("zzz"))
        #expect(throws: SafeTensorsError.tensorNotFound(path: folder, tensor: "zzz")) { try model.info("zzz") }
        // Opening the index file directly is the same model.
        let direct = try SafeTensorsModel(path: folder + "/" + SafeTensorsIndex.fileName)
        #expect(direct.tensorNames == model.tensorNames)
    }

    @Test func indexMatchesTransformersFormatting() throws {
        // json.dumps(index, indent=2, sort_keys=True) + "\n", from Python.
        let index = SafeTensorsIndex(weightMap: [
            .init(tensor: "z.w", shard: "model-00002-of-00002.safetensors"),
            .init(tensor: "a.w", shard: "model-00001-of-00002.safetensors"),
            .init(tensor: "é", shard: "model-00001-of-00002.safetensors"),
        ], totalSize: 28)
        let expected = "{\n  \"metadata\": {\n    \"total_size\": 28\n  },\n  \"weight_map\": {\n    \"a.w\": \"model-00001-of-00002.safetensors\",\n    \"z.w\": \"model-00002-of-00002.safetensors\",\n    \"\\u00e9\": \"model-00001-of-00002.safetensors\"\n  }\n}\n"
        #expect(String(decoding: index.jsonBytes(), as: UTF8.self) == expected)
        let back = try index.jsonBytes().withUnsafeBytes { try SafeTensorsIndex(parsing: $0, path: "i.json") }
        #expect(back.totalSize == 28)
        #expect(back.weightMap.map(\.tensor) == ["a.w", "z.w", "é"])
        #expect(back.shards == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"])
    }

    @Test func tensorMissingFromItsShard() throws {
        let folder = try Self.writeShardedModel(index: [
            .init(tensor: "a.weight", shard: Self.shard1), .init(tensor: "c.bias", shard: Self.shard1),
        ])
        defer { F.remove(folder) }
        #expect(throws: SafeTensorsError.tensorNotInShard(index: folder + "/" + SafeTensorsIndex.fileName,
                                                          tensor: "c.bias", shard: Self.shard1)) {
            try SafeTensorsModel(path: folder)
        }
    }

    @Test func shardMissing() throws {
        let folder = try Self.writeShardedModel(index: [
            .init(tensor: "a.weight", shard: Self.shard1), .init(tensor: "d", shard: "model-00003-of-00003.safetensors"),
        ])
        defer { F.remove(folder) }
        do {
            _ = try SafeTensorsModel(path: folder)
            Issue.record("opened a model with a missing shard")
        } catch let error as SafeTensorsError {
            #expect(error == .missingShard(index: folder + "/" + SafeTensorsIndex.fileName, shard: "model-00003-of-00003.safetensors"))
            #expect(error.description.contains("model-00003-of-00003.safetensors\" does not exist"))
        }
    }

    @Test func hostileIndexes() throws {
        let cases: [(String, String)] = [
            ("not json", "{"),
            ("not an object", "[]"),
            ("no weight_map", #"{"metadata":{}}"#),
            ("weight_map not an object", #"{"weight_map":[]}"#),
            ("non-string shard", #"{"weight_map":{"a":1}}"#),
            ("path traversal", #"{"weight_map":{"a":"../../etc/passwd"}}"#),
            ("absolute path", #"{"weight_map":{"a":"/etc/passwd"}}"#),
            ("dot dot", #"{"weight_map":{"a":".."}}"#),
            ("empty shard", #"{"weight_map":{"a":""}}"#),
            ("duplicate tensor", #"{"weight_map":{"a":"x.safetensors","a":"y.safetensors"}}"#),
            ("metadata not an object", #"{"metadata":3,"weight_map":{}}"#),
        ]
        for (what, json) in cases {
            do {
                _ = try Array(json.utf8).withUnsafeBytes { try SafeTensorsIndex(parsing: $0, path: "idx.json") }
                Issue.record("\(what): accepted")
            } catch let error as SafeTensorsError {
                #expect(F.caseName(error) == "invalidIndex", "\(what): \(error)")
                #expect(error.description.hasPrefix("idx.json: invalid shard index: ") && !error.description.contains("\n"))
            }
        }
    }

    @Test func foldersWithoutIndex() throws {
        let folder = try F.temporaryFolder()
        defer { F.remove(folder) }
        #expect(throws: SafeTensorsError.noSafeTensors(path: folder)) { try SafeTensorsModel(path: folder) }
        var w = SafeTensorsWriter()
        try w.add("x", dtype: .u8, shape: [1], bytes: [1])
        try w.write(to: folder + "/b.safetensors")
        var w2 = SafeTensorsWriter()
        try w2.add("y", dtype: .u8, shape: [1], bytes: [2])
        try w2.write(to: folder + "/a.safetensors")
        // No index and no model.safetensors: every .safetensors file, by name.
        let union = try SafeTensorsModel(path: folder)
        #expect(union.tensorNames == ["y", "x"])
        #expect(try union.floats("x") == [1])
        // A tensor in two files is ambiguous.
        try w.write(to: folder + "/c.safetensors")
        #expect(throws: SafeTensorsError.duplicateName(path: folder + "/c.safetensors", tensor: "x")) {
            try SafeTensorsModel(path: folder)
        }
        // model.safetensors wins over the others.
        try w2.write(to: folder + "/model.safetensors")
        #expect(try SafeTensorsModel(path: folder).tensorNames == ["y"])
        #expect(throws: SafeTensorsError.self) { try SafeTensorsModel(path: folder + "/nothing-here") }
    }

    @Test func singleRealFile() throws {
        let folder = try F.miniLMFolder()
        let model = try SafeTensorsModel(path: folder)
        #expect(model.index == nil)
        #expect(model.files.count == 1)
        #expect(model.tensorNames.count == 104)
        #expect(model["embeddings.word_embeddings.weight"]?.shape == [30522, 384])
        let byFile = try SafeTensorsModel(path: folder + "/model.safetensors")
        #expect(byFile.tensorNames == model.tensorNames)
    }
}
