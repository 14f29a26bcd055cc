import Foundation
import Tensors

/// A grid GPTQ rounds onto: which columns share parameters, how the parameters follow from
/// the (error-updated) weights of a group, and the nearest grid value of a weight.
public protocol GPTQGrid {
    /// What one row of one group needs to round (a scale and zero point, a block scale, …).
    associatedtype Parameters: Sendable

    /// Columns sharing one set of parameters; 0 means the whole row (per channel).
    var groupSize: Int { get }

    /// The parameters of each of `rows` rows for a group whose current weights are the
    /// `count` columns at `columns` (column-major: column k is `columns[k*rows ..< (k+1)*rows]`).
    func parameters(columns: UnsafePointer<Float>, count: Int, rows: Int) -> [Parameters]

    /// The grid value nearest to `x` for a weight at position `offset` within its group.
    func round(_ x: Float, offset: Int, _ p: Parameters) -> Float

    /// Whether each group's parameters must come from the original weights, as the
    /// format's own encoder would pick them (GPTQ then always runs with static groups).
    var fixedGroups: Bool { get }
}

extension GPTQGrid {
    /// Integer grids follow the error-updated weights by default.
    public var fixedGroups: Bool { false }
}

/// Options of the GPTQ solver.
public struct GPTQOptions: Sendable {
    /// Columns per lazy batch update (the trailing matrix is updated once per batch).
    public var blockSize = 128
    /// Dampening added to the Hessian's diagonal, as a fraction of its mean diagonal.
    public var damp: Float = 0.01
    /// Quantize columns in order of decreasing Hessian diagonal (most salient first).
    public var actOrder = false
    /// Compute every group's parameters up front from the original weights' (unpermuted)
    /// groups, so groups stay contiguous column ranges under act-order and each group's grid
    /// is the one round-to-nearest would use.
    public var staticGroups = false

    /// Options with the defaults (block 128, damp 0.01, natural order).
    public init(blockSize: Int = 128, damp: Float = 0.01, actOrder: Bool = false, staticGroups: Bool = false) {
        self.blockSize = blockSize
        self.damp = damp
        self.actOrder = actOrder
        self.staticGroups = staticGroups
    }
}

/// GPTQ's output for one weight matrix.
public struct GPTQResult<Parameters: Sendable>: Sendable {
    /// The quantized weights Ŵ (grid values), row-major `[rows, columns]`, original column order.
    public var weights: [Float]
    /// Parameters by group id, each with one entry per row.
    public var groupParameters: [[Parameters]]
    /// The group id of each column (`g_idx`): `c / groupSize` unless act-order permuted the groups.
    public var groupIndex: [Int32]
    /// The order in which columns were quantized (identity without act-order).
    public var order: [Int]
    /// GPTQ's objective: Σ over rounded weights of (w − q)² / [H⁻¹]ₖₖ / 2 (in the Cholesky form).
    public var loss: Double
}

/// Why GPTQ could not run on a layer.
public enum GPTQError: Error, CustomStringConvertible, Equatable {
    /// Sizes of the weights and Hessian disagree.
    case shapeMismatch(String)
    /// The dampened Hessian is not positive definite (increase `damp`).
    case notPositiveDefinite(info: Int)

    /// A one-line message.
    public var description: String {
        switch self {
        case .shapeMismatch(let s): return "GPTQ: \(s)"
        case .notPositiveDefinite(let i):
            return "GPTQ: the dampened Hessian is not positive definite (leading minor \(i)); raise --damp"
        }
    }
}

/// GPTQ (Frantar et al., 2022): rounds a layer's weights column by column onto a grid, and
/// after each column spreads its rounding error over the columns not yet rounded, weighted
/// by the inverse Hessian of the layer's inputs, so that ‖WX − ŴX‖² — not ‖W − Ŵ‖² — is
/// what stays small. The inverse Hessian is used in its upper Cholesky form, and updates to
/// the columns beyond the current batch are applied lazily, one matrix product per batch.
public enum GPTQ {
    /// Quantizes `weights` (`rows × columns`, row-major) given `hessian`, the `columns ×
    /// columns` matrix `2·XᵀX/n` of the layer's inputs (only its upper triangle is read).
    /// Columns whose Hessian diagonal is zero never saw a non-zero input: they are set to 0.
    public static func quantize<G: GPTQGrid>(weights: [Float], rows: Int, columns n: Int, hessian: [Float],
                                             grid: G, options: GPTQOptions = GPTQOptions()) throws -> GPTQResult<G.Parameters> {
        guard weights.count == rows * n else {
            throw GPTQError.shapeMismatch("weights hold \(weights.count) values, expected \(rows) × \(n)")
        }
        guard hessian.count == n * n else {
            throw GPTQError.shapeMismatch("Hessian holds \(hessian.count) values, expected \(n) × \(n)")
        }
        let g = grid.groupSize > 0 ? min(grid.groupSize, n) : 0
        let staticGroups = options.staticGroups || grid.fixedGroups

        // Symmetric Hessian in double precision; dead columns get a unit diagonal and zero weights.
        var h = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in i..<n { h[i * n + j] = Double(hessian[i * n + j]); h[j * n + i] = h[i * n + j] } }
        var w = weights
        for i in 0..<n where h[i * n + i] == 0 {
            h[i * n + i] = 1
            for r in 0..<rows { w[r * n + i] = 0 }
        }

        let order: [Int] = options.actOrder
            ? (0..<n).sorted { h[$0 * n + $0] > h[$1 * n + $1] || (h[$0 * n + $0] == h[$1 * n + $1] && $0 < $1) }
            : Array(0..<n)
        var hp = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { hp[i * n + j] = h[order[i] * n + order[j]] } }
        var meanDiag = 0.0
        for i in 0..<n { meanDiag += hp[i * n + i] }
        meanDiag /= Double(max(n, 1))
        let damp = Double(options.damp) * meanDiag
        for i in 0..<n { hp[i * n + i] += damp }
        do { try LinearAlgebra.upperCholeskyOfInverse(&hp, n: n) } catch let e as LinearAlgebra.FactorizationError {
            throw GPTQError.notPositiveDefinite(info: e.info)
        }
        let u = hp.map { Float($0) }

        // Columns as contiguous vectors (transposed), in quantization order.
        var wt = [Float](repeating: 0, count: n * rows)
        for j in 0..<n { for r in 0..<rows { wt[j * rows + r] = w[r * n + order[j]] } }

        // Group parameters: per channel from the whole row; static groups from the original
        // column groups; otherwise computed when quantization reaches each group's first column.
        var groupParameters: [[G.Parameters]] = []
        var groupIndex = [Int32](repeating: 0, count: n)
        var columnGroup = [Int](repeating: 0, count: n)  // by position in quantization order
        if g == 0 {
            groupParameters = [wt.withUnsafeBufferPointer { grid.parameters(columns: $0.baseAddress!, count: n, rows: rows) }]
        } else if staticGroups {
            for start in stride(from: 0, to: n, by: g) {
                let count = min(g, n - start)
                var cols = [Float](repeating: 0, count: count * rows)
                for k in 0..<count { for r in 0..<rows { cols[k * rows + r] = w[r * n + start + k] } }
                groupParameters.append(cols.withUnsafeBufferPointer { grid.parameters(columns: $0.baseAddress!, count: count, rows: rows) })
            }
            for c in 0..<n { groupIndex[c] = Int32(c / g) }
            for j in 0..<n { columnGroup[j] = order[j] / g }
        } else {
            for j in 0..<n {
                columnGroup[j] = j / g
                groupIndex[order[j]] = Int32(j / g)
            }
        }

        // Batches are whole groups so a group's parameters see its columns fully updated.
        let block = g > 0 ? g * max(1, options.blockSize / g) : max(1, options.blockSize)
        var loss = 0.0
        var err = [Float](repeating: 0, count: block * rows)
        var q = [Float](repeating: 0, count: rows)
        try wt.withUnsafeMutableBufferPointer { wtb in
            let wtp = wtb.baseAddress!
            try u.withUnsafeBufferPointer { ub in
                let up = ub.baseAddress!
                for i1 in stride(from: 0, to: n, by: block) {
                    let i2 = min(i1 + block, n)
                    for j in i1..<i2 {
                        let col = wtp + j * rows
                        if g > 0 && !staticGroups && j % g == 0 {
                            groupParameters.append(grid.parameters(columns: col, count: min(g, n - j), rows: rows))
                        }
                        let params = groupParameters[g == 0 ? 0 : columnGroup[j]]
                        let offset = g == 0 ? order[j] : (staticGroups ? order[j] % g : j % g)
                        let d = up[j * n + j]
                        guard d > 0 && d.isFinite else { throw GPTQError.notPositiveDefinite(info: j + 1) }
                        let e = err.withUnsafeMutableBufferPointer { $0.baseAddress! + (j - i1) * rows }
                        for r in 0..<rows {
                            let x = col[r]
                            let v = grid.round(x, offset: offset, params[r])
                            q[r] = v
                            let diff = x - v
                            loss += Double(diff * diff) / Double(d * d) / 2
                            e[r] = diff / d
                        }
                        col.update(from: q, count: rows)
                        // Spread the error over the rest of the batch now.
                        for k in (j + 1)..<max(j + 1, i2) {
                            let f = up[j * n + k]
                            if f == 0 { continue }
                            let dst = wtp + k * rows
                            for r in 0..<rows { dst[r] -= f * e[r] }
                        }
                    }
                    // ...and over the columns after the batch in one product.
                    if i2 < n {
                        err.withUnsafeBufferPointer { eb in
                            BLAS.gemm(transposeA: true, m: n - i2, n: rows, k: i2 - i1, alpha: -1,
                                      up + i1 * n + i2, lda: n, eb.baseAddress!, ldb: rows,
                                      beta: 1, wtp + i2 * rows, ldc: rows)
                        }
                    }
                }
            }
        }

        var out = [Float](repeating: 0, count: rows * n)
        for j in 0..<n { for r in 0..<rows { out[r * n + order[j]] = wt[j * rows + r] } }
        return GPTQResult(weights: out, groupParameters: groupParameters, groupIndex: groupIndex, order: order, loss: loss)
    }
}

extension GPTQ {
    /// `Σ_r δ_r·H·δ_rᵀ` for `δ = W − Ŵ` (`rows × n`): the layer-output error ‖(W − Ŵ)Xᵀ‖²
    /// up to the factor `n_tokens/2` folded into `H = 2·XᵀX/n_tokens`.
    public static func outputError(_ w: [Float], _ q: [Float], rows: Int, columns n: Int, hessian h: [Float]) -> Double {
        var delta = [Float](repeating: 0, count: rows * n)
        for i in delta.indices { delta[i] = w[i] - q[i] }
        var dh = [Float](repeating: 0, count: rows * n)
        BLAS.matmul(delta, h, &dh, m: rows, n: n, k: n)
        var total = 0.0
        for i in delta.indices { total += Double(delta[i]) * Double(dh[i]) }
        return total
    }
}

extension GPTQ {
    /// ‖(W − Ŵ)X‖² of `quantized` over that of round-to-nearest on the same grid: below 1
    /// when GPTQ helped this layer on its calibration inputs.
    public static func errorRatioToRoundToNearest<G: GPTQGrid>(weights: [Float], quantized: [Float], rows: Int, columns: Int,
                                                               hessian: [Float], grid: G) -> Double {
        let rtn = roundToNearest(weights: weights, rows: rows, columns: columns, grid: grid)
        return outputError(weights, quantized, rows: rows, columns: columns, hessian: hessian)
            / max(outputError(weights, rtn, rows: rows, columns: columns, hessian: hessian), .leastNonzeroMagnitude)
    }
}
