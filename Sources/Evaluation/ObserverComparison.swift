import Foundation
import Quantization

/// How well one range observer's calibrated range quantizes activations it did not see.
public struct ObserverScore: Codable, Sendable {
    /// Observer name (`min-max`, `percentile-99.99`, …).
    public var observer: String
    /// SQNR of the held-out activations under the calibrated per-tensor range, dB, averaged over layers.
    public var meanSQNR: Double
    /// Layers where this observer's SQNR beats min–max's.
    public var winsOverMinMax: Int
    /// Layers compared.
    public var layers: Int
}

/// Compares range observers on real activations: each layer's sampled input rows are split
/// in two; every observer calibrates a per-tensor range on the first half, and the second
/// half is quantized to `bits` with that range (asymmetric affine, clamped) and scored by
/// SQNR — so clipping is judged on data the observer never saw.
public enum ObserverComparison {
    /// The observers compared, by name, for a grid of `bits`.
    public static func observers(bits: Int) -> [(String, () -> any RangeObserver)] {
        let grid = AffineGrid(bits: bits, symmetric: false)
        return [
            ("min-max", { MinMaxObserver() }),
            ("moving-average min-max", { MovingAverageMinMaxObserver(momentum: 0.9) }),
            ("percentile 99.9", { PercentileObserver(percentile: 99.9) }),
            ("percentile 99.99", { PercentileObserver(percentile: 99.99) }),
            ("MSE clipping", { MSEClippingObserver(grid: grid) }),
            ("entropy (KL)", { EntropyObserver(bits: bits) }),
        ]
    }

    /// Scores every observer on `samples` (row-major `[rows, columns]` per layer name).
    /// Calibration feeds the observers `chunkRows` rows at a time (as batches would arrive).
    public static func compare(samples: [String: [Float]], columns: [String: Int], bits: Int,
                               chunkRows: Int = 64) -> [ObserverScore] {
        let grid = AffineGrid(bits: bits, symmetric: false)
        let names = samples.keys.sorted()
        var sqnr: [String: [Double]] = [:]
        let list = observers(bits: bits)
        for name in names {
            guard let x = samples[name], let c = columns[name], c > 0 else { continue }
            let rows = x.count / c
            guard rows >= 2 else { continue }
            let half = rows / 2
            let calibration = x[0..<(half * c)], heldOut = Array(x[(half * c)...])
            for (label, make) in list {
                var observer = make()
                var start = 0
                while start < half {
                    let end = min(half, start + chunkRows)
                    calibration.withUnsafeBufferPointer { b in
                        observer.observe(UnsafeBufferPointer(rebasing: b[(start * c)..<(end * c)]))
                    }
                    start = end
                }
                let (lo, hi) = observer.range()
                let p = grid.parameters(min: lo, max: hi)
                let q = heldOut.map { grid.fakeQuantize($0, p) }
                sqnr[label, default: []].append(QuantizationError(reference: heldOut, approximation: q).sqnrDB)
            }
        }
        let base = sqnr["min-max"] ?? []
        return list.map { label, _ in
            let s = sqnr[label] ?? []
            return ObserverScore(observer: label, meanSQNR: s.isEmpty ? 0 : s.reduce(0, +) / Double(s.count),
                                 winsOverMinMax: zip(s, base).filter { $0 > $1 + 1e-9 }.count, layers: s.count)
        }
    }
}
