import Tensors

// The safetensors layout (https://github.com/huggingface/safetensors):
//
//   bytes 0..<8        N, the header length, UInt64 little-endian
//   bytes 8..<8+N      the header: a JSON object, UTF-8, optionally padded with spaces
//                      { "__metadata__": {string: string},              (optional)
//                        "<name>": {"dtype": "F32", "shape": [d0, d1, …],
//                                   "data_offsets": [begin, end]}, … }
//   bytes 8+N..<end    the data section; each tensor's bytes are data[begin..<end],
//                      row-major, little-endian
//
// Validation follows the reference implementation: every tensor's byte range must match
// shape × element size, and the ranges must tile the data section exactly — no overlaps,
// no holes, no trailing bytes. (Holes would be harmless to read, but the reference rejects
// them, and a file we accept should load everywhere else too.) Zero-size tensors may sit at
// any offset that is not inside another tensor.
//
// Stricter than the reference (safetensors 0.8.0), on purpose: a repeated tensor name is an
// error (the reference silently keeps the last), shapes have at most 64 dimensions, and
// tensor entries must be objects with exactly one dtype/shape/data_offsets. Like the
// reference: unknown fields in a tensor entry are ignored, `"__metadata__": null` is no
// metadata, JSON whitespace may surround the header object, and the header is capped at
// 100 MB.

/// Where one tensor lives in a safetensors file, and what it holds.
public struct SafeTensorInfo: Hashable, Sendable {
    /// The tensor's name as written in the header.
    public let name: String
    /// The element type.
    public let dtype: DType
    /// Dimensions, slowest first (row-major); `[]` is a scalar.
    public let shape: [Int]
    /// The byte range within the data section, as the header's `data_offsets`.
    public let dataOffsets: Range<Int>
    /// The byte range within the whole file.
    public let fileRange: Range<Int>

    /// Number of elements (the product of `shape`; 1 for a scalar).
    public var elementCount: Int { shape.reduce(1, *) }
    /// Number of bytes the tensor occupies.
    public var byteCount: Int { dataOffsets.count }
}

/// The `__metadata__` of a safetensors header: a string-to-string map that remembers its
/// key order, so a file written back has the same bytes.
public struct SafeTensorsMetadata: Equatable, Sendable, ExpressibleByDictionaryLiteral {
    /// The keys in order.
    public private(set) var keys: [String] = []
    private var values: [String: String] = [:]

    /// An empty map.
    public init() {}

    /// The pairs in literal order; a repeated key keeps its first position and last value.
    public init(dictionaryLiteral elements: (String, String)...) {
        for (k, v) in elements { self[k] = v }
    }

    /// The dictionary's pairs, keys sorted so the result does not depend on hashing.
    public init(_ dictionary: [String: String]) {
        for k in dictionary.keys.sorted() { self[k] = dictionary[k] }
    }

    /// The value for `key`; setting a new key appends it, setting nil removes it.
    public subscript(key: String) -> String? {
        get { values[key] }
        set {
            if let newValue {
                if values.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if values.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    /// Number of entries.
    public var count: Int { keys.count }
    /// True when there are no entries.
    public var isEmpty: Bool { keys.isEmpty }
    /// The entries in order.
    public var entries: [(key: String, value: String)] { keys.map { ($0, values[$0]!) } }
    /// The entries as a plain dictionary.
    public var dictionary: [String: String] { values }
}

/// A parsed, validated safetensors header.
struct SafeTensorsHeader {
    /// Reference implementation's cap on header length.
    static let maxHeaderLength = 100_000_000
    /// Deepest JSON nesting accepted in a header (real headers have 3 levels).
    static let maxJSONDepth = 64
    /// Most dimensions accepted in a shape (NumPy's limit).
    static let maxRank = 64

    var tensors: [SafeTensorInfo]
    var metadata: SafeTensorsMetadata?
    /// N, the JSON length including padding.
    var headerLength: Int
    /// Where the data section starts in the file (8 + N).
    var dataStart: Int { 8 + headerLength }

    /// Parses and validates the header of the file whose bytes are `file`.
    init(parsing file: UnsafeRawBufferPointer, path: String) throws(SafeTensorsError) {
        guard file.count >= 8 else { throw .tooShort(path: path, size: file.count) }
        let length = file.loadUnaligned(as: UInt64.self).littleEndian
        guard length <= UInt64(Self.maxHeaderLength) else {
            throw .headerTooLarge(path: path, length: length, limit: Self.maxHeaderLength)
        }
        guard Int(length) <= file.count - 8 else {
            throw .headerPastEnd(path: path, length: length, fileSize: file.count)
        }
        headerLength = Int(length)
        let json = UnsafeRawBufferPointer(rebasing: file[8..<(8 + headerLength)])
        let dataSize = file.count - 8 - headerLength

        var parser = HeaderParser(json: json, path: path, dataStart: 8 + headerLength, dataSize: dataSize)
        do {
            try parser.parse()
        } catch let error as SafeTensorsError {
            throw error
        } catch let error as JSONError {
            switch error.kind {
            case .invalidUTF8: throw .invalidUTF8(path: path, offset: 8 + error.offset)
            default: throw .invalidJSON(path: path, offset: 8 + error.offset, reason: error.message)
            }
        } catch {
            throw .invalidHeader(path: path, reason: "\(error)")
        }
        tensors = parser.tensors
        metadata = parser.metadata
        try Self.checkCoverage(tensors, dataSize: dataSize, path: path)
    }

    /// Checks that tensor byte ranges tile `0..<dataSize` exactly.
    private static func checkCoverage(_ tensors: [SafeTensorInfo], dataSize: Int,
                                      path: String) throws(SafeTensorsError) {
        let order = tensors.indices.sorted {
            let a = tensors[$0].dataOffsets, b = tensors[$1].dataOffsets
            return (a.lowerBound, a.upperBound, $0) < (b.lowerBound, b.upperBound, $1)
        }
        var covered = 0
        var last: Int?  // the tensor that ends at `covered`
        for i in order {
            let r = tensors[i].dataOffsets
            if r.lowerBound < covered, let last {
                throw .overlap(path: path, tensor: tensors[i].name, other: tensors[last].name)
            }
            if r.lowerBound > covered {
                throw .uncoveredData(path: path, range: covered..<r.lowerBound, dataSize: dataSize)
            }
            if !r.isEmpty || last == nil {
                covered = r.upperBound
                last = i
            }
        }
        if covered != dataSize {
            throw .uncoveredData(path: path, range: covered..<dataSize, dataSize: dataSize)
        }
    }
}

/// Walks the header JSON with the pull parser, building tensor infos as it goes.
private struct HeaderParser {
    var scanner: JSONScanner
    let path: String
    let dataStart: Int
    let dataSize: Int
    var tensors: [SafeTensorInfo] = []
    var metadata: SafeTensorsMetadata?

    init(json: UnsafeRawBufferPointer, path: String, dataStart: Int, dataSize: Int) {
        scanner = JSONScanner(json, maxDepth: SafeTensorsHeader.maxJSONDepth)
        self.path = path
        self.dataStart = dataStart
        self.dataSize = dataSize
    }

    func headerError(_ reason: String) -> SafeTensorsError { .invalidHeader(path: path, reason: reason) }

    mutating func parse() throws {
        // First the whole header against the JSON grammar, so that a document that is not
        // JSON is always reported as such; then the typed walk, whose errors are semantic.
        var check = scanner
        check.skipWhitespace()
        try check.skipValue()
        try check.expectEnd()
        // Whitespace may surround the object (trailing spaces are the padding).
        scanner.skipWhitespace()
        guard scanner.peek() == UInt8(ascii: "{") else { throw headerError("header is not a JSON object starting with '{'") }
        try scanner.beginObject()
        var names = Set<String>()
        var first = true
        while let name = try scanner.nextKey(&first) {
            guard names.insert(name).inserted else { throw SafeTensorsError.duplicateName(path: path, tensor: name) }
            if name == "__metadata__" {
                metadata = try parseMetadata()
            } else {
                tensors.append(try parseTensor(name))
            }
        }
        try scanner.expectEnd()
    }

    private mutating func parseMetadata() throws -> SafeTensorsMetadata? {
        if scanner.peek() == UInt8(ascii: "n") {
            _ = try scanner.readValue()  // `null`, as the reference accepts
            return nil
        }
        guard scanner.peek() == UInt8(ascii: "{") else { throw headerError("__metadata__ is not an object") }
        try scanner.beginObject()
        var result = SafeTensorsMetadata()
        var first = true
        while let key = try scanner.nextKey(&first) {
            guard scanner.peek() == UInt8(ascii: "\"") else {
                throw headerError("__metadata__ value for \(JSONText.quoted(key)) is not a string")
            }
            let value = try scanner.readString()
            guard result[key] == nil else {
                throw SafeTensorsError.duplicateName(path: path, tensor: "__metadata__." + key)
            }
            result[key] = value
        }
        return result
    }

    private mutating func parseTensor(_ name: String) throws -> SafeTensorInfo {
        guard scanner.peek() == UInt8(ascii: "{") else {
            throw headerError("entry for tensor \(JSONText.quoted(name)) is not an object")
        }
        try scanner.beginObject()
        var dtypeName: String?, shape: [Int]?, offsets: [Int]?
        var first = true
        while let key = try scanner.nextKey(&first) {
            switch key {
            case "dtype":
                guard dtypeName == nil else { throw repeated(key, name) }
                guard scanner.peek() == UInt8(ascii: "\"") else {
                    throw headerError("dtype of tensor \(JSONText.quoted(name)) is not a string")
                }
                dtypeName = try scanner.readString()
            case "shape":
                guard shape == nil else { throw repeated(key, name) }
                shape = try readIntegers(name, field: "shape", limit: SafeTensorsHeader.maxRank)
            case "data_offsets":
                guard offsets == nil else { throw repeated(key, name) }
                offsets = try readIntegers(name, field: "data_offsets", limit: 2)
            default:
                _ = try scanner.readValue()  // unknown fields are ignored, as by the reference
            }
        }
        guard let dtypeName else { throw headerError("tensor \(JSONText.quoted(name)) has no dtype") }
        guard let shape else { throw headerError("tensor \(JSONText.quoted(name)) has no shape") }
        guard let offsets else { throw headerError("tensor \(JSONText.quoted(name)) has no data_offsets") }
        return try makeInfo(name, dtypeName: dtypeName, shape: shape, offsets: offsets)
    }

    private func repeated(_ key: String, _ name: String) -> SafeTensorsError {
        headerError("tensor \(JSONText.quoted(name)) has \(key) twice")
    }

    /// Reads an array of integers. An offset out of `Int` range comes back as `Int.min` or
    /// `Int.max` so validation names the real problem (negative, or past the end).
    private mutating func readIntegers(_ name: String, field: String, limit: Int) throws -> [Int] {
        guard scanner.peek() == UInt8(ascii: "[") else {
            throw headerError("\(field) of tensor \(JSONText.quoted(name)) is not an array")
        }
        try scanner.beginArray()
        var values: [Int] = []
        var first = true
        while try scanner.nextElement(&first) {
            guard values.count < limit else {
                let problem = "more than \(limit) \(field == "shape" ? "dimensions" : "values")"
                throw field == "shape"
                    ? SafeTensorsError.invalidShape(path: path, tensor: name, reason: problem)
                    : SafeTensorsError.invalidOffsets(path: path, tensor: name, reason: problem)
            }
            guard let b = scanner.peek(), b == UInt8(ascii: "-") || (b >= 0x30 && b <= 0x39) else {
                throw headerError("\(field) of tensor \(JSONText.quoted(name)) holds a non-number")
            }
            let literal = try scanner.readNumber()
            if let v = Int(literal) {
                values.append(v)
            } else if literal.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) {
                throw headerError("\(field) of tensor \(JSONText.quoted(name)) holds non-integer \(literal)")
            } else if field == "shape" {
                throw SafeTensorsError.invalidShape(path: path, tensor: name, reason: "dimension \(literal) is out of range")
            } else {
                values.append(literal.hasPrefix("-") ? Int.min : Int.max)  // reported as negative / past the end
            }
        }
        return values
    }

    private func makeInfo(_ name: String, dtypeName: String, shape: [Int],
                          offsets: [Int]) throws -> SafeTensorInfo {
        guard let dtype = DType(safetensorsName: dtypeName) else {
            throw SafeTensorsError.unknownDType(path: path, tensor: name, dtype: dtypeName)
        }
        var elements = 1
        for d in shape {
            guard d >= 0 else {
                throw SafeTensorsError.invalidShape(path: path, tensor: name, reason: "negative dimension \(d)")
            }
            let (product, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow else {
                throw SafeTensorsError.invalidShape(path: path, tensor: name, reason: "element count overflows")
            }
            elements = product
        }
        guard let bytes = dtype.byteCount(elements: elements) else {
            throw SafeTensorsError.invalidShape(path: path, tensor: name, reason: "byte count overflows")
        }
        guard offsets.count == 2 else {
            throw SafeTensorsError.invalidOffsets(path: path, tensor: name, reason: "expected [begin, end]")
        }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin >= 0, end >= 0 else {
            throw SafeTensorsError.invalidOffsets(path: path, tensor: name, reason: "negative offset")
        }
        guard begin <= end else {
            throw SafeTensorsError.invalidOffsets(path: path, tensor: name, reason: "end \(end) before begin \(begin)")
        }
        guard end - begin == bytes else {
            throw SafeTensorsError.sizeMismatch(path: path, tensor: name, expected: bytes, actual: end - begin)
        }
        guard end <= dataSize else {
            throw SafeTensorsError.offsetsPastEnd(path: path, tensor: name, end: end, dataSize: dataSize)
        }
        return SafeTensorInfo(name: name, dtype: dtype, shape: shape, dataOffsets: begin..<end,
                              fileRange: (dataStart + begin)..<(dataStart + end))
    }
}
