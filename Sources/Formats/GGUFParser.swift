import Tensors

/// What the parser found in a GGUF file, all of it validated.
struct GGUFLayout {
    var version: UInt32
    var metadata: [GGUFKeyValue]
    var keyIndex: [String: Int]
    var tensors: [GGUFTensorInfo]
    var tensorIndex: [String: Int]
    var alignment: Int
    var dataOffset: Int
}

/// Reads the GGUF header, metadata and tensor infos from bytes with every read
/// bounds-checked. Counts are compared with the bytes left before anything is reserved
/// for them, so a hostile file costs at most time and memory proportional to its size.
struct GGUFParser {
    /// The magic number, `GGUF` read as a little-endian `uint32`.
    static let magic: [UInt8] = Array("GGUF".utf8)
    /// Smallest tensor info: name length, dimension count, type, offset (no dims).
    static let minimumTensorInfoSize = 8 + 4 + 4 + 8
    /// Smallest key/value: key length, value type, a one-byte value.
    static let minimumKeyValueSize = 8 + 4 + 1

    let bytes: UnsafeRawBufferPointer
    let path: String
    private(set) var position = 0

    init(bytes: UnsafeRawBufferPointer, path: String) {
        self.bytes = bytes
        self.path = path
    }

    var remaining: Int { bytes.count - position }

    /// Parses and validates the whole file layout.
    static func parse(_ bytes: UnsafeRawBufferPointer, path: String) throws -> GGUFLayout {
        var p = GGUFParser(bytes: bytes, path: path)
        return try p.parseFile()
    }

    private mutating func parseFile() throws -> GGUFLayout {
        let prefix = Array(bytes.prefix(4))
        guard !prefix.isEmpty, prefix == Array(GGUFParser.magic.prefix(prefix.count)) else {
            throw GGUFError.badMagic(path: path, found: prefix)
        }
        guard prefix.count == 4 else { throw truncated(4, at: 0, "the magic number") }
        position = 4
        let version = try read(UInt32.self, "the version")
        guard version == 2 || version == 3 else {
            throw GGUFError.unsupportedVersion(path: path, version: version)
        }
        let tensorCountOffset = position
        let tensorCount = try read(UInt64.self, "the tensor count")
        let kvCountOffset = position
        let kvCount = try read(UInt64.self, "the metadata key/value count")
        let kvs = try checkedCount(kvCount, minimumSize: GGUFParser.minimumKeyValueSize,
                                   at: kvCountOffset, "metadata key/value count")

        var metadata: [GGUFKeyValue] = []
        var keyIndex: [String: Int] = [:]
        metadata.reserveCapacity(kvs)
        keyIndex.reserveCapacity(kvs)
        for i in 0..<kvs {
            let key = try readString("the key of metadata entry \(i)")
            let typeID = try read(UInt32.self, "the value type of metadata key '\(key)'")
            guard let type = GGUFValueType(rawValue: typeID) else {
                throw GGUFError.unknownValueType(path: path, key: key, typeID: typeID)
            }
            let value = try readValue(type, key: key, depth: 0)
            guard keyIndex.updateValue(metadata.count, forKey: key) == nil else {
                throw GGUFError.duplicateKey(path: path, key: key)
            }
            metadata.append(GGUFKeyValue(key, value))
        }

        var alignment = GGUFFile.defaultAlignment
        if let i = keyIndex[GGUFFile.alignmentKey] {
            let value = metadata[i].value
            guard case let .uint32(a) = value else {
                throw GGUFError.badAlignment(path: path, detail: "has type \(value.typeDescription)")
            }
            guard a != 0, a & (a - 1) == 0 else {
                throw GGUFError.badAlignment(path: path, detail: "is \(a)")
            }
            alignment = Int(a)
        }

        let tensorTotal = try checkedCount(tensorCount, minimumSize: GGUFParser.minimumTensorInfoSize,
                                           at: tensorCountOffset, "tensor count")
        var infos: [(name: String, dims: [Int], type: DType, offset: UInt64)] = []
        var tensorIndex: [String: Int] = [:]
        infos.reserveCapacity(tensorTotal)
        tensorIndex.reserveCapacity(tensorTotal)
        for i in 0..<tensorTotal {
            let name = try readString("the name of tensor \(i)")
            let nDims = try read(UInt32.self, "the dimension count of tensor '\(name)'")
            guard nDims <= GGUFTensorInfo.maxDimensions else {
                throw GGUFError.invalidTensor(path: path, tensor: name,
                    reason: "\(nDims) dimensions, at most \(GGUFTensorInfo.maxDimensions) are supported")
            }
            var dims: [Int] = []
            for d in 0..<Int(nDims) {
                let dim = try read(UInt64.self, "dimension \(d) of tensor '\(name)'")
                guard let value = Int(exactly: dim) else {
                    throw GGUFError.invalidTensor(path: path, tensor: name, reason: "dimension \(d) is \(dim), too large")
                }
                dims.append(value)
            }
            let typeID = try read(UInt32.self, "the type of tensor '\(name)'")
            guard let type = DType(ggmlTypeID: typeID) else {
                throw GGUFError.unknownTensorType(path: path, tensor: name, typeID: typeID)
            }
            let offset = try read(UInt64.self, "the data offset of tensor '\(name)'")
            guard tensorIndex.updateValue(i, forKey: name) == nil else {
                throw GGUFError.duplicateTensorName(path: path, tensor: name)
            }
            infos.append((name, dims, type, offset))
        }

        // The data section starts at the next multiple of the alignment; alignment is at
        // most 2^31 and position at most the file size, so this cannot overflow.
        let dataOffset = (position + alignment - 1) / alignment * alignment
        let available = max(0, bytes.count - dataOffset)
        var tensors: [GGUFTensorInfo] = []
        tensors.reserveCapacity(infos.count)
        for info in infos {
            let sizes: (elements: Int, bytes: Int)
            switch GGUFTensorInfo.measure(dims: info.dims, type: info.type) {
            case let .success(s): sizes = s
            case let .failure(problem):
                throw GGUFError.invalidTensor(path: path, tensor: info.name, reason: problem.reason)
            }
            guard info.offset % UInt64(alignment) == 0 else {
                throw GGUFError.invalidTensor(path: path, tensor: info.name,
                    reason: "data offset \(info.offset) is not a multiple of the alignment \(alignment)")
            }
            guard info.offset <= UInt64(available), sizes.bytes <= available - Int(info.offset) else {
                throw GGUFError.invalidTensor(path: path, tensor: info.name,
                    reason: "\(sizes.bytes) bytes of data at offset \(info.offset) run past the end of the "
                        + "file (the data section at byte \(dataOffset) holds \(available) bytes)")
            }
            tensors.append(GGUFTensorInfo(name: info.name, dims: info.dims, type: info.type,
                                          offset: Int(info.offset), elementCount: sizes.elements,
                                          byteCount: sizes.bytes))
        }
        try checkOverlaps(tensors)
        return GGUFLayout(version: version, metadata: metadata, keyIndex: keyIndex, tensors: tensors,
                          tensorIndex: tensorIndex, alignment: alignment, dataOffset: dataOffset)
    }

    private func checkOverlaps(_ tensors: [GGUFTensorInfo]) throws {
        let order = tensors.indices.sorted {
            (tensors[$0].offset, $0) < (tensors[$1].offset, $1)
        }
        var previous: Int? = nil
        for i in order where tensors[i].byteCount > 0 {
            if let p = previous, tensors[p].offset + tensors[p].byteCount > tensors[i].offset {
                throw GGUFError.overlappingTensors(path: path, first: tensors[p].name, second: tensors[i].name)
            }
            previous = i
        }
    }

    // MARK: Values

    private mutating func readValue(_ type: GGUFValueType, key: String, depth: Int) throws -> GGUFValue {
        let what = { "the value of metadata key '\(key)'" }
        switch type {
        case .uint8: return .uint8(try read(UInt8.self, what()))
        case .int8: return .int8(try read(Int8.self, what()))
        case .uint16: return .uint16(try read(UInt16.self, what()))
        case .int16: return .int16(try read(Int16.self, what()))
        case .uint32: return .uint32(try read(UInt32.self, what()))
        case .int32: return .int32(try read(Int32.self, what()))
        case .float32: return .float32(Float(bitPattern: try read(UInt32.self, what())))
        case .bool: return .bool(try readBool(key: key))
        case .string: return .string(try readString(what()))
        case .uint64: return .uint64(try read(UInt64.self, what()))
        case .int64: return .int64(try read(Int64.self, what()))
        case .float64: return .float64(Double(bitPattern: try read(UInt64.self, what())))
        case .array: return try readArray(key: key, depth: depth + 1)
        }
    }

    private mutating func readArray(key: String, depth: Int) throws -> GGUFValue {
        guard depth <= GGUFFile.maxArrayNesting else {
            throw GGUFError.nestingTooDeep(path: path, key: key, limit: GGUFFile.maxArrayNesting)
        }
        let typeID = try read(UInt32.self, "the element type of an array in metadata key '\(key)'")
        guard let type = GGUFValueType(rawValue: typeID) else {
            throw GGUFError.unknownValueType(path: path, key: key, typeID: typeID)
        }
        let countOffset = position
        let rawCount = try read(UInt64.self, "the length of an array in metadata key '\(key)'")
        let count = try checkedCount(rawCount, minimumSize: type.minimumSize, at: countOffset,
                                     "length of an array of \(type) in metadata key '\(key)'")
        switch type {
        case .uint8: return .uint8Array(readScalars(count, UInt8.self) { $0 })
        case .int8: return .int8Array(readScalars(count, Int8.self) { $0 })
        case .uint16: return .uint16Array(readScalars(count, UInt16.self) { $0 })
        case .int16: return .int16Array(readScalars(count, Int16.self) { $0 })
        case .uint32: return .uint32Array(readScalars(count, UInt32.self) { $0 })
        case .int32: return .int32Array(readScalars(count, Int32.self) { $0 })
        case .float32: return .float32Array(readScalars(count, UInt32.self) { Float(bitPattern: $0) })
        case .uint64: return .uint64Array(readScalars(count, UInt64.self) { $0 })
        case .int64: return .int64Array(readScalars(count, Int64.self) { $0 })
        case .float64: return .float64Array(readScalars(count, UInt64.self) { Double(bitPattern: $0) })
        case .bool:
            var out: [Bool] = []
            out.reserveCapacity(count)
            for _ in 0..<count { out.append(try readBool(key: key)) }
            return .boolArray(out)
        case .string:
            var out: [String] = []
            out.reserveCapacity(count)
            for i in 0..<count { out.append(try readString("element \(i) of metadata key '\(key)'")) }
            return .stringArray(out)
        case .array:
            var out: [GGUFValue] = []
            out.reserveCapacity(count)
            for _ in 0..<count { out.append(try readArray(key: key, depth: depth + 1)) }
            return .array(out)
        }
    }

    /// `count` little-endian values of `T`, converted; the caller has checked that they fit.
    private mutating func readScalars<T: FixedWidthInteger, R>(_ count: Int, _: T.Type,
                                                              _ convert: (T) -> R) -> [R] {
        let size = MemoryLayout<T>.size
        precondition(count <= remaining / size)
        let start = position
        let result = [R](unsafeUninitializedCapacity: count) { buffer, initialized in
            for i in 0..<count {
                let raw = bytes.loadUnaligned(fromByteOffset: start + i * size, as: T.self)
                (buffer.baseAddress! + i).initialize(to: convert(T(littleEndian: raw)))
            }
            initialized = count
        }
        position += count * size
        return result
    }

    private mutating func readBool(key: String) throws -> Bool {
        let byte = try read(UInt8.self, "a bool in metadata key '\(key)'")
        guard byte <= 1 else { throw GGUFError.invalidBool(path: path, key: key, byte: byte) }
        return byte == 1
    }

    // MARK: Primitives

    private func truncated(_ needed: UInt64, at offset: Int, _ context: String) -> GGUFError {
        GGUFError.truncated(path: path, offset: offset, needed: needed, context: context)
    }

    /// A little-endian integer; `context` names it in the error if the file ends first.
    private mutating func read<T: FixedWidthInteger>(_: T.Type, _ context: @autoclosure () -> String) throws -> T {
        let size = MemoryLayout<T>.size
        guard size <= remaining else { throw truncated(UInt64(size), at: position, context()) }
        let raw = bytes.loadUnaligned(fromByteOffset: position, as: T.self)
        position += size
        return T(littleEndian: raw)
    }

    /// A GGUF string: `uint64` byte length, then that many bytes of UTF-8.
    private mutating func readString(_ context: @autoclosure () -> String) throws -> String {
        let length = try read(UInt64.self, "the length of " + context())
        guard length <= UInt64(remaining) else { throw truncated(length, at: position, context()) }
        let n = Int(length)
        let start = position
        guard n > 0 else { return "" }
        let utf8 = UnsafeRawBufferPointer(rebasing: bytes[start..<start + n]).assumingMemoryBound(to: UInt8.self)
        guard let s = String(validating: utf8, as: UTF8.self) else {
            throw GGUFError.invalidUTF8(path: path, offset: start, context: context())
        }
        position += n
        return s
    }

    /// `count` as an `Int` if `count` items of at least `minimumSize` bytes each fit in the
    /// rest of the file.
    private func checkedCount(_ count: UInt64, minimumSize: Int, at offset: Int,
                              _ context: @autoclosure () -> String) throws -> Int {
        guard count <= UInt64(remaining / minimumSize) else {
            throw GGUFError.countTooLarge(path: path, offset: offset, count: count, context: context())
        }
        return Int(count)
    }
}
