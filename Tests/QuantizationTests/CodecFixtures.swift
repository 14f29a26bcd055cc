import Foundation

/// Reads the reference fixtures that `scripts/fixtures/codecs.py` writes into
/// `<repo>/.cache/fixtures/codecs/` (see that script for the format and where each case's
/// reference comes from).
enum CodecFixtures {
    struct Case: Decodable {
        let name: String
        let type: String
        let count: Int
        let source: String
    }

    struct Conversion: Decodable {
        let name: String
        let kind: String
        let count: Int
    }

    struct Index: Decodable {
        let cases: [Case]
        let conversions: [Conversion]
    }

    struct Missing: Error, CustomStringConvertible {
        let path: String
        var description: String {
            "codec fixture \(path) is missing or unreadable: run `python3 scripts/fixtures/codecs.py` "
                + "(after `bash scripts/fetch-models.sh` for the SmolLM2 cases)"
        }
    }

    static let folder: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".cache/fixtures/codecs")

    static func index() throws -> Index {
        try JSONDecoder().decode(Index.self, from: data("index.json"))
    }

    static func data(_ file: String) throws -> Data {
        let url = folder.appendingPathComponent(file)
        guard let d = try? Data(contentsOf: url) else { throw Missing(path: url.path) }
        return d
    }

    /// A little-endian array of `T` from a fixture file.
    static func array<T: FixedWidthInteger>(_ file: String, of _: T.Type) throws -> [T] {
        let d = try data(file)
        precondition(d.count % MemoryLayout<T>.size == 0, "\(file): size not a multiple of \(T.self)")
        return d.withUnsafeBytes { raw in
            (0..<d.count / MemoryLayout<T>.size).map {
                T(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self))
            }
        }
    }

    /// A case's raw bytes and reference floats.
    static func load(_ c: Case) throws -> (bytes: [UInt8], reference: [Float]) {
        let bytes = [UInt8](try data("\(c.name).bin"))
        let reference = try array("\(c.name).f32", of: UInt32.self).map(Float.init(bitPattern:))
        return (bytes, reference)
    }
}

/// Indices where two float arrays differ in bits, with a short description of the first few.
func bitMismatches(_ got: [Float], _ want: [Float], limit: Int = 5) -> (count: Int, detail: String) {
    guard got.count == want.count else { return (max(got.count, want.count), "lengths \(got.count) vs \(want.count)") }
    var count = 0, detail: [String] = []
    for i in got.indices where got[i].bitPattern != want[i].bitPattern {
        count += 1
        if detail.count < limit { detail.append("[\(i)] \(got[i]) vs \(want[i])") }
    }
    return (count, detail.joined(separator: ", "))
}
