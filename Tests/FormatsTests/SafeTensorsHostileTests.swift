import Testing
@testable import Formats
import Tensors

/// Corrupt, truncated and hostile files: each must give a typed `SafeTensorsError` with a
/// one-line message naming the file, never a crash, hang or huge allocation.
@Suite struct SafeTensorsHostileTests {
    typealias F = SafeTensorsFixtures

    static let t4 = #""t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}"#

    /// (what, file bytes, expected error case)
    static let cases: [(String, [UInt8], String)] = [
        ("empty file", [], "tooShort"),
        ("7 bytes", [1, 0, 0, 0, 0, 0, 0], "tooShort"),
        ("length UInt64.max", F.file("{}", length: .max), "headerTooLarge"),
        ("length just over 100 MB", F.file("{}", length: 100_000_001), "headerTooLarge"),
        ("length past the end", F.file("{}", length: 1000), "headerPastEnd"),
        ("length 9 of 8", F.file("{}      ", length: 9), "headerPastEnd"),
        ("empty header", F.file(""), "invalidJSON"),
        ("array header", F.file("[]"), "invalidHeader"),
        ("unterminated", F.file(#"{"t":"#), "invalidJSON"),
        ("unterminated string", F.file(#"{"t"#), "invalidJSON"),
        ("trailing comma", F.file(#"{"a":null,}"#), "invalidJSON"),
        ("garbage after", F.file("{} x"), "invalidJSON"),
        ("NUL padding", F.file("{}\0\0\0\0\0\0"), "invalidJSON"),
        ("control char in name", F.file("{\"a\u{1}\":null}"), "invalidJSON"),
        ("bad escape", F.file(#"{"a\x":null}"#), "invalidJSON"),
        ("short unicode escape", F.file(#"{"a\u12":null}"#), "invalidJSON"),
        ("leading zero", F.file(#"{"t":{"dtype":"F32","shape":[01],"data_offsets":[0,4]}}"#), "invalidJSON"),
        ("depth bomb", F.file("{\"t\":{\"x\":" + String(repeating: "[", count: 100_000)), "invalidJSON"),
        ("invalid UTF-8 byte", F.file(rawHeader: Array(#"{"a"#.utf8) + [0xFF] + Array(#"":null}"#.utf8)), "invalidUTF8"),
        ("overlong UTF-8", F.file(rawHeader: Array(#"{"a"#.utf8) + [0xC0, 0xAF] + Array(#"":null}"#.utf8)), "invalidUTF8"),
        ("UTF-8 surrogate", F.file(rawHeader: Array(#"{"a"#.utf8) + [0xED, 0xA0, 0x80] + Array(#"":null}"#.utf8)), "invalidUTF8"),
        ("truncated UTF-8", F.file(rawHeader: Array(#"{"a"#.utf8) + [0xE2, 0x82] + Array(#"":null}"#.utf8)), "invalidUTF8"),
        ("lone surrogate escape", F.file(#"{"\ud800":null}"#), "invalidUTF8"),
        ("lone low surrogate", F.file(#"{"\udc00x":null}"#), "invalidUTF8"),
        ("entry not an object", F.file(#"{"t":[1]}"#), "invalidHeader"),
        ("missing dtype", F.file(#"{"t":{"shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), "invalidHeader"),
        ("missing shape", F.file(#"{"t":{"dtype":"F32","data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), "invalidHeader"),
        ("missing offsets", F.file(#"{"t":{"dtype":"F32","shape":[1]}}"#, data: [0, 0, 0, 0]), "invalidHeader"),
        ("dtype twice", F.file(#"{"t":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#), "invalidHeader"),
        ("dtype not a string", F.file(#"{"t":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}"#), "invalidHeader"),
        ("shape not an array", F.file(#"{"t":{"dtype":"F32","shape":4,"data_offsets":[0,4]}}"#), "invalidHeader"),
        ("string in shape", F.file(#"{"t":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}}"#), "invalidHeader"),
        ("float offsets", F.file(#"{"t":{"dtype":"F32","shape":[1],"data_offsets":[0.0,4]}}"#, data: [0, 0, 0, 0]), "invalidHeader"),
        ("metadata not an object", F.file(#"{"__metadata__":[]}"#), "invalidHeader"),
        ("metadata number value", F.file(#"{"__metadata__":{"a":1}}"#), "invalidHeader"),
        ("unknown dtype", F.file(#"{"t":{"dtype":"F4","shape":[1],"data_offsets":[0,1]}}"#, data: [0]), "unknownDType"),
        ("GGML dtype", F.file(#"{"t":{"dtype":"Q4_0","shape":[32],"data_offsets":[0,18]}}"#), "unknownDType"),
        ("lower-case dtype", F.file(#"{"t":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}"#), "unknownDType"),
        ("negative dim", F.file(#"{"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#), "invalidShape"),
        ("element overflow", F.file(#"{"t":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}}"#), "invalidShape"),
        ("byte overflow", F.file(#"{"t":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}}"#), "invalidShape"),
        ("dim beyond Int", F.file(#"{"t":{"dtype":"U8","shape":[99999999999999999999],"data_offsets":[0,0]}}"#), "invalidShape"),
        ("dim below Int", F.file(#"{"t":{"dtype":"U8","shape":[-99999999999999999999],"data_offsets":[0,0]}}"#), "invalidShape"),
        ("rank 65", F.file(#"{"t":{"dtype":"U8","shape":["# + Array(repeating: "1", count: 65).joined(separator: ",") + #"],"data_offsets":[0,1]}}"#), "invalidShape"),
        ("three offsets", F.file(#"{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}"#), "invalidOffsets"),
        ("one offset", F.file(#"{"t":{"dtype":"F32","shape":[1],"data_offsets":[4]}}"#), "invalidOffsets"),
        ("end before begin", F.file(#"{"t":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}"#, data: [UInt8](repeating: 0, count: 8)), "invalidOffsets"),
        ("negative offset", F.file(#"{"t":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}"#), "invalidOffsets"),
        ("huge offsets", F.file(#"{"t":{"dtype":"U8","shape":[1],"data_offsets":[9223372036854775806,9223372036854775807]}}"#), "offsetsPastEnd"),
        ("offsets beyond Int", F.file(#"{"t":{"dtype":"U8","shape":[0],"data_offsets":[18446744073709551615,18446744073709551615]}}"#), "offsetsPastEnd"),
        ("size mismatch", F.file(#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), "sizeMismatch"),
        ("past the end", F.file("{" + t4 + "}", data: [0, 0, 0]), "offsetsPastEnd"),
        ("overlap", F.file("{" + t4 + #","u":{"dtype":"U8","shape":[2],"data_offsets":[3,5]}}"#, data: [UInt8](repeating: 0, count: 5)), "overlap"),
        ("same range twice", F.file("{" + t4 + #","u":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), "overlap"),
        ("empty inside another", F.file("{" + t4 + #","u":{"dtype":"F32","shape":[0],"data_offsets":[2,2]}}"#, data: [0, 0, 0, 0]), "overlap"),
        ("hole", F.file(#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}"#, data: [0, 0, 0]), "uncoveredData"),
        ("hole at start", F.file(#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#, data: [0, 0]), "uncoveredData"),
        ("trailing data", F.file("{" + t4 + "}", data: [0, 0, 0, 0, 0]), "uncoveredData"),
        ("data but no tensors", F.file("{}", data: [1]), "uncoveredData"),
        ("duplicate tensor", F.file("{" + t4 + "," + t4 + "}", data: [0, 0, 0, 0]), "duplicateName"),
        ("duplicate metadata", F.file(#"{"__metadata__":{},"__metadata__":{}}"#), "duplicateName"),
        ("duplicate metadata key", F.file(#"{"__metadata__":{"a":"1","a":"2"}}"#), "duplicateName"),
    ]

    @Test(arguments: cases.indices)
    func hostileFileGivesTypedError(_ i: Int) {
        let (what, bytes, expected) = Self.cases[i]
        do {
            let file = try SafeTensorsFile(bytes: bytes, path: "hostile.safetensors")
            Issue.record("\(what): accepted, \(file.tensors.count) tensors")
        } catch let error as SafeTensorsError {
            #expect(F.caseName(error) == expected, "\(what): \(error)")
            #expect(error.description.hasPrefix("hostile.safetensors: "), "\(what)")
            #expect(!error.description.contains("\n"), "\(what)")
        } catch {
            Issue.record("\(what): untyped error \(error)")
        }
    }

    @Test func hostileNamesStayOnOneLine() throws {
        let escapedName = #"evil\nname\u0007"# + String(repeating: "x", count: 10_000)
        let header = #"{""# + escapedName + #"":{"dtype":"X","shape":[],"data_offsets":[0,0]}}"#
        do {
            _ = try SafeTensorsFile(bytes: F.file(header))
            Issue.record("accepted")
        } catch let error as SafeTensorsError {
            #expect(F.caseName(error) == "unknownDType")
            #expect(!error.description.contains("\n") && !error.description.contains("\u{7}"))
            #expect(error.description.count < 400)
        }
    }

    @Test func missingAndNonRegularFiles() {
        #expect(throws: SafeTensorsError.self) { try SafeTensorsFile(path: "/nonexistent/model.safetensors") }
        do {
            _ = try SafeTensorsFile(path: "/tmp")
        } catch let error as SafeTensorsError {
            #expect(F.caseName(error) == "cannotOpen")
            #expect(error.description.hasPrefix("/tmp: "))
        } catch {
            Issue.record("untyped \(error)")
        }
    }

    /// Cuts the real file at many points: before the length field, through the header, at
    /// its end, and through the data. Every cut gives a typed error.
    @Test func truncationsOfRealFile() throws {
        let mapped = try MappedFile(path: try F.miniLMFolder() + "/model.safetensors")
        let headerEnd = 8 + 11408
        var cuts = Array(0..<24) + Array(stride(from: 24, to: headerEnd, by: 37))
        cuts += [headerEnd - 8, headerEnd - 1, headerEnd, headerEnd + 1]
        cuts += stride(from: headerEnd + 2, to: mapped.count, by: mapped.count / 300).map { $0 }
        cuts += [mapped.count - 4, mapped.count - 1]
        var seen: [String: Int] = [:]
        for cut in cuts {
            let prefix = UnsafeRawBufferPointer(rebasing: mapped.bytes[0..<cut])
            do {
                _ = try SafeTensorsHeader(parsing: prefix, path: "cut.safetensors")
                Issue.record("truncation at \(cut) accepted")
            } catch {
                seen[F.caseName(error), default: 0] += 1
                #expect(error.description.hasPrefix("cut.safetensors: "))
            }
        }
        #expect(Set(seen.keys) == ["tooShort", "headerPastEnd", "offsetsPastEnd"], "\(seen)")
        // A truncated copy through the public API, too.
        let short = Array(mapped.bytes[0..<(headerEnd + 1000)])
        #expect(throws: SafeTensorsError.self) { try SafeTensorsFile(bytes: short) }
    }

    /// Random byte flips in the real header (deterministic): each result is either a valid
    /// file or a typed error.
    @Test func mutatedHeadersOfRealFile() throws {
        let mapped = try MappedFile(path: try F.miniLMFolder() + "/model.safetensors")
        let headerEnd = 8 + 11408
        // One writable copy of the file; header bytes are mutated in place and restored.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: mapped.count, alignment: 64)
        defer { buffer.deallocate() }
        buffer.copyMemory(from: mapped.bytes)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(truncatingIfNeeded: state >> 33)
        }
        let interesting: [UInt8] = Array("{}[]\",:0123456789-.eE \\u".utf8) + [0x00, 0x80, 0xC3, 0xFF]
        var outcomes: [String: Int] = [:]
        for _ in 0..<3000 {
            var changed: [(Int, UInt8)] = []
            for _ in 0..<(1 + next() % 3) {
                let at = next() % headerEnd
                changed.append((at, buffer[at]))
                buffer[at] = next() % 2 == 0 ? interesting[next() % interesting.count] : UInt8(truncatingIfNeeded: next())
            }
            do {
                _ = try SafeTensorsHeader(parsing: UnsafeRawBufferPointer(buffer), path: "m")
                outcomes["ok", default: 0] += 1
            } catch {
                outcomes[F.caseName(error), default: 0] += 1
            }
            for (at, old) in changed.reversed() { buffer[at] = old }
        }
        #expect(outcomes.values.reduce(0, +) == 3000)
        #expect(outcomes.count > 3, "\(outcomes)")
    }
}

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
