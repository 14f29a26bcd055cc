import Testing
@testable import Quantization

/// FP8 E4M3 / E5M2 casting: exact values of known conversions, saturation, subnormals,
/// round-to-nearest-even against a brute-force search, and scaled matrices.
@Suite struct ToolkitFP8Tests {
    static let e4m3Cases: [(Float, UInt8)] = [
        (448, 0x7E), (1000, 0x7E), (-1000, 0xFE), (Float.infinity, 0x7E), (-Float.infinity, 0xFE),
        (464, 0x7E),            // tie between 448 and 480: 448 has the even mantissa
        (1, 0x38), (-2, 0xC0), (240, 0x77), (0.015625, 0x08),  // 2^-6: the smallest normal
        (0.001953125, 0x01),    // 2^-9: the smallest subnormal
        (0.0009765625, 0x00),   // half of it: a tie, to even (zero)
        (0.0009765626, 0x01),
        (0.0029296875, 0x02),   // 1.5 subnormal steps: tie, to even (2)
        (0.013671875, 0x07),    // the largest subnormal, 7 · 2^-9
        (1.0625, 0x38), (1.1875, 0x3A), (0, 0x00), (-0.0, 0x80),
    ]

    @Test(arguments: e4m3Cases)
    func e4m3Known(_ x: Float, _ code: UInt8) {
        #expect(FP8Format.e4m3.encode(x) == code, "\(x)")
    }

    static let e5m2Cases: [(Float, UInt8)] = [
        (57344, 0x7B), (1e6, 0x7B), (-Float.infinity, 0xFB), (1, 0x3C), (-1, 0xBC),
        (1.125, 0x3C),          // tie between 1 and 1.25: to even
        (1.375, 0x3E),          // tie between 1.25 and 1.5: to even (1.5)
        (0.0000152587890625, 0x01),  // 2^-16, the smallest subnormal
        (0.00006103515625, 0x04),    // 2^-14, the smallest normal
        (61440, 0x7B),          // a tie with the first value past max: saturates
    ]

    @Test(arguments: e5m2Cases)
    func e5m2Known(_ x: Float, _ code: UInt8) {
        #expect(FP8Format.e5m2.encode(x) == code, "\(x)")
    }

    @Test func decodeKnown() {
        #expect(FP8Format.e4m3.decode(0x7E) == 448 && FP8Format.e4m3.decode(0x01) == 0.001953125)
        #expect(FP8Format.e4m3.decode(0x7F).isNaN && FP8Format.e4m3.decode(0xFF).isNaN)
        #expect(FP8Format.e4m3.decode(0x78) == 256 && FP8Format.e4m3.decode(0xB8) == -1)
        #expect(FP8Format.e5m2.decode(0x7B) == 57344 && FP8Format.e5m2.decode(0x7C) == .infinity)
        #expect(FP8Format.e5m2.decode(0xFC) == -.infinity && FP8Format.e5m2.decode(0x7D).isNaN)
        #expect(FP8Format.e5m2.decode(0x01) == 0.0000152587890625)
    }

    @Test(arguments: FP8Format.allCases)
    func everyFiniteCodeRoundTrips(_ f: FP8Format) {
        for c in 0...255 {
            let v = f.decode(UInt8(c))
            guard v.isFinite else { continue }
            #expect(f.encode(v) == UInt8(c), "\(f) \(String(c, radix: 16)) = \(v)")
        }
        #expect(f.maxFinite == (0...255).map { f.decode(UInt8($0)) }.filter(\.isFinite).max())
    }

    /// Nearest representable value by brute force; ties to the even code.
    @Test(arguments: FP8Format.allCases)
    func roundsToNearestEven(_ f: FP8Format) {
        let finite = (0...127).map { (code: UInt8($0), value: f.decode(UInt8($0))) }.filter { $0.value.isFinite }
        var rng = SplitMix64(seed: 77)
        for k in 0..<20000 {
            // Log-uniform magnitudes over the whole range, plus exact midpoints.
            var x = Float(sign: .plus, exponent: 0, significand: 1)
                * Float.random(in: 1..<2, using: &rng) * pow2(Int.random(in: -20...17, using: &rng))
            if k % 4 == 0 {
                let i = Int.random(in: 0..<(finite.count - 1), using: &rng)
                x = (finite[i].value + finite[i + 1].value) / 2
            }
            guard x < f.maxFinite else { continue }
            let best = finite.map { abs($0.value - x) }.min()!
            let candidates = finite.filter { abs($0.value - x) == best }
            let want = candidates.count == 1 ? candidates[0].code : candidates.first { $0.code % 2 == 0 }!.code
            #expect(f.encode(x) == want, "\(f) \(x)")
            #expect(f.encode(-x) == want | 0x80)
        }
    }

    func pow2(_ e: Int) -> Float { Float(sign: .plus, exponent: e, significand: 1) }

    @Test(arguments: [QuantScheme.Granularity.tensor, .channel, .group(32)])
    func scaledMatrix(_ granularity: QuantScheme.Granularity) throws {
        let rows = 5, columns = 96
        var w = ToolkitData.gaussian(rows * columns, seed: 21, scale: 0.02)
        w[100] = 3
        for f in FP8Format.allCases {
            let q = w.withUnsafeBufferPointer {
                quantizeFP8($0, rows: rows, columns: columns, format: f, granularity: granularity)
            }
            let x = q.dequantized()
            let relativeStep: Float = f == .e4m3 ? 1.0 / 16 : 1.0 / 8  // half a mantissa step
            let s = q.scales.values()
            for i in w.indices {
                let r = i / columns, c = i % columns
                let scale = granularity == .tensor ? s[0] : granularity == .channel ? s[r] : s[r * 3 + c / 32]
                // Relative rounding error, or below the subnormal step near zero.
                let subnormalStep = scale * (f == .e4m3 ? 0.001953125 : 0.0000152587890625)
                #expect(abs(x[i] - w[i]) <= max(abs(w[i]) * relativeStep, subnormalStep / 2) * 1.0001)
            }
            #expect(abs(x[100] - 3) <= 3e-6)  // the absmax maps to the largest finite value
            let scheme = QuantScheme(codebook: f == .e4m3 ? .fp8E4M3 : .fp8E5M2, granularity: granularity)
            #expect(try fakeQuantize(w, rows: rows, columns: columns, scheme: scheme) == x)
        }
    }
}
