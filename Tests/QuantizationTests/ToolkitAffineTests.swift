import Testing
@testable import Quantization

/// The affine (uniform integer) quantizer: pinned codes for known vectors, and the rounding
/// bound |x − x̂| ≤ scale / 2 on random matrices at every granularity.
@Suite struct ToolkitAffineTests {
    @Test func symmetricInt8KnownCodes() {
        let grid = AffineGrid(bits: 8, symmetric: true)
        #expect(grid.qmin == -127 && grid.qmax == 127)
        let p = grid.parameters(min: -1, max: 0.5)
        #expect(p == AffineParameters(scale: 1 / Float(127), zeroPoint: 0))
        let x: [Float] = [-1, -0.5, 0, 0.25, 0.5, 1, 2]
        // -63.5 is a tie: to even gives -64; 2 clamps to 127.
        #expect(x.map { grid.code($0, p) } == [-127, -64, 0, 32, 64, 127, 127])
        #expect(grid.value(-127, p) == -1 && grid.value(127, p) == 1)
    }

    @Test func symmetricInt4Range() {
        let grid = AffineGrid(bits: 4, symmetric: true)
        #expect(grid.qmin == -7 && grid.qmax == 7)
        let p = grid.parameters(min: -0.7, max: 3.5)
        #expect(p.scale == Float(3.5) / 7 && p.zeroPoint == 0)
        #expect(grid.code(-3.5, p) == -7 && grid.code(-100, p) == -7 && grid.code(0.25, p) == 0)
        #expect(grid.code(0.75, p) == 2)  // 1.5 → 2 (tie to even)
        #expect(grid.code(1.25, p) == 2)  // 2.5 → 2 (tie to even)
    }

    @Test func asymmetricEndsAndExactZero() {
        let grid = AffineGrid(bits: 4, symmetric: false)
        #expect(grid.qmin == 0 && grid.qmax == 15)
        let p = grid.parameters(min: -1, max: 2)
        #expect(p.scale == Float(3) / 15 && p.zeroPoint == 5)
        #expect(grid.code(-1, p) == 0 && grid.code(2, p) == 15)
        #expect(grid.code(0, p) == p.zeroPoint && grid.value(p.zeroPoint, p) == 0)
        // A range that excludes 0 is widened to include it.
        let q = grid.parameters(min: 1, max: 3)
        #expect(q.zeroPoint == 0 && q.scale == 0.2)
        #expect(grid.code(3, q) == 15 && grid.code(1, q) == 5)
        let r = grid.parameters(min: -3, max: -1)
        #expect(r.zeroPoint == 15 && grid.code(-3, r) == 0)
        for bits in 2...8 {
            let g = AffineGrid(bits: bits, symmetric: false)
            for (mn, mx) in [(Float(-0.37), Float(1.91)), (-5, 0.001), (-1e-3, 7)] {
                let p = g.parameters(min: mn, max: mx)
                #expect(g.code(mn, p) == 0 && g.code(mx, p) == g.qmax, "bits \(bits) [\(mn), \(mx)]")
                #expect(g.value(g.code(0, p), p) == 0)
            }
        }
    }

    @Test func zeroRangeGivesZeros() {
        for sym in [true, false] {
            let grid = AffineGrid(bits: 4, symmetric: sym)
            let p = grid.parameters(min: 0, max: 0)
            #expect(p.scale == 0 && grid.code(0, p) == p.zeroPoint && grid.fakeQuantize(0, p) == 0)
        }
        let q = quantizeAffine([Float](repeating: 0, count: 12), rows: 3, columns: 4,
                               grid: AffineGrid(bits: 3, symmetric: false), granularity: .group(2))
        #expect(q.dequantized() == [Float](repeating: 0, count: 12))
    }

    @Test func unsignedMappingDecodesTheSame() {
        let sym = AffineGrid(bits: 4, symmetric: true)
        let p = sym.parameters(min: -1, max: 1)
        #expect(sym.unsignedOffset == 8 && sym.unsignedZeroPoint(p) == 8)
        #expect(sym.unsignedCode(-7) == 1 && sym.unsignedCode(7) == 15 && sym.unsignedCode(0) == 8)
        for c in sym.qmin...sym.qmax {
            let u = sym.unsignedCode(c)
            #expect(Float(Int32(u) - Int32(sym.unsignedZeroPoint(p))) * p.scale == sym.value(c, p))
        }
        let asym = AffineGrid(bits: 4, symmetric: false)
        let q = asym.parameters(min: -1, max: 2)
        #expect(asym.unsignedCode(3) == 3 && asym.unsignedZeroPoint(q) == 5)
    }

    @Test func matrixLayoutAndParameters() {
        // 2 × 5, groups of 2: the last group of each row has one column.
        let w: [Float] = [0, 1, -2, 2, 4, /**/ 1, 1, 1, 1, -8]
        let q = quantizeAffine(w, rows: 2, columns: 5, grid: AffineGrid(bits: 8, symmetric: true), granularity: .group(2))
        #expect(q.groupsPerRow == 3 && q.parameters.count == 6)
        #expect(q.parameters.map(\.scale) == [1, 2, 4, 1, 1, 8].map { Float($0) / 127 })
        #expect(q.parameters(row: 1, column: 4).scale == Float(8) / 127)
        #expect(q.codes == [0, 127, -127, 127, 127, 127, 127, 127, 127, -127])
        #expect(q.dequantized() == w)
        let t = quantizeAffine(w, rows: 2, columns: 5, grid: AffineGrid(bits: 8, symmetric: true), granularity: .tensor)
        #expect(t.parameters.count == 1 && t.parameters[0].scale == Float(8) / 127)
        let c = quantizeAffine(w, rows: 2, columns: 5, grid: AffineGrid(bits: 8, symmetric: true), granularity: .channel)
        #expect(c.parameters.map(\.scale) == [Float(4) / 127, Float(8) / 127])
    }

    static let granularities: [QuantScheme.Granularity] = [.tensor, .channel, .group(32), .group(128), .group(1)]

    /// Every weight decodes within half a step of itself, codes stay in range, and the fused
    /// fake-quant path agrees with codes + dequantize.
    @Test(arguments: granularities, [QuantScheme.ScaleType.f32, .f16, .bf16])
    func roundingBound(_ granularity: QuantScheme.Granularity, _ scaleType: QuantScheme.ScaleType) throws {
        let rows = 7, columns = 576  // g128: 4 × 128 + a last group of 64
        var w = ToolkitData.gaussian(rows * columns, seed: 11, scale: 0.05)
        w[3 * columns + 17] = 0.9  // an outlier
        for i in 0..<columns { w[5 * columns + i] = abs(w[5 * columns + i]) }  // an all-positive row
        for bits in 2...8 {
            for symmetric in [true, false] {
                let grid = AffineGrid(bits: bits, symmetric: symmetric)
                let q = quantizeAffine(w, rows: rows, columns: columns, grid: grid, granularity: granularity,
                                       scaleType: scaleType)
                let x = q.dequantized()
                var worst: Float = 0
                for r in 0..<rows {
                    for c in 0..<columns {
                        let p = q.parameters(row: r, column: c), i = r * columns + c
                        #expect(grid.qmin <= q.codes[i] && q.codes[i] <= grid.qmax)
                        #expect(p.scale == scaleType.stored(p.scale))
                        worst = max(worst, abs(w[i] - x[i]) - p.scale / 2 - 1e-6 * abs(w[i]))
                    }
                }
                #expect(worst <= 0, "bits \(bits) sym \(symmetric): exceeds scale/2 by \(worst)")
                let scheme = QuantScheme(codebook: .integer(bits: bits, symmetric: symmetric),
                                         granularity: granularity, scaleType: scaleType)
                #expect(try fakeQuantize(w, rows: rows, columns: columns, scheme: scheme) == x)
            }
        }
    }

    @Test func fakeQuantizeRefusesBadInput() throws {
        let scheme = try! QuantScheme(parsing: "int4-asym-g128")
        #expect(throws: WeightMatrixError.shapeMismatch(count: 5, rows: 2, columns: 3)) {
            try fakeQuantize([1, 2, 3, 4, 5], rows: 2, columns: 3, scheme: scheme)
        }
        #expect(throws: WeightMatrixError.nonFinite(index: 1, value: .infinity)) {
            try fakeQuantize([1, .infinity], rows: 1, columns: 2, scheme: scheme)
        }
        #expect(throws: QuantSchemeError.self) {
            try fakeQuantize([1, 2], rows: 1, columns: 2,
                             scheme: QuantScheme(codebook: .integer(bits: 12, symmetric: true), granularity: .channel))
        }
        #expect(try fakeQuantize([], rows: 0, columns: 576, scheme: scheme) == [])
    }

    @Test func w8a8QuantizesWeightsPerChannelInt8() throws {
        let w = ToolkitData.gaussian(4 * 64, seed: 3)
        let want = try fakeQuantize(w, rows: 4, columns: 64, scheme: QuantScheme(parsing: "int8-sym-channel"))
        #expect(try fakeQuantize(w, rows: 4, columns: 64, scheme: QuantScheme(parsing: "w8a8-dynamic")) == want)
        #expect(try fakeQuantize(w, rows: 4, columns: 64, scheme: QuantScheme(parsing: "w8a8-static")) == want)
    }
}
