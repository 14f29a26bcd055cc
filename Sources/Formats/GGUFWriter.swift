#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Tensors

/// Writes a GGUF file: header, metadata in the given order, tensor infos with offsets it
/// computes, and each tensor's data padded with zeros to the alignment (taken from
/// `general.alignment`, default 32).
///
/// The layout is the canonical one llama.cpp and the `gguf` Python package write, so a
/// file read with `GGUFFile` and written back with `GGUFWriter(copying:)` is byte-identical.
/// `write(to:)` writes a temporary file in the destination's folder and renames it into
/// place when complete. The same input gives the same bytes.
///
/// ```swift
/// var writer = GGUFWriter()
/// writer.setValue(.string("llama"), forKey: "general.architecture")
/// writer.addTensor(name: "w", dims: [64, 8], type: .f32, data: .bytes(floatBytes))
/// try writer.write(to: "out.gguf")
/// ```
public struct GGUFWriter {
    /// Where a tensor's bytes come from when the file is written.
    public enum TensorData {
        /// Bytes held in memory; must be exactly the tensor's byte count.
        case bytes([UInt8])
        /// The data of a tensor of a file being read, copied straight from its mapping.
        case copy(from: GGUFFile, tensor: GGUFTensorInfo)
        /// A closure that fills a zeroed buffer of exactly the tensor's byte count, called
        /// once while writing, so only one tensor is in memory at a time.
        case fill((UnsafeMutableRawBufferPointer) throws -> Void)
    }

    /// A tensor to write.
    public struct TensorEntry {
        /// The tensor's name; names must be unique.
        public var name: String
        /// Dimensions in GGML order, fastest first (a row-major `shape` reversed).
        public var dims: [Int]
        /// The element or block type; must have a GGML type id.
        public var type: DType
        /// The source of the bytes.
        public var data: TensorData

        /// A tensor named `name` with `dims` (GGML order) of `type`, its bytes from `data`.
        public init(name: String, dims: [Int], type: DType, data: TensorData) {
            self.name = name
            self.dims = dims
            self.type = type
            self.data = data
        }
    }

    /// The format version to write, 3 (default) or 2.
    public var version: UInt32
    /// Metadata entries, written in this order; keys must be unique.
    public var metadata: [GGUFKeyValue]
    /// Tensors, written in this order.
    public var tensors: [TensorEntry]

    /// A writer with the given version, metadata and tensors.
    public init(version: UInt32 = 3, metadata: [GGUFKeyValue] = [], tensors: [TensorEntry] = []) {
        self.version = version
        self.metadata = metadata
        self.tensors = tensors
    }

    /// A writer holding everything in `file` (version, metadata, tensors in order, data
    /// copied from its mapping when written), ready to be changed or written as is.
    public init(copying file: GGUFFile) {
        self.init(version: file.version, metadata: file.metadata,
                  tensors: file.tensors.map {
                      TensorEntry(name: $0.name, dims: $0.dims, type: $0.type, data: .copy(from: file, tensor: $0))
                  })
    }

    /// Sets `key` to `value`: replaces the entry in place if the key exists, else appends.
    public mutating func setValue(_ value: GGUFValue, forKey key: String) {
        if let i = metadata.firstIndex(where: { $0.key == key }) {
            metadata[i].value = value
        } else {
            metadata.append(GGUFKeyValue(key, value))
        }
    }

    /// Removes the entry for `key`, if any.
    public mutating func removeValue(forKey key: String) {
        metadata.removeAll { $0.key == key }
    }

    /// Appends a tensor named `name` with `dims` (GGML order, fastest first) of `type`.
    public mutating func addTensor(name: String, dims: [Int], type: DType, data: TensorData) {
        tensors.append(TensorEntry(name: name, dims: dims, type: type, data: data))
    }

    /// The alignment that will be used: `general.alignment` if it is a `uint32`, else 32.
    public var alignment: Int {
        if let entry = metadata.first(where: { $0.key == GGUFFile.alignmentKey }),
           case let .uint32(a) = entry.value { return Int(a) }
        return GGUFFile.defaultAlignment
    }

    /// Writes the file atomically to `path`: into a temporary file in the same folder,
    /// flushed to disk, then renamed over `path`. Throws `GGUFError` on invalid contents
    /// (nothing is created then) or I/O failure (the temporary file is removed).
    public func write(to path: String) throws {
        let plan = try makePlan(path: path)
        let slash = path.lastIndex(of: "/")
        let folder = slash.map { String(path[..<$0]) } ?? "."
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        let temporary = (folder.isEmpty ? "" : folder + "/")
            + ".\(name).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw GGUFError.cannotWrite(path: path, reason: "\(temporary): \(errnoText())") }
        var sink = FileSink(fd: fd, path: path)
        do {
            try emit(plan, to: &sink)
            try sink.flush()
            guard fsync(fd) == 0 else { throw GGUFError.cannotWrite(path: path, reason: "fsync: \(errnoText())") }
            let closed = close(fd)
            sink.fd = -1
            guard closed == 0 else { throw GGUFError.cannotWrite(path: path, reason: "close: \(errnoText())") }
            guard rename(temporary, path) == 0 else {
                throw GGUFError.cannotWrite(path: path, reason: "rename: \(errnoText())")
            }
        } catch {
            if sink.fd >= 0 { close(sink.fd) }
            unlink(temporary)
            throw error
        }
    }

    /// The whole file as bytes in memory (for tests and small files). `path` labels errors.
    public func serialized(path: String = "<memory>") throws -> [UInt8] {
        let plan = try makePlan(path: path)
        var sink = ArraySink()
        sink.bytes.reserveCapacity(plan.totalSize)
        try emit(plan, to: &sink)
        return sink.bytes
    }

    // MARK: Layout

    private struct Plan {
        var header: [UInt8]
        var byteCounts: [Int]
        var alignment: Int
        var totalSize: Int
    }

    /// Validates everything and encodes the header (through the padding before the data).
    private func makePlan(path: String) throws -> Plan {
        guard version == 2 || version == 3 else { throw GGUFError.unsupportedVersion(path: path, version: version) }
        var keys = Set<String>()
        for entry in metadata where !keys.insert(entry.key).inserted {
            throw GGUFError.duplicateKey(path: path, key: entry.key)
        }
        if let entry = metadata.first(where: { $0.key == GGUFFile.alignmentKey }) {
            guard case let .uint32(a) = entry.value else {
                throw GGUFError.badAlignment(path: path, detail: "has type \(entry.value.typeDescription)")
            }
            guard a != 0, a & (a - 1) == 0 else { throw GGUFError.badAlignment(path: path, detail: "is \(a)") }
        }
        let alignment = self.alignment

        var header: [UInt8] = GGUFParser.magic
        header.appendLittleEndian(version)
        header.appendLittleEndian(UInt64(tensors.count))
        header.appendLittleEndian(UInt64(metadata.count))
        for entry in metadata {
            header.appendString(entry.key)
            header.appendLittleEndian(entry.value.type.rawValue)
            try header.appendValue(entry.value, key: entry.key, depth: 0, path: path)
        }

        var names = Set<String>()
        var byteCounts: [Int] = []
        var offset = 0
        for tensor in tensors {
            guard names.insert(tensor.name).inserted else {
                throw GGUFError.duplicateTensorName(path: path, tensor: tensor.name)
            }
            let sizes: (elements: Int, bytes: Int)
            switch GGUFTensorInfo.measure(dims: tensor.dims, type: tensor.type) {
            case let .success(s): sizes = s
            case let .failure(problem):
                throw GGUFError.invalidTensor(path: path, tensor: tensor.name, reason: problem.reason)
            }
            let provided: Int? = switch tensor.data {
            case let .bytes(b): b.count
            case let .copy(_, info): info.byteCount
            case .fill: nil
            }
            if let provided, provided != sizes.bytes {
                throw GGUFError.invalidTensor(path: path, tensor: tensor.name,
                    reason: "\(provided) bytes of data given, \(tensor.type.rawValue) \(tensor.dims) needs \(sizes.bytes)")
            }
            header.appendString(tensor.name)
            header.appendLittleEndian(UInt32(tensor.dims.count))
            for d in tensor.dims { header.appendLittleEndian(UInt64(d)) }
            header.appendLittleEndian(tensor.type.ggmlTypeID!)
            header.appendLittleEndian(UInt64(offset))
            byteCounts.append(sizes.bytes)
            guard let next = Self.padded(offset, sizes.bytes, alignment) else {
                throw GGUFError.invalidTensor(path: path, tensor: tensor.name, reason: "data section too large")
            }
            offset = next
        }
        header.append(contentsOf: repeatElement(0, count: Self.padding(header.count, alignment)))
        return Plan(header: header, byteCounts: byteCounts, alignment: alignment,
                    totalSize: header.count + offset)
    }

    /// `offset + count` rounded up to `alignment`, or nil on overflow.
    private static func padded(_ offset: Int, _ count: Int, _ alignment: Int) -> Int? {
        let (end, o1) = offset.addingReportingOverflow(count)
        let (rounded, o2) = end.addingReportingOverflow(padding(end, alignment))
        return o1 || o2 ? nil : rounded
    }

    private static func padding(_ n: Int, _ alignment: Int) -> Int { (alignment - n % alignment) % alignment }

    private func emit<Sink: GGUFByteSink>(_ plan: Plan, to sink: inout Sink) throws {
        try plan.header.withUnsafeBytes { try sink.write($0) }
        let zeros = [UInt8](repeating: 0, count: min(plan.alignment, 4096))
        for (tensor, count) in zip(tensors, plan.byteCounts) {
            switch tensor.data {
            case let .bytes(b):
                try b.withUnsafeBytes { try sink.write($0) }
            case let .copy(file, info):
                try file.withData(for: info) { try sink.write($0) }
            case let .fill(body):
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 64)
                defer { buffer.deallocate() }
                buffer.initializeMemory(as: UInt8.self, repeating: 0)
                try body(buffer)
                try sink.write(UnsafeRawBufferPointer(buffer))
            }
            var pad = Self.padding(count, plan.alignment)
            while pad > 0 {
                let n = min(pad, zeros.count)
                try zeros.withUnsafeBytes { try sink.write(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                pad -= n
            }
        }
    }
}

// MARK: Encoding

extension [UInt8] {
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    mutating func appendString(_ s: String) {
        appendLittleEndian(UInt64(s.utf8.count))
        append(contentsOf: s.utf8)
    }

    /// Appends the value's bytes (without its type tag, which the caller wrote).
    mutating func appendValue(_ value: GGUFValue, key: String, depth: Int, path: String) throws {
        func array<T>(_ type: GGUFValueType, _ elements: [T], _ each: (inout [UInt8], T) -> Void) {
            appendLittleEndian(type.rawValue)
            appendLittleEndian(UInt64(elements.count))
            for e in elements { each(&self, e) }
        }
        // `depth` arrays enclose this value; the reader accepts maxArrayNesting levels.
        if value.elementType != nil, depth >= GGUFFile.maxArrayNesting {
            throw GGUFError.nestingTooDeep(path: path, key: key, limit: GGUFFile.maxArrayNesting)
        }
        switch value {
        case let .uint8(v): appendLittleEndian(v)
        case let .int8(v): appendLittleEndian(v)
        case let .uint16(v): appendLittleEndian(v)
        case let .int16(v): appendLittleEndian(v)
        case let .uint32(v): appendLittleEndian(v)
        case let .int32(v): appendLittleEndian(v)
        case let .float32(v): appendLittleEndian(v.bitPattern)
        case let .bool(v): append(v ? 1 : 0)
        case let .string(v): appendString(v)
        case let .uint64(v): appendLittleEndian(v)
        case let .int64(v): appendLittleEndian(v)
        case let .float64(v): appendLittleEndian(v.bitPattern)
        case let .uint8Array(a): array(.uint8, a) { $0.append($1) }
        case let .int8Array(a): array(.int8, a) { $0.appendLittleEndian($1) }
        case let .uint16Array(a): array(.uint16, a) { $0.appendLittleEndian($1) }
        case let .int16Array(a): array(.int16, a) { $0.appendLittleEndian($1) }
        case let .uint32Array(a): array(.uint32, a) { $0.appendLittleEndian($1) }
        case let .int32Array(a): array(.int32, a) { $0.appendLittleEndian($1) }
        case let .float32Array(a): array(.float32, a) { $0.appendLittleEndian($1.bitPattern) }
        case let .boolArray(a): array(.bool, a) { $0.append($1 ? 1 : 0) }
        case let .stringArray(a): array(.string, a) { $0.appendString($1) }
        case let .uint64Array(a): array(.uint64, a) { $0.appendLittleEndian($1) }
        case let .int64Array(a): array(.int64, a) { $0.appendLittleEndian($1) }
        case let .float64Array(a): array(.float64, a) { $0.appendLittleEndian($1.bitPattern) }
        case let .array(elements):
            appendLittleEndian(GGUFValueType.array.rawValue)
            appendLittleEndian(UInt64(elements.count))
            for e in elements {
                guard e.type == .array else {
                    throw GGUFError.invalidValue(path: path, key: key,
                        reason: "an .array element is a \(e.type), but must be an array")
                }
                try appendValue(e, key: key, depth: depth + 1, path: path)
            }
        }
    }
}

// MARK: Sinks

protocol GGUFByteSink {
    mutating func write(_ bytes: UnsafeRawBufferPointer) throws
}

private struct ArraySink: GGUFByteSink {
    var bytes: [UInt8] = []
    mutating func write(_ chunk: UnsafeRawBufferPointer) { bytes.append(contentsOf: chunk) }
}

/// Buffers small writes; large ones (tensor data) go straight to the file.
private struct FileSink: GGUFByteSink {
    var fd: Int32
    let path: String
    var buffer: [UInt8] = []
    static let capacity = 1 << 20

    init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
        buffer.reserveCapacity(Self.capacity)
    }

    mutating func write(_ chunk: UnsafeRawBufferPointer) throws {
        if buffer.count + chunk.count <= Self.capacity {
            buffer.append(contentsOf: chunk)
            return
        }
        try flush()
        if chunk.count < Self.capacity { buffer.append(contentsOf: chunk) } else { try writeAll(chunk) }
    }

    mutating func flush() throws {
        try buffer.withUnsafeBytes { try writeAll($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeAll(_ chunk: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < chunk.count {
            let n = posixWrite(fd, chunk.baseAddress! + done, chunk.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw GGUFError.cannotWrite(path: path, reason: errnoText())
            }
            done += n
        }
    }
}

private func errnoText() -> String { String(cString: strerror(errno)) }

private func posixWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }
