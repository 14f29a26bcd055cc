import CKernels
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
        sq_swiglu(gate, up, n)
    }

    /// `Σ a[i]·b[i]` over `n` values, in two interleaved 16-wide partial sums.
    @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, n: Int) -> Float {
        var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>()
        var i = 0
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        while i + 32 <= n {
            // Multiply then add (not addProduct: without an FMA target flag that is a libm call per lane).
            acc0 += ra.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
                * rb.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
            acc1 += ra.loadUnaligned(fromByteOffset: 4 * i + 64, as: SIMD16<Float>.self)
                * rb.loadUnaligned(fromByteOffset: 4 * i + 64, as: SIMD16<Float>.self)
            i += 32
        }
        var sum = (acc0 + acc1).sum()
        while i < n {
            sum += a[i] * b[i]
            i += 1
        }
        return sum
    }

    /// `y += alpha · x` over `n` values.
    @inline(__always)
    public static func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, n: Int) {
        var i = 0
        let rx = UnsafeRawPointer(x), ry = UnsafeMutableRawPointer(y)
        while i + 16 <= n {
            let v = ry.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
                + alpha * rx.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
            ry.storeBytes(of: v, toByteOffset: 4 * i, as: SIMD16<Float>.self)
            i += 16
        }
        while i < n {
            y[i] += alpha * x[i]
            i += 1
        }
    }

    /// `x += y` over `n` values.
    public static func add(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, n: Int) {
        for i in 0..<n { x[i] += y[i] }
    }
}
