import Testing
@testable import Quantization

/// NF4 and FP4 blockwise quantization and QLoRA-style double quantization.
@Suite struct ToolkitCodebookTests {
    /// The NF4 levels as published with QLoRA (bitsandbytes' hard-coded table).
    static let publishedNF4: [Double] = [
        -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
        -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
        0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
        0.7229568362236023, 1.0,
    ]

    @Test func nf4LevelsEqualThePublishedTable() {
        let levels = FourBitCodebook.nf4.levels
        for (got, want) in zip(levels, Self.publishedNF4) {
            // The table lists f32 values to 16-17 digits: equal as f32.
            #expect(got == Float(want), "\(got) vs \(want)")
        }
        #expect(levels.count == 16 && levels[7] == 0)
    }

    @Test func fp4Levels() {
        let l = FourBitCodebook.fp4.levels.map { $0 * 6 }
        #expect(l == [0, 0.5, 1, 1.5, 2, 3, 4, 6, 0, -0.5, -1, -1.5, -2, -3, -4, -6])
        #expect(FourBitCodebook.fp4.code(-1) == 15 && FourBitCodebook.fp4.code(0) == 0)
        #expect(FourBitCodebook.fp4.code(5.5 / 6) == 7 && FourBitCodebook.fp4.code(4.9 / 6) == 6)
    }

    @Test func nearestLevel() {
        for cb in [FourBitCodebook.nf4, .fp4] {
            for (c, v) in cb.levels.enumerated() where !(v == 0 && c != 0 && c != 7) {
                #expect(cb.levels[Int(cb.code(v))] == v)
            }
            var rng = SplitMix64(seed: 5)
            for _ in 0..<2000 {
                let x = Float.random(in: -1.2...1.2, using: &rng)
                let got = abs(cb.levels[Int(cb.code(x))] - x)
                #expect(cb.levels.allSatisfy { abs($0 - x) >= got })
            }
        }
    }

    @Test func blockwiseKeepsEachBlockAbsmax() throws {
        let rows = 6, columns = 576
        let w = ToolkitData.gaussian(rows * columns, seed: 9)
        for cb in [FourBitCodebook.nf4, .fp4] {
            let q = w.withUnsafeBufferPointer {
                quantizeBlockwise($0, rows: rows, columns: columns, codebook: cb, granularity: .group(64))
            }
            let x = q.dequantized()
            #expect(q.absmax.count == rows * 9 && q.packedCodes.count == rows * columns / 2)
            let gaps = zip(cb.sorted, cb.sorted.dropFirst()).map { $1 - $0 }.max()!
            for b in 0..<(rows * 9) {
                let block = (b * 64)..<(b * 64 + 64)
                let absmax = block.map { abs(w[$0]) }.max()!
                let arg = block.first { abs(w[$0]) == absmax }!
                #expect(x[arg] == w[arg])  // ±absmax is exactly the level ±1 times absmax
                for i in block { #expect(abs(x[i] - w[i]) <= absmax * gaps / 2 * 1.0001) }
            }
        }
    }

    @Test func doubleQuantizationOfAbsmax() {
        let values = ToolkitData.gaussian(1000, seed: 4).map { abs($0) + 0.5 }
        let dq = DoubleQuantizedScales(quantizing: values)
        #expect(dq.codes.count == 1000 && dq.scales.count == 4)
        #expect(abs(Double(dq.mean) - values.reduce(0.0) { $0 + Double($1) } / 1000) < 1e-6)
        let back = dq.values()
        for b in 0..<4 {
            let block = (b * 256)..<min(b * 256 + 256, 1000)
            let spread = block.map { abs(values[$0] - dq.mean) }.max()!
            #expect(dq.scales[b] == spread / 127)
            for i in block { #expect(abs(back[i] - values[i]) <= dq.scales[b] / 2 * 1.001 + 1e-6) }
        }
        #expect(dq.byteCount == 1000 + 16 + 4)
    }

    /// The reported bits per parameter equal the bytes actually stored.
    @Test(arguments: ["nf4-b64-dq", "nf4-b64", "fp4-b64", "fp4-b32-dq", "nf4-b64-f16", "nf4-channel", "fp4-tensor",
                      "nf4-b128-bf16"])
    func bitsPerParameterMatchesStoredBytes(_ text: String) throws {
        let scheme = try QuantScheme(parsing: text)
        let rows = 96, columns = 576
        let w = ToolkitData.gaussian(rows * columns, seed: 2)
        let q = w.withUnsafeBufferPointer {
            quantizeBlockwise($0, rows: rows, columns: columns, codebook: scheme.codebook == .nf4 ? .nf4 : .fp4,
                              granularity: scheme.granularity, scaleType: scheme.scaleType,
                              doubleQuant: scheme.doubleQuant)
        }
        #expect(q.bitsPerParameter == scheme.bitsPerParameter(rows: rows, columns: columns))
        #expect(try fakeQuantize(w, rows: rows, columns: columns, scheme: scheme) == q.dequantized())
    }

    @Test func nf4DoubleQuantCost() throws {
        // 96 × 576 / 64 = 864 blocks → 4 second-level scales.
        let bpp = try QuantScheme(parsing: "nf4-b64-dq").bitsPerParameter(rows: 96, columns: 576)
        let n = 96 * 576, stored: Int = 4 * n + 864 * 8 + 4 * 32 + 32
        #expect(bpp == Double(stored) / Double(n))
        #expect(abs(bpp - 4.127) < 0.002)
        #expect(try QuantScheme(parsing: "nf4-b64").bitsPerParameter(rows: 96, columns: 576) == 4.5)
        #expect(try QuantScheme(parsing: "int4-asym-g128-f16").bitsPerParameter(rows: 4, columns: 512) == Double(4 * 2048 + 16 * 20) / 2048)
        #expect(try QuantScheme(parsing: "int8-sym-channel").bitsPerParameter(rows: 4, columns: 512) == Double(8 * 2048 + 4 * 32) / 2048)
        #expect(try QuantScheme(parsing: "kmeans4-channel").bitsPerParameter(rows: 4, columns: 512) == Double(4 * 2048 + 4 * 16 * 32) / 2048)
        #expect(try QuantScheme(parsing: "fp8e4m3-tensor").bitsPerParameter(rows: 4, columns: 512) == Double(8 * 2048 + 32) / 2048)
    }

    @Test func doubleQuantErrorIsSmall() throws {
        let rows = 64, columns = 576
        let w = ToolkitData.gaussian(rows * columns, seed: 8)
        let plain = try fakeQuantize(w, rows: rows, columns: columns, scheme: QuantScheme(parsing: "nf4-b64"))
        let dq = try fakeQuantize(w, rows: rows, columns: columns, scheme: QuantScheme(parsing: "nf4-b64-dq"))
        let e1 = ToolkitData.mse(w, plain), e2 = ToolkitData.mse(w, dq)
        #expect(e2 >= e1 * 0.99 && e2 < e1 * 1.05, "nf4 \(e1), with dq \(e2)")
    }
}
