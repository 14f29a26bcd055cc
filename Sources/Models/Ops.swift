import Foundation
import Tensors

/// The elementwise and row-wise operations of the Llama forward pass, one function each.
public enum Ops {
    /// `out[r] = x[r] / rms(x[r]) * weight` for each of `rows` rows of width `n`.
    public static func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, rows: Int, n: Int,
                               eps: Float, into out: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let xr = x + r * n, or = out + r * n
            var ss: Float = 0
            for i in 0..<n { ss += xr[i] * xr[i] }
            let scale = 1 / (ss / Float(n) + eps).squareRoot()
            for i in 0..<n { or[i] = xr[i] * scale * weight[i] }
        }
    }

    /// In-place softmax of `n` values.
    public static func softmax(_ x: UnsafeMutablePointer<Float>, n: Int) {
        var m = -Float.infinity
        for i in 0..<n { m = max(m, x[i]) }
        var sum: Float = 0
        for i in 0..<n {
            let e = expf(x[i] - m)
            x[i] = e
            sum += e
        }
        let inv = 1 / sum
        for i in 0..<n { x[i] *= inv }
    }

    /// `gate[i] = silu(gate[i]) * up[i]` (the SwiGLU activation), over `n` values.
    public static func swiglu(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, n: Int) {
        for i in 0..<n {
            let g = gate[i]
            gate[i] = g / (1 + expf(-g)) * up[i]
        }
    }

    /// `x += y` over `n` values.
    public static func add(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, n: Int) {
        for i in 0..<n { x[i] += y[i] }
    }
}
