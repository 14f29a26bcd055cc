import Foundation
import Testing

/// The quantizer tests (`swift test --filter QuantizeTests`): `Reference` (bytes against
/// gguf.quants), `RoundTrip` (errors and bytes against llama.cpp), `Searches` (the lane
/// searches against the scalar ones) and `Errors` (argument checking, threading).
@Suite struct QuantizeTests {}

/// Reads the fixtures that `scripts/fixtures/quantize.py` writes into
/// `<repo>/.cache/fixtures/quantize/` (see that script for what each file holds).
enum QuantizeFixtures {
    struct Input: Decodable {
        let name: String
        let rows: Int
        let rowLength: Int
        let source: String
    }

    struct Reference: Decodable {
        let input: String
        let type: String
    }

    struct Index: Decodable {
        let inputs: [Input]
        let references: [Reference]
        let importance: String
        let roundTrip: [Input]
    }

    struct Missing: Error, CustomStringConvertible {
        let path: String
        var description: String {
            "quantize fixture \(path) is missing or unreadable: run `python3 scripts/fixtures/quantize.py` "
                + "(after `bash scripts/fetch-models.sh`)"
        }
    }

    static let folder: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".cache/fixtures/quantize")

    static func index() throws -> Index {
        try JSONDecoder().decode(Index.self, from: data("index.json"))
    }

    static func data(_ file: String) throws -> Data {
        let url = folder.appendingPathComponent(file)
        guard let d = try? Data(contentsOf: url) else { throw Missing(path: url.path) }
        return d
    }

    /// A little-endian f32 file.
    static func floats(_ file: String) throws -> [Float] {
        let d = try data(file)
        precondition(d.count % 4 == 0, "\(file): size not a multiple of 4")
        return d.withUnsafeBytes { raw in
            (0..<d.count / 4).map {
                Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)))
            }
        }
    }

    /// The round-trip inputs (name → rows × 1536 weights) and the shared importance vector.
    static func roundTrip() throws -> (inputs: [(Input, [Float])], importance: [Float]) {
        let idx = try index()
        let inputs = try idx.roundTrip.map { ($0, try floats("\($0.name).f32")) }
        return (inputs, try floats(idx.importance))
    }
}

/// FNV-1a, 64-bit: a short fingerprint of quantized bytes, to compare with llama.cpp's.
func fnv1a64(_ bytes: [UInt8]) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes {
        h ^= UInt64(b)
        h = h &* 0x0000_0100_0000_01B3
    }
    return h
}
