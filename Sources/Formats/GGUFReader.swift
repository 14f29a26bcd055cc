import Tensors

/// One tensor's entry in a GGUF file: name, dimensions, type and where its data is.
public struct GGUFTensorInfo: Sendable, Equatable, Hashable {
    /// GGML's limit on dimensions per tensor.
    public static let maxDimensions: UInt32 = 4

    /// The tensor's name, e.g. `blk.0.attn_q.weight`.
    public let name: String
    /// Dimensions in GGML order, fastest-varying first: a linear layer's weight is
    /// `[inFeatures, outFeatures]`. Empty for a scalar.
    public let dims: [Int]
    /// The element or block type.
    public let type: DType
    /// Start of the data, in bytes from the start of the data section (a multiple of the
    /// file's alignment).
    public let offset: Int
    /// Number of elements, the product of `dims`.
    public let elementCount: Int
    /// Bytes of data: whole blocks of `type` for every row.
    public let byteCount: Int

    /// Dimensions row-major, slowest first (`dims` reversed), the convention of `Tensor`:
    /// a linear layer's weight is `[outFeatures, inFeatures]`.
    public var shape: [Int] { dims.reversed() }

    init(name: String, dims: [Int], type: DType, offset: Int, elementCount: Int, byteCount: Int) {
        self.name = name
        self.dims = dims
        self.type = type
        self.offset = offset
        self.elementCount = elementCount
        self.byteCount = byteCount
    }

    /// Why a shape cannot be stored.
    struct ShapeProblem: Error { let reason: String }

    /// Element and byte counts for `dims` of `type`, or why GGML cannot store them: at most
    /// four dimensions, none zero or negative, no overflow, and rows (the first dimension)
    /// made of whole blocks.
    static func measure(dims: [Int], type: DType) -> Result<(elements: Int, bytes: Int), ShapeProblem> {
        guard dims.count <= Int(maxDimensions) else {
            return .failure(ShapeProblem(reason: "\(dims.count) dimensions, at most \(maxDimensions) are supported"))
        }
        guard type.ggmlTypeID != nil else {
            return .failure(ShapeProblem(reason: "type \(type.rawValue) has no GGML type id"))
        }
        var elements = 1
        for (i, d) in dims.enumerated() {
            guard d > 0 else { return .failure(ShapeProblem(reason: "dimension \(i) is \(d), must be at least 1")) }
            let (product, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow else {
                return .failure(ShapeProblem(reason: "dimensions \(dims) overflow the element count"))
            }
            elements = product
        }
        let rowLength = dims.first ?? 1
        guard rowLength % type.blockSize == 0 else {
            return .failure(ShapeProblem(reason: "first dimension \(rowLength) is not a multiple of the "
                + "block size \(type.blockSize) of \(type.rawValue)"))
        }
        guard let bytes = type.byteCount(elements: elements) else {
            return .failure(ShapeProblem(reason: "dimensions \(dims) of \(type.rawValue) overflow the byte count"))
        }
        return .success((elements, bytes))
    }
}

/// A GGUF file (version 3, or 2), memory-mapped and validated on opening.
///
/// Opening reads the header, every metadata value (kept in file order) and every tensor
/// info, and checks them against the file size, so that afterwards `data(for:)` is a plain,
/// always-valid view into the mapping. Nothing is copied: tensor bytes are paged in by the
/// OS as they are used.
///
/// ```swift
/// let file = try GGUFFile(path: "SmolLM2-135M-Instruct.Q4_1.gguf")
/// let layers = file.int("llama.block_count")          // 30
/// let q = file.tensor(named: "blk.0.attn_q.weight")!  // shape [576, 576], Q4_1
/// let bytes = file.data(for: q)
/// ```
public final class GGUFFile: @unchecked Sendable {
    /// Alignment of the data section and of each tensor when `general.alignment` is absent.
    public static let defaultAlignment = 32
    /// The metadata key that sets the alignment.
    public static let alignmentKey = "general.alignment"
    /// Deepest nesting of arrays inside arrays that is accepted (a plain array is level 1).
    public static let maxArrayNesting = 16

    /// The path the file was opened from (`<memory>` or a caller's label for bytes).
    public let path: String
    /// The format version, 2 or 3 (identical layouts; 3 allowed big-endian files).
    public let version: UInt32
    /// All metadata entries in file order.
    public let metadata: [GGUFKeyValue]
    /// All tensor infos in file order.
    public let tensors: [GGUFTensorInfo]
    /// Alignment in bytes of the data section and of each tensor's data.
    public let alignment: Int
    /// Byte offset of the data section from the start of the file; tensor offsets are
    /// relative to it.
    public let dataOffset: Int

    private let storage: Storage
    private let keyIndex: [String: Int]
    private let tensorIndex: [String: Int]

    private enum Storage {
        case mapped(MappedFile)
        case owned(UnsafeMutableRawBufferPointer)
    }

    /// The whole file's bytes; valid while this object is alive.
    public var bytes: UnsafeRawBufferPointer {
        switch storage {
        case let .mapped(file): return file.bytes
        case let .owned(buffer): return UnsafeRawBufferPointer(buffer)
        }
    }

    /// File size in bytes.
    public var fileSize: Int { bytes.count }

    /// Memory-maps and validates the GGUF file at `path`. Throws `GGUFError`.
    public convenience init(path: String) throws {
        let file: MappedFile
        do {
            file = try MappedFile(path: path)
        } catch let MappedFileError.cannotOpen(_, reason) {
            throw GGUFError.cannotOpen(path: path, reason: reason)
        }
        try self.init(file: file)
    }

    /// Validates a GGUF file that is already mapped; keeps `file` alive.
    public init(file: MappedFile) throws {
        let layout = try GGUFParser.parse(file.bytes, path: file.path)
        path = file.path
        storage = .mapped(file)
        (version, metadata, keyIndex, tensors, tensorIndex, alignment, dataOffset) =
            (layout.version, layout.metadata, layout.keyIndex, layout.tensors, layout.tensorIndex,
             layout.alignment, layout.dataOffset)
    }

    /// Validates GGUF bytes held in memory (tests, fuzzing); they are copied once. `path`
    /// labels error messages.
    public init<Bytes: Collection>(bytes source: Bytes, path: String = "<memory>") throws
        where Bytes.Element == UInt8 {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: source.count, alignment: 64)
        let copied: Void? = source.withContiguousStorageIfAvailable {
            buffer.copyMemory(from: UnsafeRawBufferPointer($0))
        }
        if copied == nil { _ = buffer.initializeMemory(as: UInt8.self, from: source) }
        let layout: GGUFLayout
        do {
            layout = try GGUFParser.parse(UnsafeRawBufferPointer(buffer), path: path)
        } catch {
            buffer.deallocate()
            throw error
        }
        self.path = path
        storage = .owned(buffer)
        (version, metadata, keyIndex, tensors, tensorIndex, alignment, dataOffset) =
            (layout.version, layout.metadata, layout.keyIndex, layout.tensors, layout.tensorIndex,
             layout.alignment, layout.dataOffset)
    }

    deinit {
        if case let .owned(buffer) = storage { buffer.deallocate() }
    }

    // MARK: Tensors

    /// The tensor info named `name`, or nil.
    public func tensor(named name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The bytes of a tensor's data, a view into the mapping (no copy), valid while this
    /// `GGUFFile` is alive. `info` must come from this file's `tensors`.
    public func data(for info: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        let all = bytes
        let (start, overflow) = dataOffset.addingReportingOverflow(info.offset)
        // fatalError, not precondition: this must hold in -Ounchecked builds too.
        guard !overflow, info.offset >= 0, info.byteCount >= 0, start <= all.count,
              info.byteCount <= all.count - start else {
            fatalError("tensor info '\(info.name)' does not belong to \(path)")
        }
        return UnsafeRawBufferPointer(rebasing: all[start..<start + info.byteCount])
    }

    /// Calls `body` with a tensor's bytes while keeping this file alive.
    public func withData<R>(for info: GGUFTensorInfo, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withExtendedLifetime(self) { try body(data(for: info)) }
    }

    // MARK: Metadata

    /// The value stored under `key`, or nil.
    public subscript(key: String) -> GGUFValue? {
        keyIndex[key].map { metadata[$0].value }
    }

    /// The string stored under `key`, or nil if absent or not a string.
    public func string(_ key: String) -> String? { self[key]?.stringValue }

    /// The integer (of any GGUF integer type) stored under `key` as an `Int`, or nil if
    /// absent, not an integer, or too large for `Int`.
    public func int(_ key: String) -> Int? { self[key]?.intValue }

    /// The `float32` or `float64` stored under `key` as a `Float`, or nil.
    public func float(_ key: String) -> Float? { self[key]?.doubleValue.map { Float($0) } }

    /// The `float32` or `float64` stored under `key` as a `Double`, or nil.
    public func double(_ key: String) -> Double? { self[key]?.doubleValue }

    /// The bool stored under `key`, or nil.
    public func bool(_ key: String) -> Bool? { self[key]?.boolValue }

    /// The array of strings stored under `key`, or nil.
    public func stringArray(_ key: String) -> [String]? { self[key]?.stringArrayValue }

    /// The array of integers (any GGUF integer element type) under `key` as `Int`s, or nil.
    public func intArray(_ key: String) -> [Int]? { self[key]?.intArrayValue }

    /// The array of `float32` (or `float64`, rounded) under `key` as `Float`s, or nil.
    public func floatArray(_ key: String) -> [Float]? { self[key]?.floatArrayValue }

    /// `general.architecture`, e.g. `llama`.
    public var architecture: String? { string("general.architecture") }

    /// The value under `key` read with one of the accessors above, or a `GGUFError`
    /// (`missingKey` or `wrongType`) naming this file and the key.
    ///
    /// ```swift
    /// let layers = try file.require("llama.block_count", as: file.int)
    /// ```
    public func require<T>(_ key: String, as accessor: (String) -> T?) throws -> T {
        guard let value = self[key] else { throw GGUFError.missingKey(path: path, key: key) }
        guard let result = accessor(key) else {
            throw GGUFError.wrongType(path: path, key: key, expected: String(describing: T.self),
                                      found: value.typeDescription)
        }
        return result
    }
}
