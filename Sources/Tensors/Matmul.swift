#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif

/// Matrix products through BLAS (OpenBLAS on Linux, Accelerate on macOS).
public enum BLAS {
    /// `c[m×n] = a[m×k] · b[n×k]ᵀ (+ c if accumulate)`, all row-major.
    /// This is the shape of a linear layer: activations `a` times weight `b` (`[out, in]`).
    public static func matmulTransposedB(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
        m: Int, n: Int, k: Int, accumulate: Bool = false
    ) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k),
                    1, a, Int32(k), b, Int32(k), accumulate ? 1 : 0, c, Int32(n))
    }

    /// `c[m×n] = a[m×k] · b[k×n] (+ c if accumulate)`, all row-major.
    public static func matmul(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
        m: Int, n: Int, k: Int, accumulate: Bool = false
    ) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k),
                    1, a, Int32(k), b, Int32(n), accumulate ? 1 : 0, c, Int32(n))
    }

    /// General strided product `c = alpha·op(a)·op(b) + beta·c`, row-major, where `op`
    /// transposes when asked; `lda`, `ldb`, `ldc` are row strides in elements. Used for
    /// per-head attention over interleaved head layouts.
    public static func gemm(
        transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
        _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, _ c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// The kernel family OpenBLAS runs (`Haswell`, `SkylakeX`, …: detected when the library
    /// loads, or forced by `OPENBLAS_CORETYPE`); nil on Accelerate.
    public static var coreName: String? {
        #if canImport(Accelerate)
        return nil
        #else
        return openblas_get_corename().map { String(cString: $0) }
        #endif
    }

    /// Sets the BLAS library's own thread count (OpenBLAS); a no-op on Accelerate.
    public static func setThreads(_ n: Int) {
        #if !canImport(Accelerate)
        openblas_set_num_threads(Int32(n))
        #endif
    }
}
