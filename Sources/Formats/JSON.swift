// A small strict JSON reader (RFC 8259) that keeps object members in document order.
//
// Foundation's JSONSerialization loses member order, which a byte-identical safetensors
// round trip needs, and builds a whole tree even where a caller only wants a few typed
// fields. `JSONScanner` is the pull parser the safetensors header reader drives directly;
// `JSONValue` is the tree for everything else (shard indexes, tokenizer files).
//
// Hostile input is bounded: nesting depth is capped, every read is bounds-checked, and no
// allocation is larger than a constant multiple of the input.

/// A parsed JSON value. Object members keep the order they had in the document, and
/// numbers keep their literal spelling so that no precision is lost before the caller
/// decides what type it wants.
public enum JSONValue: Equatable, Sendable {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A number, as its literal text (validated against the JSON grammar).
    case number(String)
    /// A string, with escapes decoded.
    case string(String)
    /// An array.
    case array([JSONValue])
    /// An object, members in document order.
    case object([JSONMember])

    /// Parses one JSON document (surrounding whitespace allowed).
    ///
    /// - Parameters:
    ///   - bytes: UTF-8 encoded JSON.
    ///   - maxDepth: the deepest nesting of arrays and objects accepted.
    ///   - allowDuplicateKeys: when false, an object with a repeated key is an error.
    /// - Throws: `JSONError` naming the byte offset of the problem.
    public static func parse(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = 128,
                             allowDuplicateKeys: Bool = false) throws(JSONError) -> JSONValue {
        var scanner = JSONScanner(bytes, maxDepth: maxDepth)
        scanner.allowDuplicateKeys = allowDuplicateKeys
        scanner.skipWhitespace()
        let value = try scanner.readValue()
        try scanner.expectEnd()
        return value
    }

    /// Parses one JSON document from an array of UTF-8 bytes; see `parse(_:maxDepth:allowDuplicateKeys:)`.
    public static func parse(_ bytes: [UInt8], maxDepth: Int = 128,
                             allowDuplicateKeys: Bool = false) throws(JSONError) -> JSONValue {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(JSONError) in try parse(raw, maxDepth: maxDepth, allowDuplicateKeys: allowDuplicateKeys) }
        }
        return try result.get()
    }

    /// The value of member `key` when this is an object that has it (first match).
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    /// The string, when this is a string.
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The integer, when this is a number written as an integer that fits in `Int`.
    public var intValue: Int? {
        if case .number(let literal) = self { return Int(literal) }
        return nil
    }

    /// The number as a `Double`, when this is a number.
    public var doubleValue: Double? {
        if case .number(let literal) = self { return Double(literal) }
        return nil
    }

    /// The Boolean, when this is `true` or `false`.
    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// The elements, when this is an array.
    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// The members in document order, when this is an object.
    public var objectValue: [JSONMember]? {
        if case .object(let m) = self { return m }
        return nil
    }
}

/// One `"key": value` member of a JSON object.
public struct JSONMember: Equatable, Sendable {
    /// The member's name.
    public var key: String
    /// The member's value.
    public var value: JSONValue

    /// A member with the given key and value.
    public init(key: String, value: JSONValue) {
        self.key = key
        self.value = value
    }
}

/// Why a JSON document was rejected, and where.
public struct JSONError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The class of problem.
    public enum Kind: Equatable, Sendable {
        /// The bytes do not follow the JSON grammar.
        case syntax
        /// A string holds bytes that are not well-formed UTF-8 (or a lone surrogate escape).
        case invalidUTF8
        /// Arrays and objects are nested deeper than allowed.
        case tooDeep
        /// An object repeats a key (only when duplicates are not allowed).
        case duplicateKey
    }

    /// The class of problem.
    public let kind: Kind
    /// What was wrong, in a few words.
    public let message: String
    /// Byte offset in the document where the problem was found.
    public let offset: Int

    /// A JSON error of the given kind at `offset`.
    public init(_ kind: Kind, _ message: String, at offset: Int) {
        self.kind = kind
        self.message = message
        self.offset = offset
    }

    /// "byte N: message".
    public var description: String { "byte \(offset): \(message)" }
}

/// A pull parser over UTF-8 bytes. Callers walk objects with `beginObject`/`nextKey` and
/// arrays with `beginArray`/`nextElement`, read scalars directly, and `readValue` whatever
/// they do not model.
struct JSONScanner {
    let bytes: UnsafeRawBufferPointer
    var position = 0
    let maxDepth: Int
    var depth = 0
    var allowDuplicateKeys = true

    init(_ bytes: UnsafeRawBufferPointer, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    var isAtEnd: Bool { position >= bytes.count }

    func peek() -> UInt8? { position < bytes.count ? bytes[position] : nil }

    func error(_ message: String, at offset: Int? = nil) -> JSONError {
        JSONError(.syntax, message, at: offset ?? position)
    }

    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    /// Succeeds when only whitespace is left.
    mutating func expectEnd() throws(JSONError) {
        skipWhitespace()
        if !isAtEnd { throw error("unexpected data after the JSON value") }
    }

    mutating func expect(_ byte: UInt8, _ what: String) throws(JSONError) {
        guard peek() == byte else {
            throw error(isAtEnd ? "unexpected end, expected \(what)" : "expected \(what)")
        }
        position += 1
    }

    // MARK: Containers

    mutating func beginObject() throws(JSONError) {
        skipWhitespace()
        try expect(UInt8(ascii: "{"), "'{'")
        try enter()
    }

    /// The next member's key (the scanner then sits at its value), or nil after the
    /// closing brace. `first` must start true for each object.
    mutating func nextKey(_ first: inout Bool) throws(JSONError) -> String? {
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            position += 1
            depth -= 1
            return nil
        }
        if !first {
            try expect(UInt8(ascii: ","), "',' or '}'")
            skipWhitespace()
        }
        first = false
        guard peek() == UInt8(ascii: "\"") else {
            throw error(isAtEnd ? "unexpected end, expected a key" : "expected a string key")
        }
        let key = try readString()
        skipWhitespace()
        try expect(UInt8(ascii: ":"), "':'")
        skipWhitespace()
        return key
    }

    mutating func beginArray() throws(JSONError) {
        skipWhitespace()
        try expect(UInt8(ascii: "["), "'['")
        try enter()
    }

    /// True when another element follows (the scanner then sits at it), false after the
    /// closing bracket. `first` must start true for each array.
    mutating func nextElement(_ first: inout Bool) throws(JSONError) -> Bool {
        skipWhitespace()
        if peek() == UInt8(ascii: "]") {
            position += 1
            depth -= 1
            return false
        }
        if !first {
            try expect(UInt8(ascii: ","), "',' or ']'")
            skipWhitespace()
        }
        first = false
        if isAtEnd { throw error("unexpected end inside an array") }
        return true
    }

    private mutating func enter() throws(JSONError) {
        depth += 1
        if depth > maxDepth {
            throw JSONError(.tooDeep, "nesting deeper than \(maxDepth)", at: position - 1)
        }
    }

    // MARK: Values

    /// Reads any value at the current position (after optional whitespace).
    mutating func readValue() throws(JSONError) -> JSONValue {
        skipWhitespace()
        guard let b = peek() else { throw error("unexpected end, expected a value") }
        switch b {
        case UInt8(ascii: "{"):
            try beginObject()
            var members: [JSONMember] = []
            var seen = Set<String>()
            var first = true
            while true {
                let keyOffset = position
                guard let key = try nextKey(&first) else { break }
                if !allowDuplicateKeys && !seen.insert(key).inserted {
                    throw JSONError(.duplicateKey, "duplicate key \(JSONText.quoted(key))", at: keyOffset)
                }
                members.append(JSONMember(key: key, value: try readValue()))
            }
            return .object(members)
        case UInt8(ascii: "["):
            try beginArray()
            var elements: [JSONValue] = []
            var first = true
            while try nextElement(&first) { elements.append(try readValue()) }
            return .array(elements)
        case UInt8(ascii: "\""):
            return .string(try readString())
        case UInt8(ascii: "t"):
            try readKeyword("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try readKeyword("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try readKeyword("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .number(try readNumber())
        default:
            throw error("unexpected byte 0x\(String(b, radix: 16)), expected a value")
        }
    }

    /// Checks the value at the current position against the grammar without keeping it
    /// (strings and numbers are decoded and dropped, so memory stays bounded).
    mutating func skipValue() throws(JSONError) {
        skipWhitespace()
        switch peek() {
        case UInt8(ascii: "{")?:
            try beginObject()
            var first = true
            while try nextKey(&first) != nil { try skipValue() }
        case UInt8(ascii: "[")?:
            try beginArray()
            var first = true
            while try nextElement(&first) { try skipValue() }
        case UInt8(ascii: "\"")?:
            _ = try readString()
        case UInt8(ascii: "-")?, (UInt8(ascii: "0")...UInt8(ascii: "9"))?:
            _ = try readNumber()
        default:
            _ = try readValue()  // keywords, and the error for anything else
        }
    }

    private mutating func readKeyword(_ word: StaticString) throws(JSONError) {
        let start = position
        for expected in UnsafeRawBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount) {
            guard peek() == expected else { throw error("invalid literal", at: start) }
            position += 1
        }
    }

    /// Reads a number and returns its literal text.
    mutating func readNumber() throws(JSONError) -> String {
        let start = position
        func isDigit(_ b: UInt8?) -> Bool { b.map { $0 >= 0x30 && $0 <= 0x39 } ?? false }
        if peek() == UInt8(ascii: "-") { position += 1 }
        guard isDigit(peek()) else { throw error("invalid number", at: start) }
        if peek() == UInt8(ascii: "0") {
            position += 1
            if isDigit(peek()) { throw error("leading zero in number", at: start) }
        } else {
            while isDigit(peek()) { position += 1 }
        }
        if peek() == UInt8(ascii: ".") {
            position += 1
            guard isDigit(peek()) else { throw error("invalid number", at: start) }
            while isDigit(peek()) { position += 1 }
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            position += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { position += 1 }
            guard isDigit(peek()) else { throw error("invalid number", at: start) }
            while isDigit(peek()) { position += 1 }
        }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
    }

    /// Reads a string (the scanner must sit at its opening quote) and decodes its escapes.
    mutating func readString() throws(JSONError) -> String {
        let quote = position
        try expect(UInt8(ascii: "\""), "'\"'")
        let start = position
        var escaped = false, ascii = true
        while true {
            guard position < bytes.count else { throw error("unterminated string", at: quote) }
            let b = bytes[position]
            if b == UInt8(ascii: "\"") { break }
            if b == UInt8(ascii: "\\") {
                escaped = true
                position += 2
                continue
            }
            if b < 0x20 { throw error("control character in string") }
            if b >= 0x80 { ascii = false }
            position += 1
        }
        let raw = UnsafeRawBufferPointer(rebasing: bytes[start..<position])
        position += 1
        if !escaped {
            if !ascii, let bad = UTF8Validation.firstInvalidByte(raw) {
                throw JSONError(.invalidUTF8, "invalid UTF-8 in string", at: start + bad)
            }
            return String(decoding: raw, as: UTF8.self)
        }
        return try decodeEscapes(raw, offset: start)
    }

    private func decodeEscapes(_ raw: UnsafeRawBufferPointer, offset: Int) throws(JSONError) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var i = 0
        func hex4(_ at: Int) throws(JSONError) -> UInt32 {
            guard at + 4 <= raw.count else { throw error("truncated \\u escape", at: offset + at) }
            var v: UInt32 = 0
            for k in at..<(at + 4) {
                let c = raw[k]
                let d: UInt8
                switch c {
                case 0x30...0x39: d = c - 0x30
                case 0x41...0x46: d = c - 0x41 + 10
                case 0x61...0x66: d = c - 0x61 + 10
                default: throw error("invalid \\u escape", at: offset + at)
                }
                v = v << 4 | UInt32(d)
            }
            return v
        }
        while i < raw.count {
            let b = raw[i]
            guard b == UInt8(ascii: "\\") else {
                out.append(b)
                i += 1
                continue
            }
            let kind = raw[i + 1]  // the scan loop guarantees a byte after each backslash
            i += 2
            switch kind {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(kind)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4(i)
                i += 4
                if scalar >= 0xDC00 && scalar <= 0xDFFF {
                    throw JSONError(.invalidUTF8, "lone low surrogate escape", at: offset + i - 6)
                }
                if scalar >= 0xD800 && scalar <= 0xDBFF {
                    guard i + 6 <= raw.count, raw[i] == UInt8(ascii: "\\"), raw[i + 1] == UInt8(ascii: "u")
                    else { throw JSONError(.invalidUTF8, "lone high surrogate escape", at: offset + i - 6) }
                    let low = try hex4(i + 2)
                    guard low >= 0xDC00 && low <= 0xDFFF else {
                        throw JSONError(.invalidUTF8, "lone high surrogate escape", at: offset + i - 6)
                    }
                    i += 6
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                // Every scalar here is valid: surrogates were handled above.
                out.append(contentsOf: Unicode.UTF8.encode(Unicode.Scalar(scalar)!)!)
            default:
                throw error("invalid escape", at: offset + i - 2)
            }
        }
        if let bad = UTF8Validation.firstInvalidByte(out) {
            throw JSONError(.invalidUTF8, "invalid UTF-8 in string", at: offset + bad)
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Strict UTF-8 validation (no overlong forms, no surrogates, nothing above U+10FFFF).
/// Written out because `String(validating:)` needs macOS 15.
enum UTF8Validation {
    /// Index of the first byte of the first ill-formed sequence, or nil when all is valid.
    static func firstInvalidByte<C: RandomAccessCollection>(_ s: C) -> Int? where C.Element == UInt8, C.Index == Int {
        var i = s.startIndex
        let end = s.endIndex
        while i < end {
            let b0 = s[i]
            if b0 < 0x80 { i += 1; continue }
            let length: Int, lo: UInt8, hi: UInt8  // bounds of the second byte
            switch b0 {
            case 0xC2...0xDF: length = 2; lo = 0x80; hi = 0xBF
            case 0xE0: length = 3; lo = 0xA0; hi = 0xBF
            case 0xE1...0xEC, 0xEE...0xEF: length = 3; lo = 0x80; hi = 0xBF
            case 0xED: length = 3; lo = 0x80; hi = 0x9F
            case 0xF0: length = 4; lo = 0x90; hi = 0xBF
            case 0xF1...0xF3: length = 4; lo = 0x80; hi = 0xBF
            case 0xF4: length = 4; lo = 0x80; hi = 0x8F
            default: return i - s.startIndex
            }
            guard end - i >= length, s[i + 1] >= lo, s[i + 1] <= hi else { return i - s.startIndex }
            for k in 2..<length where s[i + k] & 0xC0 != 0x80 { return i - s.startIndex }
            i += length
        }
        return nil
    }
}

/// Writing JSON strings the way common producers do, so files round-trip byte for byte.
enum JSONText {
    /// Appends `s` as a JSON string literal in serde_json's style (used by the Rust
    /// safetensors library): escapes `"` `\` and control characters (`\n`, `\t`, …,
    /// otherwise `\u00XX` in lower-case hex); leaves `/` and non-ASCII as they are.
    static func appendSerdeString(_ s: String, to out: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out += [0x5C, 0x22]
            case UInt8(ascii: "\\"): out += [0x5C, 0x5C]
            case 0x08: out += [0x5C, UInt8(ascii: "b")]
            case 0x0C: out += [0x5C, UInt8(ascii: "f")]
            case 0x0A: out += [0x5C, UInt8(ascii: "n")]
            case 0x0D: out += [0x5C, UInt8(ascii: "r")]
            case 0x09: out += [0x5C, UInt8(ascii: "t")]
            case 0..<0x20: out += Array("\\u00".utf8) + [hex[Int(b >> 4)], hex[Int(b & 15)]]
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Appends `s` as a JSON string literal in Python's `json.dumps` style
    /// (`ensure_ascii=True`, used by transformers for index files): everything outside
    /// printable ASCII becomes `\uXXXX` (surrogate pairs above U+FFFF).
    static func appendPythonString(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for unit in s.utf16 {
            switch unit {
            case 0x22: out += [0x5C, 0x22]
            case 0x5C: out += [0x5C, 0x5C]
            case 0x0A: out += [0x5C, UInt8(ascii: "n")]
            case 0x0D: out += [0x5C, UInt8(ascii: "r")]
            case 0x09: out += [0x5C, UInt8(ascii: "t")]
            case 0x08: out += [0x5C, UInt8(ascii: "b")]
            case 0x0C: out += [0x5C, UInt8(ascii: "f")]
            case 0x20...0x7E: out.append(UInt8(unit))
            default:
                let digits = String(unit, radix: 16)
                out += Array(("\\u" + String(repeating: "0", count: 4 - digits.count) + digits).utf8)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// `s` quoted and escaped for a one-line error message, shortened past 200 characters.
    static func quoted(_ s: String) -> String {
        var out: [UInt8] = []
        let short = s.count > 200 ? String(s.prefix(200)) + "…" : s
        appendSerdeString(short, to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
