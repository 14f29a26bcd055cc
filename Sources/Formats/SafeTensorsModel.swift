#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Tensors

/// A Hugging Face model's weights: one `.safetensors` file, or a folder of shards tied
/// together by `model.safetensors.index.json`. Gives the union of their tensors by name.
///
/// Opening a folder (first match wins):
/// 1. `model.safetensors.index.json`: every shard it names must exist and hold every
///    tensor mapped to it. Tensors a shard holds but the index does not list are left out,
///    as transformers does.
/// 2. `model.safetensors`.
/// 3. Every `*.safetensors` file, in name order; a name in two files is an error.
///
/// A path to a file opens that file (or, for a `.json` path, that index).
public final class SafeTensorsModel: @unchecked Sendable {
    /// The file or folder that was opened.
    public let path: String
    /// The shard index, when the model has one.
    public let index: SafeTensorsIndex?
    /// The files, in shard-name order.
    public let files: [SafeTensorsFile]
    /// Every tensor's name: index order for an indexed model, else file order then header order.
    public let tensorNames: [String]

    private let fileByName: [String: Int]

    /// Opens a model file or folder.
    /// - Throws: `SafeTensorsError`, naming the file concerned.
    public init(path: String) throws {
        self.path = path
        guard let isFolder = Self.isFolder(path) else {
            throw SafeTensorsError.cannotOpen(path: path, reason: "no such file or folder")
        }
        if !isFolder && !path.hasSuffix(".json") {
            let file = try SafeTensorsFile(path: path)
            (index, files, tensorNames) = (nil, [file], file.names)
            fileByName = Dictionary(uniqueKeysWithValues: file.names.map { ($0, 0) })
            return
        }
        let folder = isFolder ? path : Self.parent(of: path)
        let indexPath = isFolder ? folder + "/" + SafeTensorsIndex.fileName : path
        if !isFolder || FileManager.default.fileExists(atPath: indexPath) {
            let index = try SafeTensorsIndex(contentsOf: indexPath)
            self.index = index
            (files, tensorNames, fileByName) = try Self.openShards(of: index, at: indexPath, folder: folder)
            return
        }
        index = nil
        let names: [String]
        if FileManager.default.fileExists(atPath: folder + "/model.safetensors") {
            names = ["model.safetensors"]
        } else {
            do {
                names = try FileManager.default.contentsOfDirectory(atPath: folder)
                    .filter { $0.hasSuffix(".safetensors") && !$0.hasPrefix(".") }
                    .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            } catch {
                throw SafeTensorsError.cannotOpen(path: folder, reason: "cannot list the folder")
            }
            guard !names.isEmpty else { throw SafeTensorsError.noSafeTensors(path: folder) }
        }
        var files: [SafeTensorsFile] = [], order: [String] = [], byName: [String: Int] = [:]
        for name in names {
            let file = try SafeTensorsFile(path: folder + "/" + name)
            for t in file.names {
                guard byName.updateValue(files.count, forKey: t) == nil else {
                    throw SafeTensorsError.duplicateName(path: file.path, tensor: t)
                }
                order.append(t)
            }
            files.append(file)
        }
        (self.files, tensorNames, fileByName) = (files, order, byName)
    }

    /// True for a folder, false for anything else that exists, nil when nothing is there.
    private static func isFolder(_ path: String) -> Bool? {
        #if canImport(Darwin)
        var flag: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &flag) else { return nil }
        return flag.boolValue
        #else
        var flag = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &flag) else { return nil }
        return flag
        #endif
    }

    private static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    private static func openShards(of index: SafeTensorsIndex, at indexPath: String,
                                   folder: String) throws -> ([SafeTensorsFile], [String], [String: Int]) {
        let shardNames = index.shards
        var files: [SafeTensorsFile] = []
        var fileIndex: [String: Int] = [:]
        for shard in shardNames {
            let shardPath = folder + "/" + shard
            guard FileManager.default.fileExists(atPath: shardPath) else {
                throw SafeTensorsError.missingShard(index: indexPath, shard: shard)
            }
            fileIndex[shard] = files.count
            files.append(try SafeTensorsFile(path: shardPath))
        }
        var byName: [String: Int] = [:]
        for entry in index.weightMap {
            let i = fileIndex[entry.shard]!
            guard files[i].contains(entry.tensor) else {
                throw SafeTensorsError.tensorNotInShard(index: indexPath, tensor: entry.tensor, shard: entry.shard)
            }
            byName[entry.tensor] = i
        }
        return (files, index.weightMap.map(\.tensor), byName)
    }

    /// Every tensor, in `tensorNames` order.
    public var tensors: [SafeTensorInfo] { tensorNames.map { files[fileByName[$0]!][$0]! } }

    /// The tensor named `name`, or nil.
    public subscript(name: String) -> SafeTensorInfo? { fileByName[name].flatMap { files[$0][name] } }

    /// True when the model has a tensor named `name`.
    public func contains(_ name: String) -> Bool { fileByName[name] != nil }

    /// The file that holds tensor `name`.
    /// - Throws: `SafeTensorsError.tensorNotFound`.
    public func file(containing name: String) throws -> SafeTensorsFile {
        guard let i = fileByName[name] else { throw SafeTensorsError.tensorNotFound(path: path, tensor: name) }
        return files[i]
    }

    /// The tensor named `name`.
    /// - Throws: `SafeTensorsError.tensorNotFound`.
    public func info(_ name: String) throws -> SafeTensorInfo { try file(containing: name).info(name) }

    /// The raw bytes of tensor `name`, without copying; valid while this model is alive.
    /// - Throws: `SafeTensorsError.tensorNotFound`.
    public func data(for name: String) throws -> UnsafeRawBufferPointer { try file(containing: name).data(for: name) }

    /// Tensor `name` converted to f32; see `SafeTensorsFile.floats(_:)`.
    /// - Throws: `SafeTensorsError.tensorNotFound`.
    public func floats(_ name: String) throws -> [Float] { try file(containing: name).floats(name) }

    /// Tensor `name` as an f32 `Tensor`.
    /// - Throws: `SafeTensorsError.tensorNotFound`.
    public func tensor(_ name: String) throws -> Tensor { try file(containing: name).tensor(name) }
}

/// `model.safetensors.index.json`: which shard holds each tensor of a sharded model.
///
/// Written as transformers writes it (`json.dumps(index, indent=2, sort_keys=True)` plus
/// a newline), so an index we write matches one from `save_pretrained`.
public struct SafeTensorsIndex: Equatable, Sendable {
    /// The file name transformers uses.
    public static let fileName = "model.safetensors.index.json"
    /// Largest index file accepted (real ones are kilobytes to a few megabytes).
    public static let maxFileSize = 256 << 20

    /// One `"tensor": "shard file"` entry of `weight_map`.
    public struct Entry: Equatable, Sendable {
        /// The tensor's name.
        public var tensor: String
        /// The shard's file name, in the index's folder.
        public var shard: String
        /// An entry mapping `tensor` to `shard`.
        public init(tensor: String, shard: String) {
            self.tensor = tensor
            self.shard = shard
        }
    }

    /// The `weight_map` entries in document order.
    public var weightMap: [Entry]
    /// The `metadata` object's members (usually just `total_size`), in document order.
    public var metadata: [JSONMember]

    /// An index from its entries; `totalSize` becomes `metadata.total_size`.
    public init(weightMap: [Entry], totalSize: Int? = nil) {
        self.weightMap = weightMap
        self.metadata = totalSize.map { [JSONMember(key: "total_size", value: .number(String($0)))] } ?? []
    }

    /// `metadata.total_size`: the bytes of tensor data over all shards, when given.
    public var totalSize: Int? { metadata.first { $0.key == "total_size" }?.value.intValue }

    /// The distinct shard file names, sorted.
    public var shards: [String] { Set(weightMap.map(\.shard)).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) } }

    /// Reads and validates an index file.
    /// - Throws: `SafeTensorsError`.
    public init(contentsOf path: String) throws {
        let mapped: MappedFile
        do {
            mapped = try MappedFile(path: path)
        } catch let MappedFileError.cannotOpen(_, reason) {
            throw SafeTensorsError.cannotOpen(path: path, reason: reason)
        }
        guard mapped.count <= Self.maxFileSize else {
            throw SafeTensorsError.invalidIndex(path: path, reason: "\(mapped.count) bytes, more than the limit of \(Self.maxFileSize)")
        }
        try self.init(parsing: mapped.bytes, path: path)
    }

    /// Parses and validates index JSON; `path` is used in error messages.
    /// - Throws: `SafeTensorsError.invalidIndex`.
    public init(parsing bytes: UnsafeRawBufferPointer, path: String) throws {
        func fail(_ reason: String) -> SafeTensorsError { .invalidIndex(path: path, reason: reason) }
        let root: JSONValue
        do {
            root = try JSONValue.parse(bytes, maxDepth: 64)
        } catch {
            throw fail(error.description)
        }
        guard case .object = root else { throw fail("not a JSON object") }
        guard let map = root["weight_map"]?.objectValue else { throw fail("no weight_map object") }
        weightMap = try map.map { member in
            guard let shard = member.value.stringValue else {
                throw fail("weight_map value for \(JSONText.quoted(member.key)) is not a string")
            }
            // Shards live beside the index: refuse paths that could point anywhere else.
            guard !shard.isEmpty, shard != ".", shard != "..", !shard.contains("/"), !shard.contains("\\"),
                  !shard.unicodeScalars.contains("\0")
            else { throw fail("shard name \(JSONText.quoted(shard)) is not a file name in the index's folder") }
            return Entry(tensor: member.key, shard: shard)
        }
        switch root["metadata"] {
        case nil, .null?: metadata = []
        case .object(let members)?: metadata = members
        default: throw fail("metadata is not an object")
        }
    }

    /// The index as transformers writes it: 2-space indents, keys sorted, final newline.
    public func jsonBytes() -> [UInt8] {
        let root = JSONValue.object([
            JSONMember(key: "metadata", value: .object(metadata)),
            JSONMember(key: "weight_map", value: .object(weightMap.map { JSONMember(key: $0.tensor, value: .string($0.shard)) })),
        ])
        var out: [UInt8] = []
        Self.appendPretty(root, indent: 0, to: &out)
        out.append(0x0A)
        return out
    }

    /// Writes the index atomically (temporary file, then rename).
    /// - Throws: `SafeTensorsError.writeFailed`.
    public func write(to path: String) throws {
        let bytes = jsonBytes()
        try AtomicFile.write(to: path) { out in try bytes.withUnsafeBytes { try out.write($0) } }
    }

    private static func appendPretty(_ value: JSONValue, indent: Int, to out: inout [UInt8]) {
        func newline(_ n: Int) { out.append(0x0A); out += repeatElement(0x20, count: n) }
        switch value {
        case .null: out += Array("null".utf8)
        case .bool(let b): out += Array((b ? "true" : "false").utf8)
        case .number(let literal): out += Array(literal.utf8)
        case .string(let s): JSONText.appendPythonString(s, to: &out)
        case .array(let elements):
            guard !elements.isEmpty else { out += Array("[]".utf8); return }
            out.append(UInt8(ascii: "["))
            for (i, e) in elements.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                newline(indent + 2)
                appendPretty(e, indent: indent + 2, to: &out)
            }
            newline(indent)
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            guard !members.isEmpty else { out += Array("{}".utf8); return }
            out.append(UInt8(ascii: "{"))
            let sorted = members.sorted { $0.key.unicodeScalars.lexicographicallyPrecedes($1.key.unicodeScalars) }
            for (i, m) in sorted.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                newline(indent + 2)
                JSONText.appendPythonString(m.key, to: &out)
                out += Array(": ".utf8)
                appendPretty(m.value, indent: indent + 2, to: &out)
            }
            newline(indent)
            out.append(UInt8(ascii: "}"))
        }
    }
}
