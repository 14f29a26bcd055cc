import Tensors

/// One safetensors file, memory-mapped and validated.
///
/// Opening parses and checks the header only; tensor bytes stay in the mapping until they
/// are used. Buffers returned by `data(for:)` point into the mapping and are valid as long
/// as this object is alive.
///
/// ```swift
/// let file = try SafeTensorsFile(path: "model.safetensors")
/// for t in file.tensors { print(t.name, t.dtype, t.shape) }
/// let w = try file.floats("embeddings.word_embeddings.weight")
/// ```
public final class SafeTensorsFile: @unchecked Sendable {
    /// The path the file was opened from (used in error messages).
    public let path: String
    /// The tensors in the order the header lists them.
    public let tensors: [SafeTensorInfo]
    /// The header's `__metadata__`, or nil when it has none.
    public let metadata: SafeTensorsMetadata?
    /// Length of the JSON header including its padding (the file's first 8 bytes).
    public let headerLength: Int
    /// Offset of the data section in the file (`8 + headerLength`).
    public var dataStart: Int { 8 + headerLength }
    /// The whole file's bytes.
    public let bytes: UnsafeRawBufferPointer

    private let storage: Storage
    private let indexByName: [String: Int]

    private enum Storage {
        case mapped(MappedFile)
        case owned(UnsafeMutableRawBufferPointer)
    }

    /// Opens and validates the file at `path`.
    /// - Throws: `SafeTensorsError`, naming the file and the problem.
    public convenience init(path: String) throws {
        let mapped: MappedFile
        do {
            mapped = try MappedFile(path: path)
        } catch let MappedFileError.cannotOpen(_, reason) {
            throw SafeTensorsError.cannotOpen(path: path, reason: reason)
        }
        try self.init(mapped: mapped)
    }

    /// Validates an already mapped file; the mapping is kept alive by this object.
    /// - Throws: `SafeTensorsError`.
    public init(mapped: MappedFile) throws {
        storage = .mapped(mapped)
        bytes = mapped.bytes
        path = mapped.path
        let header = try SafeTensorsHeader(parsing: mapped.bytes, path: mapped.path)
        (tensors, metadata, headerLength) = (header.tensors, header.metadata, header.headerLength)
        indexByName = Self.index(tensors)
    }

    /// Validates a copy of `bytes`, an in-memory safetensors file (tests, fuzzing).
    /// `path` is only used in error messages.
    /// - Throws: `SafeTensorsError`.
    public convenience init(bytes: UnsafeRawBufferPointer, path: String = "<memory>") throws {
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 64)
        if bytes.count > 0 { copy.copyMemory(from: bytes) }
        try self.init(owning: copy, path: path)
    }

    /// Validates a copy of `bytes`; see `init(bytes:path:)`.
    /// - Throws: `SafeTensorsError`.
    public convenience init(bytes: [UInt8], path: String = "<memory>") throws {
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 64)
        bytes.withUnsafeBytes { if $0.count > 0 { copy.copyMemory(from: $0) } }
        try self.init(owning: copy, path: path)
    }

    /// Takes ownership of `buffer` (freed in deinit, or here when validation fails).
    private init(owning buffer: UnsafeMutableRawBufferPointer, path: String) throws {
        storage = .owned(buffer)
        bytes = UnsafeRawBufferPointer(buffer)
        self.path = path
        do {
            let header = try SafeTensorsHeader(parsing: bytes, path: path)
            (tensors, metadata, headerLength) = (header.tensors, header.metadata, header.headerLength)
        } catch {
            buffer.deallocate()  // deinit does not run for a partly initialized object
            throw error
        }
        indexByName = Self.index(tensors)
    }

    deinit {
        if case .owned(let buffer) = storage { buffer.deallocate() }
    }

    private static func index(_ tensors: [SafeTensorInfo]) -> [String: Int] {
        var result: [String: Int] = [:]
        result.reserveCapacity(tensors.count)
        for (i, t) in tensors.enumerated() { result[t.name] = i }
        return result
    }

    /// Size of the file in bytes.
    public var fileSize: Int { bytes.count }

    /// Tensor names in header order.
    public var names: [String] { tensors.map(\.name) }

    /// The tensors sorted by name (byte order of the UTF-8 names).
    public var sortedTensors: [SafeTensorInfo] {
        tensors.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
    }

    /// The tensor named `name`, or nil.
    public subscript(name: String) -> SafeTensorInfo? {
        indexByName[name].map { tensors[$0] }
    }

    /// True when the file holds a tensor named `name`.
    public func contains(_ name: String) -> Bool { indexByName[name] != nil }

    /// The tensor named `name`.
    /// - Throws: `SafeTensorsError.tensorNotFound`.
    public func info(_ name: String) throws -> SafeTensorInfo {
        guard let i = indexByName[name] else { throw SafeTensorsError.tensorNotFound(path: path, tensor: name) }
        return tensors[i]
    }

    /// The raw little-endian bytes of tensor `name`, without copying.
    /// - Throws: `SafeTensorsError.tensorNotFound`.
    public func data(for name: String) throws -> UnsafeRawBufferPointer {
        data(for: try info(name))
    }

    /// The raw little-endian bytes of a tensor of this file, without copying.
    /// - Precondition: `tensor` came from this file.
    public func data(for tensor: SafeTensorInfo) -> UnsafeRawBufferPointer {
        // A real check, not `precondition`: release builds use -Ounchecked.
        guard self[tensor.name] == tensor else { fatalError("tensor \(tensor.name) does not belong to \(path)") }
        return UnsafeRawBufferPointer(rebasing: bytes[tensor.fileRange])
    }

    /// Tensor `name` converted to f32 (from any safetensors element type; 64-bit
    /// integers above 2^24 lose precision, BOOL gives 0 and 1).
    /// - Throws: `SafeTensorsError.tensorNotFound`.
    public func floats(_ name: String) throws -> [Float] {
        let t = try info(name)
        return SafeTensorsConversion.floats(data(for: t), dtype: t.dtype, count: t.elementCount)
    }

    /// Tensor `name` as an f32 `Tensor` with the file's shape.
    /// - Throws: `SafeTensorsError.tensorNotFound`.
    public func tensor(_ name: String) throws -> Tensor {
        let t = try info(name)
        return Tensor(shape: t.shape, data: SafeTensorsConversion.floats(data(for: t), dtype: t.dtype, count: t.elementCount))
    }
}

/// Element conversions from safetensors storage to f32.
public enum SafeTensorsConversion {
    /// Converts `count` little-endian elements of `dtype` in `raw` to f32.
    /// - Precondition: `dtype` is a safetensors element type and `raw` holds `count` of them.
    public static func floats(_ raw: UnsafeRawBufferPointer, dtype: DType, count: Int) -> [Float] {
        guard dtype.safetensorsName != nil, count >= 0, dtype.byteCount(elements: count) == raw.count else {
            fatalError("\(dtype) buffer of \(raw.count) bytes does not hold \(count) elements")
        }
        return [Float](unsafeUninitializedCapacity: count) { out, initialized in
            convert(raw, dtype: dtype, into: out)
            initialized = count
        }
    }

    private static func convert(_ raw: UnsafeRawBufferPointer, dtype: DType, into out: UnsafeMutableBufferPointer<Float>) {
        let n = out.count
        @inline(__always) func map<T: FixedWidthInteger>(_: T.Type, _ f: (T) -> Float) {
            for i in 0..<n { out[i] = f(T(littleEndian: raw.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self))) }
        }
        switch dtype {
        case .f32:
            #if _endian(little)
            if n > 0 { UnsafeMutableRawPointer(out.baseAddress!).copyMemory(from: raw.baseAddress!, byteCount: n * 4) }
            #else
            map(UInt32.self) { Float(bitPattern: $0) }
            #endif
        case .f16: map(UInt16.self) { Half.f16ToFloat($0) }
        case .bf16: map(UInt16.self) { Half.bf16ToFloat($0) }
        case .f64: map(UInt64.self) { Float(Double(bitPattern: $0)) }
        case .f8_e4m3: map(UInt8.self) { f8e4m3Table[Int($0)] }
        case .f8_e5m2: map(UInt8.self) { Half.f16ToFloat(UInt16($0) << 8) }
        case .i8: map(Int8.self) { Float($0) }
        case .u8: map(UInt8.self) { Float($0) }
        case .bool: map(UInt8.self) { $0 == 0 ? 0 : 1 }
        case .i16: map(Int16.self) { Float($0) }
        case .u16: map(UInt16.self) { Float($0) }
        case .i32: map(Int32.self) { Float($0) }
        case .u32: map(UInt32.self) { Float($0) }
        case .i64: map(Int64.self) { Float($0) }
        case .u64: map(UInt64.self) { Float($0) }
        default: fatalError("\(dtype) is not a safetensors element type")
        }
    }

    /// float8 E4M3 "fn" (PyTorch's `float8_e4m3fn`): bias 7, no infinities,
    /// S.1111.111 is NaN, largest finite 448.
    public static func f8e4m3ToFloat(_ b: UInt8) -> Float { f8e4m3Table[Int(b)] }

    /// float8 E5M2: the top byte of an IEEE binary16.
    public static func f8e5m2ToFloat(_ b: UInt8) -> Float { Half.f16ToFloat(UInt16(b) << 8) }

    private static let f8e4m3Table: [Float] = (0..<256).map { i in
        let sign: Float = i & 0x80 != 0 ? -1 : 1
        let exp = (i >> 3) & 0xF, mant = i & 7
        if exp == 15 && mant == 7 { return .nan }
        if exp == 0 { return sign * Float(mant) / 8 * 0x1p-6 }
        return sign * (1 + Float(mant) / 8) * Float(sign: .plus, exponent: exp - 7, significand: 1)
    }
}
