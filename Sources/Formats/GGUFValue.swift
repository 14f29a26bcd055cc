/// The wire type of a GGUF metadata value (the `uint32` stored before each value and
/// before the elements of each array).
public enum GGUFValueType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    /// Unsigned 8-bit integer.
    case uint8 = 0
    /// Signed 8-bit integer.
    case int8 = 1
    /// Unsigned 16-bit integer.
    case uint16 = 2
    /// Signed 16-bit integer.
    case int16 = 3
    /// Unsigned 32-bit integer.
    case uint32 = 4
    /// Signed 32-bit integer.
    case int32 = 5
    /// IEEE 754 binary32.
    case float32 = 6
    /// One byte, 0 or 1.
    case bool = 7
    /// `uint64` byte length, then UTF-8 bytes (no terminator).
    case string = 8
    /// Element type (`uint32`), `uint64` count, then the elements.
    case array = 9
    /// Unsigned 64-bit integer.
    case uint64 = 10
    /// Signed 64-bit integer.
    case int64 = 11
    /// IEEE 754 binary64.
    case float64 = 12

    /// Bytes of one value for fixed-size types; nil for `string` and `array`.
    public var fixedSize: Int? {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16: return 2
        case .uint32, .int32, .float32: return 4
        case .uint64, .int64, .float64: return 8
        case .string, .array: return nil
        }
    }

    /// The fewest bytes a value of this type can take in a file (a string is at least
    /// its 8-byte length, an array at least its element type and 8-byte count).
    var minimumSize: Int { fixedSize ?? (self == .string ? 8 : 12) }

    /// The name used by the GGUF specification, e.g. `uint32`.
    public var description: String {
        switch self {
        case .uint8: return "uint8"
        case .int8: return "int8"
        case .uint16: return "uint16"
        case .int16: return "int16"
        case .uint32: return "uint32"
        case .int32: return "int32"
        case .float32: return "float32"
        case .bool: return "bool"
        case .string: return "string"
        case .array: return "array"
        case .uint64: return "uint64"
        case .int64: return "int64"
        case .float64: return "float64"
        }
    }
}

/// One GGUF metadata value, keeping its exact wire type so that a value read and written
/// back gives the same bytes.
///
/// Arrays of scalars and strings are typed Swift arrays (`.int32Array`, `.stringArray`, …),
/// so an empty array still knows its element type. An array whose elements are arrays
/// (element type `array` on the wire) is `.array`; each of its elements must be an array
/// case. Equality compares values, so a NaN float is not equal to itself; compare bytes
/// when that matters.
public enum GGUFValue: Sendable, Equatable {
    /// `uint8` (type 0).
    case uint8(UInt8)
    /// `int8` (type 1).
    case int8(Int8)
    /// `uint16` (type 2).
    case uint16(UInt16)
    /// `int16` (type 3).
    case int16(Int16)
    /// `uint32` (type 4).
    case uint32(UInt32)
    /// `int32` (type 5).
    case int32(Int32)
    /// `float32` (type 6).
    case float32(Float)
    /// `bool` (type 7), one byte 0 or 1.
    case bool(Bool)
    /// `string` (type 8): UTF-8 bytes after a `uint64` length.
    case string(String)
    /// `uint64` (type 10).
    case uint64(UInt64)
    /// `int64` (type 11).
    case int64(Int64)
    /// `float64` (type 12).
    case float64(Double)
    /// Array of `uint8`.
    case uint8Array([UInt8])
    /// Array of `int8`.
    case int8Array([Int8])
    /// Array of `uint16`.
    case uint16Array([UInt16])
    /// Array of `int16`.
    case int16Array([Int16])
    /// Array of `uint32`.
    case uint32Array([UInt32])
    /// Array of `int32`.
    case int32Array([Int32])
    /// Array of `float32`.
    case float32Array([Float])
    /// Array of `bool`.
    case boolArray([Bool])
    /// Array of `string`.
    case stringArray([String])
    /// Array of `uint64`.
    case uint64Array([UInt64])
    /// Array of `int64`.
    case int64Array([Int64])
    /// Array of `float64`.
    case float64Array([Double])
    /// Array whose elements are arrays (element type `array`); every element must itself
    /// be one of the array cases.
    case array([GGUFValue])

    /// The wire type of the value (`array` for every array case).
    public var type: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .float32: return .float32
        case .bool: return .bool
        case .string: return .string
        case .uint64: return .uint64
        case .int64: return .int64
        case .float64: return .float64
        default: return .array
        }
    }

    /// For an array, the wire type of its elements; nil for scalars and strings.
    public var elementType: GGUFValueType? {
        switch self {
        case .uint8Array: return .uint8
        case .int8Array: return .int8
        case .uint16Array: return .uint16
        case .int16Array: return .int16
        case .uint32Array: return .uint32
        case .int32Array: return .int32
        case .float32Array: return .float32
        case .boolArray: return .bool
        case .stringArray: return .string
        case .uint64Array: return .uint64
        case .int64Array: return .int64
        case .float64Array: return .float64
        case .array: return .array
        default: return nil
        }
    }

    /// For an array, its number of elements; nil for scalars and strings.
    public var count: Int? {
        switch self {
        case let .uint8Array(a): return a.count
        case let .int8Array(a): return a.count
        case let .uint16Array(a): return a.count
        case let .int16Array(a): return a.count
        case let .uint32Array(a): return a.count
        case let .int32Array(a): return a.count
        case let .float32Array(a): return a.count
        case let .boolArray(a): return a.count
        case let .stringArray(a): return a.count
        case let .uint64Array(a): return a.count
        case let .int64Array(a): return a.count
        case let .float64Array(a): return a.count
        case let .array(a): return a.count
        default: return nil
        }
    }

    /// A short description of the type, e.g. `uint32` or `array[string]`.
    public var typeDescription: String {
        guard let element = elementType else { return type.description }
        return "array[\(element)]"
    }

    /// The value as an `Int` if it is an integer of any width that fits.
    public var intValue: Int? {
        switch self {
        case let .uint8(v): return Int(v)
        case let .int8(v): return Int(v)
        case let .uint16(v): return Int(v)
        case let .int16(v): return Int(v)
        case let .uint32(v): return Int(v)
        case let .int32(v): return Int(v)
        case let .uint64(v): return Int(exactly: v)
        case let .int64(v): return Int(exactly: v)
        default: return nil
        }
    }

    /// The value as a `Double` if it is a `float32` or `float64`.
    public var doubleValue: Double? {
        switch self {
        case let .float32(v): return Double(v)
        case let .float64(v): return v
        default: return nil
        }
    }

    /// The value if it is a `bool`.
    public var boolValue: Bool? {
        if case let .bool(v) = self { return v }
        return nil
    }

    /// The value if it is a `string`.
    public var stringValue: String? {
        if case let .string(v) = self { return v }
        return nil
    }

    /// The elements as `Int`s if this is an array of any integer type and all fit.
    public var intArrayValue: [Int]? {
        switch self {
        case let .uint8Array(a): return a.map { Int($0) }
        case let .int8Array(a): return a.map { Int($0) }
        case let .uint16Array(a): return a.map { Int($0) }
        case let .int16Array(a): return a.map { Int($0) }
        case let .uint32Array(a): return a.map { Int($0) }
        case let .int32Array(a): return a.map { Int($0) }
        case let .uint64Array(a):
            var out = [Int]()
            out.reserveCapacity(a.count)
            for v in a {
                guard let i = Int(exactly: v) else { return nil }
                out.append(i)
            }
            return out
        case let .int64Array(a): return a.map { Int($0) }
        default: return nil
        }
    }

    /// The elements as `Float`s if this is an array of `float32` (or of `float64`, rounded).
    public var floatArrayValue: [Float]? {
        switch self {
        case let .float32Array(a): return a
        case let .float64Array(a): return a.map { Float($0) }
        default: return nil
        }
    }

    /// The elements if this is an array of `string`.
    public var stringArrayValue: [String]? {
        if case let .stringArray(a) = self { return a }
        return nil
    }
}

/// One metadata entry: a key and its value. `GGUFFile.metadata` keeps these in file order.
public struct GGUFKeyValue: Sendable, Equatable {
    /// The key, e.g. `llama.block_count`.
    public var key: String
    /// The value with its wire type.
    public var value: GGUFValue

    /// An entry for `key` holding `value`.
    public init(_ key: String, _ value: GGUFValue) {
        self.key = key
        self.value = value
    }
}
