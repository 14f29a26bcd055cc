import Foundation
import Tensors

/// An importance matrix: per linear layer (by its GGUF weight name), the sum over
/// calibration tokens of each input column's squared activation, and the token count.
/// `importance(for:)` is their ratio, the mean squared activation that weighted
/// quantization uses.
///
/// Reads and writes both forms llama.cpp uses:
/// - GGUF (`general.type = "imatrix"`): per layer an F32 tensor `NAME.in_sum2` of
///   `[columns]` sums and `NAME.counts` holding the token count, metadata
///   `imatrix.datasets`, `imatrix.chunk_count`, `imatrix.chunk_size`; layers sorted by name.
/// - the older `.dat`: little-endian `i32 entries`, then per entry `i32 nameLength, name,
///   i32 calls, i32 values, f32 values[] (= mean × calls)`, then `i32 chunks` and
///   `i32 length, dataset name`.
public struct ImportanceMatrix: Equatable, Sendable {
    /// One layer's statistics.
    public struct Entry: Equatable, Sendable {
        /// Σ x² per input column.
        public var sumSquares: [Float]
        /// Tokens accumulated.
        public var count: Float
        /// An entry with the given sums and count.
        public init(sumSquares: [Float], count: Float) {
            self.sumSquares = sumSquares
            self.count = count
        }
    }

    /// Entries by weight name (`blk.0.attn_q.weight`).
    public var entries: [String: Entry]
    /// Calibration files it was computed from.
    public var datasets: [String]
    /// Chunks of calibration text evaluated.
    public var chunkCount: Int
    /// Tokens per chunk.
    public var chunkSize: Int

    /// A matrix with the given contents.
    public init(entries: [String: Entry] = [:], datasets: [String] = [], chunkCount: Int = 0, chunkSize: Int = 512) {
        self.entries = entries
        self.datasets = datasets
        self.chunkCount = chunkCount
        self.chunkSize = chunkSize
    }

    /// Mean squared activation per column for `name`, if present.
    public func importance(for name: String) -> [Float]? {
        guard let e = entries[name], e.count > 0 else { return nil }
        return e.sumSquares.map { $0 / e.count }
    }

    /// All importance vectors by weight name.
    public var importances: [String: [Float]] {
        Dictionary(uniqueKeysWithValues: entries.keys.compactMap { k in importance(for: k).map { (k, $0) } })
    }

    /// File forms.
    public enum Format: String, Sendable, CaseIterable {
        /// GGUF (llama.cpp's current form).
        case gguf
        /// The legacy `.dat` form.
        case dat
    }

    /// Reads either form (GGUF recognised by its magic).
    public init(path: String) throws {
        let file = try MappedFile(path: path)
        if file.count >= 4, Array(file.bytes[0..<4]) == Array("GGUF".utf8) {
            try self.init(gguf: try GGUFFile(file: file))
        } else {
            try self.init(dat: file.bytes, path: path)
        }
    }

    /// Reads the GGUF form.
    public init(gguf file: GGUFFile) throws {
        var sums: [String: [Float]] = [:], counts: [String: Float] = [:]
        func floats(_ t: GGUFTensorInfo) throws -> [Float] {
            guard t.type == .f32 else { throw IMatrixError.invalid(path: file.path, reason: "\(t.name) is \(t.type.rawValue), expected F32") }
            return Array(file.data(for: t).bindMemory(to: Float.self))
        }
        for t in file.tensors {
            if t.name.hasSuffix(".in_sum2") {
                sums[String(t.name.dropLast(8))] = try floats(t)
            } else if t.name.hasSuffix(".counts") {
                let c = try floats(t)
                guard c.count == 1 else {
                    throw IMatrixError.invalid(path: file.path, reason: "\(t.name): per-expert counts are not supported")
                }
                counts[String(t.name.dropLast(7))] = c[0]
            }
        }
        var entries: [String: Entry] = [:]
        for (name, s) in sums {
            guard let c = counts[name] else { throw IMatrixError.invalid(path: file.path, reason: "\(name).in_sum2 has no \(name).counts") }
            entries[name] = Entry(sumSquares: s, count: c)
        }
        guard !entries.isEmpty else { throw IMatrixError.invalid(path: file.path, reason: "no .in_sum2/.counts tensors: not an imatrix") }
        self.init(entries: entries, datasets: file.stringArray("imatrix.datasets") ?? [],
                  chunkCount: file.int("imatrix.chunk_count") ?? 0, chunkSize: file.int("imatrix.chunk_size") ?? 512)
    }

    /// Reads the legacy `.dat` form; `chunkSize` is not stored there and is assumed.
    public init(dat b: UnsafeRawBufferPointer, path: String, chunkSize: Int = 512) throws {
        var o = 0
        func bad(_ r: String) -> IMatrixError { .invalid(path: path, reason: r) }
        func i32() throws -> Int {
            guard o + 4 <= b.count else { throw bad("truncated at byte \(o)") }
            defer { o += 4 }
            return Int(Int32(littleEndian: b.loadUnaligned(fromByteOffset: o, as: Int32.self)))
        }
        let n = try i32()
        guard n >= 1, n <= b.count / 12 else { throw bad("implausible entry count \(n): not an imatrix") }
        var entries: [String: Entry] = [:]
        var maxCalls = 0
        for _ in 0..<n {
            let len = try i32()
            guard len > 0, len <= 4096, o + len <= b.count else { throw bad("bad name length \(len) at byte \(o - 4)") }
            guard let name = String(validating: b[o..<(o + len)], as: UTF8.self) else { throw bad("name at byte \(o) is not UTF-8") }
            o += len
            let calls = try i32(), nval = try i32()
            guard calls >= 0, nval >= 1, nval <= (b.count - o) / 4 else { throw bad("\(name): bad value count \(nval)") }
            var values = [Float](repeating: 0, count: nval)
            for j in 0..<nval {
                values[j] = Float(bitPattern: UInt32(littleEndian: b.loadUnaligned(fromByteOffset: o + 4 * j, as: UInt32.self)))
            }
            o += 4 * nval
            // Stored values are mean × calls; as sums over calls × chunkSize tokens:
            let tokens = Float(max(calls, 1) * chunkSize)
            entries[name] = Entry(sumSquares: values.map { $0 / Float(max(calls, 1)) * tokens }, count: tokens)
            maxCalls = max(maxCalls, calls)
        }
        var datasets: [String] = []
        var chunks = maxCalls
        if let c = try? i32() {
            chunks = c
            if let len = try? i32(), len > 0, len <= 4096, o + len <= b.count,
               let s = String(validating: b[o..<(o + len)], as: UTF8.self) { datasets = [s] }
        }
        self.init(entries: entries, datasets: datasets, chunkCount: chunks, chunkSize: chunkSize)
    }

    /// Writes the matrix in `format` (atomically).
    public func write(to path: String, format: Format) throws {
        let names = entries.keys.sorted()
        switch format {
        case .gguf:
            var w = GGUFWriter(metadata: [
                GGUFKeyValue("general.type", .string("imatrix")),
                GGUFKeyValue("imatrix.datasets", .stringArray(datasets)),
                GGUFKeyValue("imatrix.chunk_count", .uint32(UInt32(chunkCount))),
                GGUFKeyValue("imatrix.chunk_size", .uint32(UInt32(chunkSize))),
            ])
            for name in names {
                let e = entries[name]!
                w.addTensor(name: name + ".in_sum2", dims: [e.sumSquares.count, 1], type: .f32, data: .bytes(Self.bytes(e.sumSquares)))
                w.addTensor(name: name + ".counts", dims: [1, 1], type: .f32, data: .bytes(Self.bytes([e.count])))
            }
            try w.write(to: path)
        case .dat:
            var out: [UInt8] = []
            func put(_ v: Int32) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
            put(Int32(names.count))
            for name in names {
                let e = entries[name]!
                let calls = max(1, Int((e.count / Float(chunkSize)).rounded(.up)))
                put(Int32(name.utf8.count))
                out += Array(name.utf8)
                put(Int32(calls))
                put(Int32(e.sumSquares.count))
                out += Self.bytes(e.sumSquares.map { $0 / max(e.count, 1) * Float(calls) })
            }
            put(Int32(chunkCount))
            let ds = datasets.last ?? ""
            put(Int32(ds.utf8.count))
            out += Array(ds.utf8)
            try AtomicWrite.write(out, to: path)
        }
    }

    static func bytes(_ v: [Float]) -> [UInt8] { v.withUnsafeBytes { Array($0) } }
}

/// Writes a whole byte array to a temporary file beside `path`, then renames it into place.
enum AtomicWrite {
    static func write(_ bytes: [UInt8], to path: String) throws {
        let tmp = path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: tmp, contents: Data(bytes)) else {
            throw IMatrixError.cannotWrite(path: path)
        }
        do {
            if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
            try FileManager.default.moveItem(atPath: tmp, toPath: path)
        } catch {
            try? FileManager.default.removeItem(atPath: tmp)
            throw IMatrixError.cannotWrite(path: path)
        }
    }
}

/// A malformed importance-matrix file.
public enum IMatrixError: Error, CustomStringConvertible, Equatable {
    /// The content is not a valid imatrix.
    case invalid(path: String, reason: String)
    /// The file could not be written.
    case cannotWrite(path: String)

    public var description: String {
        switch self {
        case let .invalid(path, reason): return "\(path): \(reason)"
        case let .cannotWrite(path): return "\(path): cannot write the file"
        }
    }
}
