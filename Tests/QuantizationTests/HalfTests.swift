import Testing
import Tensors

/// `Half` (Sources/Tensors/Half.swift) against numpy (f16) and gguf.quants (bf16, ggml's
/// rounding), plus hand-checked edge cases.
@Suite struct HalfTests {
    @Test func f16ToFloatAllPatterns() throws {
        // random-F16 holds all 65536 bit patterns and numpy's widening of each.
        let want = try CodecFixtures.array("random-F16.f32", of: UInt32.self)
        let bits = try CodecFixtures.array("random-F16.bin", of: UInt16.self)
        try #require(bits.count == 65536 && want.count == 65536)
        let bad = bits.indices.filter { Half.f16ToFloat(bits[$0]).bitPattern != want[$0] }
        #expect(bad.isEmpty, "\(bad.count) differ, first: \(bad.prefix(5).map { String(bits[$0], radix: 16) })")
    }

    @Test func floatToF16MatchesNumpy() throws {
        // Every f16 value, every rounding tie between neighbours and the f32 values next to
        // it, boundaries, and random bits (NaNs excluded: see `nanToF16`).
        let input = try CodecFixtures.array("f32-to-f16.f32", of: UInt32.self)
        let want = try CodecFixtures.array("f32-to-f16.bin", of: UInt16.self)
        try #require(input.count == want.count && input.count > 400_000)
        let bad = input.indices.filter { Half.floatToF16(Float(bitPattern: input[$0])) != want[$0] }
        #expect(bad.isEmpty, "\(bad.count) differ, first inputs: \(bad.prefix(5).map { String(input[$0], radix: 16) })")
    }

    @Test func floatToBF16MatchesGGUF() throws {
        let input = try CodecFixtures.array("f32-to-bf16.f32", of: UInt32.self)
        let want = try CodecFixtures.array("f32-to-bf16.bin", of: UInt16.self)
        try #require(input.count == want.count && input.count > 400_000)
        let bad = input.indices.filter { Half.floatToBF16(Float(bitPattern: input[$0])) != want[$0] }
        #expect(bad.isEmpty, "\(bad.count) differ, first inputs: \(bad.prefix(5).map { String(input[$0], radix: 16) })")
    }

    @Test(arguments: [
        (Float(65504), UInt16(0x7BFF)),                 // largest finite
        (Float(65519.996), UInt16(0x7BFF)),             // just below the tie with 65536
        (Float(65520), UInt16(0x7C00)),                 // tie: to even, i.e. infinity
        (Float.infinity, UInt16(0x7C00)),
        (-Float.infinity, UInt16(0xFC00)),
        (Float(-0.0), UInt16(0x8000)),
        (Float(0x1p-24), UInt16(0x0001)),               // smallest subnormal
        (Float(0x1p-25), UInt16(0x0000)),               // tie with 0: to even
        (Float(0x1.8p-25), UInt16(0x0001)),
        (Float(0x2.8p-24), UInt16(0x0002)),             // subnormal tie: to even (down)
        (Float(0x3.8p-24), UInt16(0x0004)),             // subnormal tie: to even (up)
        (Float(0x1.ff8p-15), UInt16(0x03FF)),           // largest subnormal
        (Float(0x1.ffcp-15), UInt16(0x0400)),           // tie: rounds up out of the subnormals
        (Float(1 + 0x1p-11), UInt16(0x3C00)),           // tie: to even (down)
        (Float(1 + 0x3p-11), UInt16(0x3C02)),           // tie: to even (up)
    ])
    func floatToF16EdgeCases(_ x: Float, _ bits: UInt16) {
        #expect(Half.floatToF16(x) == bits, "\(x)")
    }

    @Test func nanToF16() {
        // ggml's software conversion: any NaN becomes the canonical quiet NaN, sign kept.
        // (numpy keeps the top payload bits instead; only NaN-ness and sign are compared.)
        for x: UInt32 in [0x7FC0_0000, 0x7F80_0001, 0x7FA0_0000, 0x7FFF_FFFF, 0xFFC0_0000, 0xFF80_0001] {
            let h = Half.floatToF16(Float(bitPattern: x))
            #expect(h & 0x7C00 == 0x7C00 && h & 0x03FF != 0, "\(String(x, radix: 16)) -> \(String(h, radix: 16))")
            #expect(h & 0x8000 == UInt16(x >> 16) & 0x8000)
            #expect(Half.f16ToFloat(h).isNaN)
        }
    }

    @Test func roundTrips() {
        for h in UInt16.min...UInt16.max where h & 0x7C00 != 0x7C00 || h & 0x03FF == 0 {
            #expect(Half.floatToF16(Half.f16ToFloat(h)) == h, "f16 \(String(h, radix: 16))")
        }
        for h in UInt16.min...UInt16.max where h & 0x7F80 != 0x7F80 || h & 0x007F == 0 {
            #expect(Half.floatToBF16(Half.bf16ToFloat(h)) == h, "bf16 \(String(h, radix: 16))")
        }
    }
}
