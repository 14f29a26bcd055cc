import Testing
import Tensors
@testable import Quantization

/// Dequantization compared with the `gguf` Python package (llama.cpp's own reference), bit
/// for bit: both compute each weight with the same f32 operations in the same order.
@Suite struct CodecReferenceTests {
    @Test(arguments: Codecs.dequantizableTypes)
    func matchesReference(_ type: DType) throws {
        let cases = try CodecFixtures.index().cases.filter { $0.type == type.rawValue }
        #expect(!cases.isEmpty, "no fixture for \(type.rawValue): regenerate with python3 scripts/fixtures/codecs.py")
        for c in cases {
            try check(c, as: type)
        }
    }

    @Test func smolLM2Tensors() throws {
        let cases = try CodecFixtures.index().cases.filter { $0.name.hasPrefix("smollm2-") }
        let types = Set(cases.map(\.type))
        #expect(types.isSuperset(of: ["Q8_0", "Q4_1"]),
                "SmolLM2 fixtures missing: run bash scripts/fetch-models.sh, then python3 scripts/fixtures/codecs.py")
        for c in cases {
            let type = try #require(DType(rawValue: c.type))
            try check(c, as: type)
        }
    }

    /// Both entry points against the reference: the pointer one (one thread) and the array
    /// one (several threads above `Codecs.parallelThreshold` weights).
    private func check(_ c: CodecFixtures.Case, as type: DType) throws {
        let (bytes, reference) = try CodecFixtures.load(c)
        #expect(reference.count == c.count, "\(c.name): reference length")

        var viaPointer = [Float](repeating: .nan, count: c.count)
        try bytes.withUnsafeBytes { src in
            try viaPointer.withUnsafeMutableBufferPointer { dst in
                try Codecs.dequantize(type, from: src, count: c.count, into: dst.baseAddress!)
            }
        }
        let a = bitMismatches(viaPointer, reference)
        #expect(a.count == 0, "\(c.name) (\(c.source)): \(a.count) of \(c.count) differ: \(a.detail)")

        let viaArray = try bytes.withUnsafeBytes { try Codecs.dequantize(type, bytes: $0, count: c.count) }
        let b = bitMismatches(viaArray, reference)
        #expect(b.count == 0, "\(c.name) via [Float] API: \(b.count) of \(c.count) differ: \(b.detail)")
    }

    @Test func parallelDecodeMatchesSerial() throws {
        // 1001 blocks: more than the parallel threshold and not a multiple of the thread count.
        let type = DType.q4_K, blocks = 1001, count = blocks * type.blockSize
        var g = SplitMix64(seed: 7)
        var bytes = (0..<blocks * type.bytesPerBlock).map { _ in UInt8(truncatingIfNeeded: g.next()) }
        for b in 0..<blocks {  // finite d and dmin
            bytes[b * 144 + 1] &= 0x3B
            bytes[b * 144 + 3] &= 0x3B
        }
        #expect(count > Codecs.parallelThreshold)
        var serial = [Float](repeating: 0, count: count)
        try bytes.withUnsafeBytes { src in
            try serial.withUnsafeMutableBufferPointer {
                try Codecs.dequantize(type, from: src, count: count, into: $0.baseAddress!)
            }
        }
        let parallel = try bytes.withUnsafeBytes { try Codecs.dequantize(type, bytes: $0, count: count) }
        #expect(bitMismatches(parallel, serial).count == 0)
        #expect(serial.allSatisfy { $0.isFinite })
    }
}

/// A small deterministic generator for test data.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
