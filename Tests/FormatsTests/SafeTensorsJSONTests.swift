import Testing
@testable import Formats

/// The strict JSON reader behind the safetensors header and index.
@Suite struct SafeTensorsJSONTests {
    func parse(_ s: String, maxDepth: Int = 128) throws(JSONError) -> JSONValue { try JSONValue.parse(Array(s.utf8), maxDepth: maxDepth) }

    @Test func keepsOrderAndLiterals() throws {
        let v = try parse(#" {"z":1,"a":[true,false,null,-0.5e+3,"x\ty"],"m":{}} "#)
        #expect(v.objectValue?.map(\.key) == ["z", "a", "m"])
        #expect(v["z"]?.intValue == 1)
        #expect(v["a"] == .array([.bool(true), .bool(false), .null, .number("-0.5e+3"), .string("x\ty")]))
        #expect(v["a"]?.arrayValue?[3].doubleValue == -500)
        #expect(v["m"] == .object([]))
        #expect(v["nope"] == nil)
        #expect(try parse(#""\u00e9\ud83d\ude00\/\\\"\b\f\n\r""#) == .string("é😀/\\\"\u{8}\u{c}\n\r"))
        #expect(try parse("123456789012345678901234567890").intValue == nil)  // kept as text
    }

    @Test func rejectsMalformed() {
        let bad: [(String, JSONError.Kind)] = [
            ("", .syntax), ("{", .syntax), ("[1,]", .syntax), ("[,1]", .syntax), (#"{"a":1,}"#, .syntax),
            (#"{"a" 1}"#, .syntax), ("01", .syntax), ("1.", .syntax), (".5", .syntax), ("1e", .syntax),
            ("-", .syntax), ("+1", .syntax), ("tru", .syntax), ("nul", .syntax), ("NaN", .syntax),
            ("[1] 2", .syntax), ("'a'", .syntax), ("\"a\u{1}\"", .syntax), (#""\x""#, .syntax),
            (#""\u12""#, .syntax), (#""\uZZZZ""#, .syntax), ("\"abc", .syntax),
            (#""\ud800""#, .invalidUTF8), (#""\ud800\u0041""#, .invalidUTF8), (#""\udfff""#, .invalidUTF8),
            (#"{"a":1,"a":2}"#, .duplicateKey),
        ]
        for (text, kind) in bad {
            do {
                _ = try parse(text)
                Issue.record("accepted \(text)")
            } catch {
                #expect(error.kind == kind, "\(text): \(error)")
            }
        }
        #expect(throws: JSONError.self) { try JSONValue.parse([0x22, 0xC3, 0x28, 0x22]) }
        #expect(throws: JSONError.self) { try JSONValue.parse([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22]) }  // > U+10FFFF
    }

    @Test func depthLimit() throws {
        #expect(try parse(String(repeating: "[", count: 10) + String(repeating: "]", count: 10), maxDepth: 10) != .null)
        do {
            _ = try parse(String(repeating: "[", count: 11) + String(repeating: "]", count: 11), maxDepth: 10)
            Issue.record("too deep accepted")
        } catch {
            #expect(error.kind == .tooDeep)
        }
        // Deep input is stopped early, not by a stack overflow.
        #expect(throws: JSONError.self) { try parse(String(repeating: "[", count: 1_000_000)) }
    }

    @Test func utf8Validation() {
        func check(_ bytes: [UInt8]) -> Int? { UTF8Validation.firstInvalidByte(bytes) }
        #expect(check(Array("aé€😀".utf8)) == nil)
        #expect(check([0x61, 0x80]) == 1)
        #expect(check([0xC1, 0xBF]) == 0)  // overlong
        #expect(check([0xE0, 0x9F, 0xBF]) == 0)  // overlong
        #expect(check([0xED, 0xBF, 0xBF]) == 0)  // surrogate
        #expect(check([0xF0, 0x8F, 0xBF, 0xBF]) == 0)  // overlong
        #expect(check([0xF4, 0x8F, 0xBF, 0xBF]) == nil)  // U+10FFFF
        #expect(check([0xF5, 0x80, 0x80, 0x80]) == 0)
        #expect(check([0x61, 0xE2, 0x82]) == 1)  // truncated
    }
}
