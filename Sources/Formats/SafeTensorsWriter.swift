#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Tensors

/// Builds a safetensors file from tensors and writes it atomically.
///
/// The header is compact JSON written the way the reference library writes it
/// (`__metadata__` first, then the tensors, serde_json string escaping), padded with
/// spaces to a multiple of 8 bytes; tensor data follows in the same order as the header,
/// with no gaps. Reading a file written by the reference library and adding its tensors in
/// header order with the same metadata gives back identical bytes (`copy(_:to:)` does this).
///
/// ```swift
/// var writer = SafeTensorsWriter(metadata: ["format": "pt"])
/// try writer.add("w", shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])
/// try writer.write(to: "out.safetensors")
/// ```
public struct SafeTensorsWriter {
    /// The order tensors take in the header and the data section.
    public enum Order: Sendable {
        /// The order they were added in.
        case asAdded
        /// The order the reference Python/Rust library produces from a dict: larger
        /// element types first (keeping data aligned), then by name, byte-wise.
        case reference
    }

    /// The `__metadata__` to write; nil writes no `__metadata__` key.
    public var metadata: SafeTensorsMetadata?
    /// How tensors are ordered in the output.
    public var order: Order
    /// Where added bytes wait until `write`: nil holds them in memory; a spill file takes
    /// them at once, so a writer fed tensor by tensor holds none of them.
    public var spill: SpillFile?

    private var entries: [Entry] = []
    private var names = Set<String>()

    private struct Entry {
        let name: String
        let dtype: DType
        let shape: [Int]
        let source: Source
        var byteCount: Int {
            switch source {
            case .bytes(let b): return b.count
            case .file(_, let info): return info.byteCount
            case .spilled(let slice): return slice.count
            }
        }
    }

    private enum Source {
        case bytes([UInt8])
        case file(SafeTensorsFile, SafeTensorInfo)  // keeps the mapping alive until written
        case spilled(SpillFile.Slice)
    }

    /// An empty writer.
    public init(metadata: SafeTensorsMetadata? = nil, order: Order = .asAdded, spill: SpillFile? = nil) {
        self.metadata = metadata
        self.order = order
        self.spill = spill
    }

    /// Number of tensors added so far.
    public var count: Int { entries.count }

    /// Adds a tensor from its raw little-endian bytes.
    /// - Throws: `SafeTensorsError.invalidTensor` when the name is taken or reserved, the
    ///   dtype is not a safetensors type, or `bytes` does not match shape × element size.
    public mutating func add(_ name: String, dtype: DType, shape: [Int], bytes: [UInt8]) throws {
        try check(name, dtype: dtype, shape: shape, byteCount: bytes.count)
        let source: Source = try spill.map { .spilled(try $0.append(bytes)) } ?? .bytes(bytes)
        entries.append(Entry(name: name, dtype: dtype, shape: shape, source: source))
    }

    /// Adds f32 values stored as `dtype` (F32, F16 or BF16; rounding to nearest even).
    /// - Throws: `SafeTensorsError.invalidTensor` as `add(_:dtype:shape:bytes:)`, or for another dtype.
    public mutating func add(_ name: String, shape: [Int], floats: [Float], as dtype: DType = .f32) throws {
        var bytes: [UInt8] = []
        switch dtype {
        case .f32:
            bytes.reserveCapacity(floats.count * 4)
            for f in floats { withUnsafeBytes(of: f.bitPattern.littleEndian) { bytes += $0 } }
        case .f16, .bf16:
            bytes.reserveCapacity(floats.count * 2)
            for f in floats {
                let h = dtype == .f16 ? Half.floatToF16(f) : Half.floatToBF16(f)
                withUnsafeBytes(of: h.littleEndian) { bytes += $0 }
            }
        default:
            throw SafeTensorsError.invalidTensor(path: "<writer>", tensor: name,
                                                 reason: "floats can be stored as F32, F16 or BF16, not \(dtype)")
        }
        try add(name, dtype: dtype, shape: shape, bytes: bytes)
    }

    /// Adds tensor `tensor` of `file` under its own name, reading its bytes from the
    /// mapping only when writing (the file is kept open until then).
    /// - Throws: `SafeTensorsError` when the name is taken or `file` has no such tensor.
    public mutating func add(_ tensor: String, from file: SafeTensorsFile) throws {
        let info = try file.info(tensor)
        try check(info.name, dtype: info.dtype, shape: info.shape, byteCount: info.byteCount)
        entries.append(Entry(name: info.name, dtype: info.dtype, shape: info.shape, source: .file(file, info)))
    }

    private mutating func check(_ name: String, dtype: DType, shape: [Int], byteCount: Int) throws {
        func fail(_ reason: String) -> SafeTensorsError { .invalidTensor(path: "<writer>", tensor: name, reason: reason) }
        guard name != "__metadata__" else { throw fail("the name is reserved") }
        guard !names.contains(name) else { throw SafeTensorsError.duplicateName(path: "<writer>", tensor: name) }
        guard dtype.safetensorsName != nil else { throw fail("\(dtype) is not a safetensors element type") }
        guard shape.allSatisfy({ $0 >= 0 }) else { throw fail("negative dimension in \(shape)") }
        var elements = 1
        for d in shape {
            let (p, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow else { throw fail("shape \(shape) overflows") }
            elements = p
        }
        guard let expected = dtype.byteCount(elements: elements) else { throw fail("shape \(shape) overflows") }
        guard expected == byteCount else {
            throw fail("\(byteCount) bytes given, shape \(shape) of \(dtype) needs \(expected)")
        }
        names.insert(name)
    }

    private var orderedEntries: [Entry] {
        switch order {
        case .asAdded:
            return entries
        case .reference:
            return entries.sorted { a, b in
                let ra = Self.referenceRank(a.dtype), rb = Self.referenceRank(b.dtype)
                return ra != rb ? ra > rb : a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
            }
        }
    }

    /// The reference library's dtype enum order (its sort key, descending).
    private static func referenceRank(_ d: DType) -> Int {
        let order: [DType] = [.bool, .u8, .i8, .f8_e5m2, .f8_e4m3, .i16, .u16, .f16, .bf16,
                              .i32, .u32, .f32, .f64, .i64, .u64]
        return order.firstIndex(of: d) ?? -1
    }

    /// The header: 8-byte length, then the JSON padded with spaces to a multiple of 8.
    public func headerBytes() -> [UInt8] {
        headerBytes(for: orderedEntries)
    }

    private func headerBytes(for entries: [Entry]) -> [UInt8] {
        var json: [UInt8] = [UInt8(ascii: "{")]
        func append(_ s: String) { json += Array(s.utf8) }
        if let metadata {
            append("\"__metadata__\":{")
            for (i, e) in metadata.entries.enumerated() {
                if i > 0 { append(",") }
                JSONText.appendSerdeString(e.key, to: &json)
                append(":")
                JSONText.appendSerdeString(e.value, to: &json)
            }
            append("}")
        }
        var offset = 0
        for (i, e) in entries.enumerated() {
            if i > 0 || metadata != nil { append(",") }
            JSONText.appendSerdeString(e.name, to: &json)
            let shape = e.shape.map(String.init).joined(separator: ",")
            append(":{\"dtype\":\"\(e.dtype.safetensorsName!)\",\"shape\":[\(shape)],")
            append("\"data_offsets\":[\(offset),\(offset + e.byteCount)]}")
            offset += e.byteCount
        }
        append("}")
        json += repeatElement(UInt8(ascii: " "), count: (8 - json.count % 8) % 8)
        var out: [UInt8] = []
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out += $0 }
        return out + json
    }

    /// Writes the file to `path` through a temporary file in the same folder, renamed
    /// into place once complete; on failure `path` is left as it was.
    /// - Throws: `SafeTensorsError.writeFailed`.
    public func write(to path: String) throws {
        let ordered = orderedEntries
        let header = headerBytes(for: ordered)
        try AtomicFile.write(to: path) { out in
            try header.withUnsafeBytes { try out.write($0) }
            for e in ordered {
                switch e.source {
                case .bytes(let b): try b.withUnsafeBytes { try out.write($0) }
                case .file(let f, let info): try out.write(f.data(for: info))
                case .spilled(let slice): try slice.forEachChunk { try out.write($0) }
                }
            }
        }
    }

    /// Writes a copy of `file` to `path`: same tensors in header order, same metadata.
    /// For a file written by the reference library the bytes are identical.
    /// - Throws: `SafeTensorsError`.
    public static func copy(_ file: SafeTensorsFile, to path: String) throws {
        var writer = SafeTensorsWriter(metadata: file.metadata)
        for t in file.tensors { try writer.add(t.name, from: file) }
        try writer.write(to: path)
    }
}

#if canImport(Glibc)
private let posixWrite = Glibc.write
#else
private let posixWrite = Darwin.write
#endif

/// Writing a file atomically: a temporary file in the destination's folder, synced and
/// renamed over the destination, removed if anything fails.
enum AtomicFile {
    /// A sink for the file's bytes.
    struct Output {
        let fd: Int32
        let path: String

        func write(_ bytes: UnsafeRawBufferPointer) throws {
            var done = 0
            while done < bytes.count {
                // Bounded chunks: some kernels cap a single write at 2 GiB anyway.
                let n = posixWrite(fd, bytes.baseAddress! + done, min(bytes.count - done, 1 << 30))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw SafeTensorsError.writeFailed(path: path, reason: String(cString: strerror(errno)))
                }
                done += n
            }
        }
    }

    static func write(to path: String, _ body: (Output) throws -> Void) throws {
        let slash = path.lastIndex(of: "/")
        let folder = slash.map { String(path[..<$0]) } ?? "."
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        let folderPrefix = slash.map { String(path[...$0]) } ?? ""
        func fail(_ what: String) -> SafeTensorsError {
            .writeFailed(path: path, reason: "\(what): \(String(cString: strerror(errno)))")
        }
        var temp = ""
        var fd: Int32 = -1
        for _ in 0..<16 {
            temp = folderPrefix + ".\(base).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
            fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else { throw fail("cannot create a temporary file in \(folder)") }
        var renamed = false
        defer {
            if fd >= 0 { close(fd) }
            if !renamed { unlink(temp) }
        }
        try body(Output(fd: fd, path: path))
        guard fsync(fd) == 0 else { throw fail("fsync") }
        guard close(fd) == 0 else { fd = -1; throw fail("close") }
        fd = -1
        guard rename(temp, path) == 0 else { throw fail("rename") }
        renamed = true
        let dirfd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirfd >= 0 {  // make the rename durable; best effort
            _ = fsync(dirfd)
            close(dirfd)
        }
    }
}
