import Foundation

/// Synthetic data for the toolkit tests.
enum ToolkitData {
    /// `count` standard normal values (Box–Muller), deterministic for a seed.
    static func gaussian(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ in
            let u = Double.random(in: Double.ulpOfOne..<1, using: &rng), v = Double.random(in: 0..<1, using: &rng)
            return Float(sqrt(-2 * log(u)) * cos(2 * .pi * v)) * scale
        }
    }

    /// Heavy tails: Student's t with 3 degrees of freedom (a normal divided by the root of
    /// an independent χ²₃ / 3), whose kurtosis is unbounded.
    static func heavyTailed(_ count: Int, seed: UInt64) -> [Float] {
        let z = gaussian(count * 4, seed: seed)
        return (0..<count).map { i in
            let chi2 = z[4 * i + 1] * z[4 * i + 1] + z[4 * i + 2] * z[4 * i + 2] + z[4 * i + 3] * z[4 * i + 3]
            return z[4 * i] / (chi2 / 3).squareRoot()
        }
    }

    /// Mean squared difference.
    static func mse(_ a: [Float], _ b: [Float]) -> Double {
        zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) } / Double(max(1, a.count))
    }
}
