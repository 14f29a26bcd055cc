/// Everything that can be wrong with a GGUF file being read, or with a GGUF file a
/// `GGUFWriter` was asked to write.
///
/// Every case carries the path of the file, and `description` is one line naming that
/// file and the problem. Names and keys taken from the file are quoted with control
/// characters escaped and long ones shortened, so a hostile file cannot forge extra lines.
public enum GGUFError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file could not be opened or mapped.
    case cannotOpen(path: String, reason: String)
    /// The output file could not be created, written or renamed into place.
    case cannotWrite(path: String, reason: String)
    /// The first four bytes are not `GGUF`.
    case badMagic(path: String, found: [UInt8])
    /// A format version other than 2 or 3 (version 1 used 32-bit counts).
    case unsupportedVersion(path: String, version: UInt32)
    /// The file ends before `needed` bytes that start at `offset` could be read.
    case truncated(path: String, offset: Int, needed: UInt64, context: String)
    /// A count (of tensors, key/values or array elements) larger than the rest of the
    /// file could possibly hold, detected before anything was allocated for it.
    case countTooLarge(path: String, offset: Int, count: UInt64, context: String)
    /// A string (key, value or tensor name) that is not valid UTF-8.
    case invalidUTF8(path: String, offset: Int, context: String)
    /// A metadata value type id outside 0...12.
    case unknownValueType(path: String, key: String, typeID: UInt32)
    /// A bool stored as a byte other than 0 or 1.
    case invalidBool(path: String, key: String, byte: UInt8)
    /// Arrays of arrays nested deeper than `GGUFFile.maxArrayNesting`.
    case nestingTooDeep(path: String, key: String, limit: Int)
    /// The same metadata key appears twice. (Keys are compared as Swift strings, so two
    /// canonically equivalent spellings of a key count as the same; likewise tensor names.)
    case duplicateKey(path: String, key: String)
    /// `general.alignment` is not a `uint32` nonzero power of two.
    case badAlignment(path: String, detail: String)
    /// A tensor's dimensions, size or offset are invalid; `reason` says which.
    case invalidTensor(path: String, tensor: String, reason: String)
    /// A tensor's GGML type id is unknown (or retired).
    case unknownTensorType(path: String, tensor: String, typeID: UInt32)
    /// Two tensors have the same name.
    case duplicateTensorName(path: String, tensor: String)
    /// The data of two tensors overlaps.
    case overlappingTensors(path: String, first: String, second: String)
    /// A metadata value that cannot be written as given (writer side).
    case invalidValue(path: String, key: String, reason: String)
    /// A metadata key that `GGUFFile.require(_:as:)` needed is absent.
    case missingKey(path: String, key: String)
    /// A metadata key that `GGUFFile.require(_:as:)` needed holds another type.
    case wrongType(path: String, key: String, expected: String, found: String)

    /// The file the error is about.
    public var path: String {
        switch self {
        case let .cannotOpen(path, _), let .cannotWrite(path, _), let .badMagic(path, _),
             let .unsupportedVersion(path, _), let .truncated(path, _, _, _),
             let .countTooLarge(path, _, _, _), let .invalidUTF8(path, _, _),
             let .unknownValueType(path, _, _), let .invalidBool(path, _, _),
             let .nestingTooDeep(path, _, _), let .duplicateKey(path, _), let .badAlignment(path, _),
             let .invalidTensor(path, _, _), let .unknownTensorType(path, _, _),
             let .duplicateTensorName(path, _), let .overlappingTensors(path, _, _),
             let .invalidValue(path, _, _), let .missingKey(path, _), let .wrongType(path, _, _, _):
            return path
        }
    }

    /// One line: the file, then what is wrong with it.
    public var description: String {
        let p = GGUFError.sanitize(path, limit: 300)
        let q = { (s: String) in "'" + GGUFError.sanitize(s, limit: 80) + "'" }
        let text: String
        switch self {
        case let .cannotOpen(_, reason):
            text = "cannot open: \(GGUFError.sanitize(reason, limit: 200))"
        case let .cannotWrite(_, reason):
            text = "cannot write: \(GGUFError.sanitize(reason, limit: 200))"
        case let .badMagic(_, found):
            let hex = found.map { String($0, radix: 16, uppercase: true) }.joined(separator: " ")
            text = "not a GGUF file (magic bytes \(hex.isEmpty ? "missing" : hex), expected 47 47 55 46 'GGUF')"
        case let .unsupportedVersion(_, version):
            let hint = version & 0xFFFF == 0 && version != 0 ? " (a big-endian GGUF?)" : ""
            text = "unsupported GGUF version \(version)\(hint); versions 2 and 3 are supported"
        case let .truncated(_, offset, needed, context):
            text = "truncated: \(context) needs \(needed) bytes at offset \(offset), past the end of the file"
        case let .countTooLarge(_, offset, count, context):
            text = "\(context) at offset \(offset) is \(count), more than the rest of the file can hold"
        case let .invalidUTF8(_, offset, context):
            text = "\(context) at offset \(offset) is not valid UTF-8"
        case let .unknownValueType(_, key, typeID):
            text = "metadata key \(q(key)): unknown value type \(typeID)"
        case let .invalidBool(_, key, byte):
            text = "metadata key \(q(key)): bool stored as \(byte), expected 0 or 1"
        case let .nestingTooDeep(_, key, limit):
            text = "metadata key \(q(key)): arrays nested deeper than \(limit) levels"
        case let .duplicateKey(_, key):
            text = "metadata key \(q(key)) appears more than once"
        case let .badAlignment(_, detail):
            text = "general.alignment \(GGUFError.sanitize(detail, limit: 120)): must be a uint32 nonzero power of two"
        case let .invalidTensor(_, tensor, reason):
            text = "tensor \(q(tensor)): \(GGUFError.sanitize(reason, limit: 200))"
        case let .unknownTensorType(_, tensor, typeID):
            text = "tensor \(q(tensor)): unknown GGML type id \(typeID)"
        case let .duplicateTensorName(_, tensor):
            text = "tensor name \(q(tensor)) appears more than once"
        case let .overlappingTensors(_, first, second):
            text = "data of tensors \(q(first)) and \(q(second)) overlaps"
        case let .invalidValue(_, key, reason):
            text = "metadata key \(q(key)): \(GGUFError.sanitize(reason, limit: 200))"
        case let .missingKey(_, key):
            text = "required metadata key \(q(key)) is missing"
        case let .wrongType(_, key, expected, found):
            text = "metadata key \(q(key)) holds \(found), expected \(expected)"
        }
        return "\(p): \(text)"
    }

    /// `s` with control characters escaped and cut to `limit` characters, so that text
    /// taken from a file stays on one line and readable.
    static func sanitize(_ s: String, limit: Int) -> String {
        var out = ""
        var n = 0
        for scalar in s.unicodeScalars {
            if n >= limit { out += "…"; break }
            switch scalar.value {
            case 0x20..<0x7F, 0xA0...:
                if scalar.properties.generalCategory == .lineSeparator
                    || scalar.properties.generalCategory == .paragraphSeparator {
                    out += "\\u{\(String(scalar.value, radix: 16))}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            default: out += "\\u{\(String(scalar.value, radix: 16))}"
            }
            n += 1
        }
        return out
    }
}
