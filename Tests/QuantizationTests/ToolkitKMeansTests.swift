import Testing
@testable import Quantization

/// k-means codebooks: exact recovery of clustered data, better than uniform grids on
/// Gaussian rows, importance weighting, determinism.
@Suite struct ToolkitKMeansTests {
    func kmeans(_ w: [Float], _ rows: Int, _ columns: Int, bits: Int,
                _ granularity: QuantScheme.Granularity = .channel, options: KMeansOptions = KMeansOptions()) -> KMeansQuantized {
        w.withUnsafeBufferPointer {
            quantizeKMeans($0, rows: rows, columns: columns, bits: bits, granularity: granularity, options: options)
        }
    }

    @Test func recoversClusteredRows() {
        var rng = SplitMix64(seed: 1)
        let centers: [[Float]] = [[-1, 0.5, 2, 7], [0, 0.01, 0.02, 0.03], [-3, -2, -1, 5]]
        let w = centers.flatMap { c in (0..<200).map { _ in c[Int.random(in: 0..<4, using: &rng)] } }
        let q = kmeans(w, 3, 200, bits: 2)
        #expect(q.dequantized() == w)
        #expect(q.levels.values() == centers.flatMap { $0 })
    }

    @Test func levelsAscendAndCodesFit() {
        let w = ToolkitData.heavyTailed(8 * 300, seed: 3)
        for bits in [2, 3, 4, 8] {
            let q = kmeans(w, 8, 300, bits: bits, .group(128))
            let k = 1 << bits, lv = q.levels.values()
            #expect(lv.count == 8 * 3 * k)
            for g in 0..<(8 * 3) { #expect(zip(lv[(g * k)...], lv[(g * k + 1)..<(g * k + k)]).allSatisfy { $0 <= $1 }) }
            #expect(q.codes.allSatisfy { Int($0) < k })
            // Deterministic.
            #expect(kmeans(w, 8, 300, bits: bits, .group(128)).codes == q.codes)
        }
    }

    @Test func beatsUniformGridsOnGaussianRows() throws {
        let rows = 16, columns = 576
        let w = ToolkitData.gaussian(rows * columns, seed: 13)
        for bits in [3, 4] {
            let km = ToolkitData.mse(w, try fakeQuantize(w, rows: rows, columns: columns,
                                                         scheme: QuantScheme(parsing: "kmeans\(bits)-channel")))
            let rtn = ToolkitData.mse(w, try fakeQuantize(w, rows: rows, columns: columns,
                                                          scheme: QuantScheme(parsing: "int\(bits)-asym-channel")))
            #expect(km < rtn * (bits == 3 ? 0.6 : 0.85), "bits \(bits): k-means \(km), rtn \(rtn)")
        }
    }

    @Test func importanceLowersWeightedError() {
        let rows = 8, columns = 256
        let w = ToolkitData.gaussian(rows * columns, seed: 17)
        let importance = (0..<columns).map { $0 < 16 ? Float(100) : 1 }
        func weightedError(_ q: KMeansQuantized) -> Double {
            let x = q.dequantized()
            return w.indices.reduce(0.0) { $0 + Double(importance[$1 % columns]) * Double((w[$1] - x[$1]) * (w[$1] - x[$1])) }
        }
        let plain = weightedError(kmeans(w, rows, columns, bits: 2))
        let weighted = weightedError(kmeans(w, rows, columns, bits: 2, options: KMeansOptions(importance: importance)))
        #expect(weighted < plain * 0.9, "weighted \(weighted), plain \(plain)")
    }

    @Test func tensorGranularitySamples() {
        let rows = 64, columns = 576
        let w = ToolkitData.gaussian(rows * columns, seed: 19)
        let q = kmeans(w, rows, columns, bits: 4, .tensor, options: KMeansOptions(sampleLimit: 1000))
        #expect(q.levels.count == 16)
        let x = q.dequantized()
        #expect(ToolkitData.mse(w, x) < 0.02)
        #expect(kmeans([], 0, columns, bits: 4, .tensor).dequantized() == [])
    }
}
