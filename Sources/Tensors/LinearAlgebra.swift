#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif

/// Dense linear algebra beyond matrix products (LAPACK through OpenBLAS/LAPACKE on Linux,
/// Accelerate on macOS), for second-order quantizers such as GPTQ.
public enum LinearAlgebra {
    /// `c[n×n] (upper triangle) = alpha·aᵀa + beta·c` for row-major `a[rows × n]`: the Gram
    /// matrix of the rows of `a` (a Hessian `XᵀX` of layer inputs). Only the upper triangle
    /// of `c` is written; call `symmetrize` for the full matrix.
    public static func gramUpper(_ a: UnsafePointer<Float>, rows: Int, n: Int, alpha: Float = 1, beta: Float = 1,
                                 into c: UnsafeMutablePointer<Float>) {
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(n), Int32(rows), alpha, a, Int32(n), beta, c, Int32(n))
    }

    /// Copies the upper triangle of the row-major `n × n` matrix onto the lower one.
    public static func symmetrize<T>(_ c: UnsafeMutablePointer<T>, n: Int) {
        for i in 0..<n {
            for j in 0..<i { c[i * n + j] = c[j * n + i] }
        }
    }

    /// Why a factorization failed.
    public struct FactorizationError: Error, CustomStringConvertible {
        /// LAPACK's `info` value (the order of the first non-positive leading minor).
        public let info: Int
        /// A one-line message.
        public var description: String { "matrix is not positive definite (leading minor \(info))" }
    }

    /// Replaces the symmetric positive-definite row-major `n × n` matrix `h` by the upper
    /// Cholesky factor `U` of its inverse (`h⁻¹ = UᵀU`, lower triangle zeroed) — the form
    /// GPTQ's column-by-column updates read. Computed as Cholesky of `h`, inverse from that
    /// factor, then Cholesky of the inverse, in double precision.
    public static func upperCholeskyOfInverse(_ h: inout [Double], n: Int) throws {
        precondition(h.count == n * n, "matrix must be n × n")
        // Row-major lower == column-major upper: LAPACK sees the transpose, which is the same
        // symmetric matrix, so 'L' in row-major terms is passed as 'U' in column-major terms.
        var info = potrf(&h, n: n, lowerRowMajor: true)
        guard info == 0 else { throw FactorizationError(info: info) }
        info = potri(&h, n: n, lowerRowMajor: true)
        guard info == 0 else { throw FactorizationError(info: info) }
        // The inverse is in the lower triangle; mirror it to the upper one.
        for i in 0..<n { for j in (i + 1)..<max(i + 1, n) { h[i * n + j] = h[j * n + i] } }
        info = potrf(&h, n: n, lowerRowMajor: false)
        guard info == 0 else { throw FactorizationError(info: info) }
        for i in 0..<n { for j in 0..<i { h[i * n + j] = 0 } }
    }

    private static func potrf(_ a: inout [Double], n: Int, lowerRowMajor: Bool) -> Int {
        #if canImport(Accelerate)
        var uplo: Int8 = lowerRowMajor ? 85 : 76  // 'U' : 'L' in column-major terms
        var nn = __CLPK_integer(n), lda = __CLPK_integer(n), info = __CLPK_integer(0)
        dpotrf_(&uplo, &nn, &a, &lda, &info)
        return Int(info)
        #else
        return Int(LAPACKE_dpotrf(LAPACK_ROW_MAJOR, lowerRowMajor ? 76 : 85, Int32(n), &a, Int32(n)))
        #endif
    }

    private static func potri(_ a: inout [Double], n: Int, lowerRowMajor: Bool) -> Int {
        #if canImport(Accelerate)
        var uplo: Int8 = lowerRowMajor ? 85 : 76
        var nn = __CLPK_integer(n), lda = __CLPK_integer(n), info = __CLPK_integer(0)
        dpotri_(&uplo, &nn, &a, &lda, &info)
        return Int(info)
        #else
        return Int(LAPACKE_dpotri(LAPACK_ROW_MAJOR, lowerRowMajor ? 76 : 85, Int32(n), &a, Int32(n)))
        #endif
    }
}
