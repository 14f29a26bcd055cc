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

    /// Student-t-like heavy tails: a Gaussian body plus a few large outliers (about 1 in 500
    /// values, 10–40× the body's spread).
    static func heavyTailed(_ count: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed ^ 0xABCD)
        var x = gaussian(count, seed: seed)
        for i in x.indices where Int.random(in: 0..<500, using: &rng) == 0 {
            x[i] = Float.random(in: 10...40, using: &rng) * (Bool.random(using: &rng) ? 1 : -1)
        }
        return x
    }

    /// Mean squared difference.
    static func mse(_ a: [Float], _ b: [Float]) -> Double {
        zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) } / Double(max(1, a.count))
    }
}
