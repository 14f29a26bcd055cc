import Tensors

/// A weight matrix quantized onto an integer grid in groups of input columns, as GPTQ and
/// AWQ checkpoints store it.
///
/// Element `(r, c)` of the weight (`rows` output features × `columns` input features, the
/// layout of a `Linear` weight) is
///
///     w[r, c] = (codes[r, c] − zeroPoints[r, g]) · scales[r, g],   g = groupIndex[c]
///
/// Codes and zero points are unsigned integers below `2^bits`. `groupIndex` is GPTQ's
/// `g_idx`: the group each input column belongs to. Without act-order it is `c / groupSize`;
/// with act-order (GPTQ's `desc_act`) columns are quantized in a permuted order and the
/// groups follow that order, so `groupIndex` is any assignment with at most `groupSize`
/// columns per group.
///
/// Per-channel quantization (one group spanning every column, written `group_size: -1` in a
/// Hugging Face `quantization_config`) is `groupSize == columns`; the initializer accepts
/// `-1` and stores `columns`.
///
/// `symmetric` means every zero point is `2^(bits−1)`, GPTQ's `sym=True` grid; kernels that
/// serve symmetric checkpoints (Marlin, ExLlama's symmetric path) ignore the stored zero
/// points and assume that value, so the initializer enforces it.
public struct GroupQuantizedMatrix: Sendable, Equatable {
    /// Output features (rows of the `[out, in]` weight).
    public let rows: Int
    /// Input features (columns of the `[out, in]` weight).
    public let columns: Int
    /// Bits per code: 2, 3, 4 or 8.
    public let bits: Int
    /// Input columns per group; `columns` for per-channel quantization.
    public let groupSize: Int
    /// Unsigned codes, row-major `[rows, columns]`, each below `2^bits`.
    public var codes: [UInt8]
    /// Scales, row-major `[rows, groups]`.
    public var scales: [Float]
    /// Unsigned zero points, row-major `[rows, groups]`, each below `2^bits`.
    public var zeroPoints: [Int32]
    /// The group of each input column (`g_idx`), `columns` entries, each below `groups`.
    public var groupIndex: [Int32]
    /// Whether the grid is symmetric (every zero point is `2^(bits−1)`).
    public var symmetric: Bool

    /// The bit widths a matrix may use.
    public static let supportedBits: Set<Int> = [2, 3, 4, 8]

    /// Number of groups per row: `ceil(columns / groupSize)`.
    public var groups: Int { (columns + groupSize - 1) / groupSize }

    /// Largest code, `2^bits − 1`.
    public var maxCode: Int { (1 << bits) - 1 }

    /// The zero point of a symmetric grid at `bits`: `2^(bits−1)`.
    public static func symmetricZeroPoint(bits: Int) -> Int32 { Int32(1 << (bits - 1)) }

    /// Whether the columns keep their natural order (`groupIndex[c] == c / groupSize`),
    /// i.e. no act-order permutation.
    public var hasIdentityGrouping: Bool {
        groupIndex.indices.allSatisfy { groupIndex[$0] == Int32($0 / groupSize) }
    }

    /// The identity grouping `c / groupSize` for `columns` columns.
    public static func identityGroupIndex(columns: Int, groupSize: Int) -> [Int32] {
        (0..<columns).map { Int32($0 / groupSize) }
    }

    /// Creates a matrix after checking every invariant above.
    ///
    /// - Parameters:
    ///   - groupSize: columns per group, or `-1` for per-channel (stored as `columns`).
    ///   - groupIndex: `g_idx`; `nil` means the identity grouping.
    /// - Throws: `GroupQuantizedMatrixError` naming the first violated invariant.
    public init(rows: Int, columns: Int, bits: Int, groupSize: Int,
                codes: [UInt8], scales: [Float], zeroPoints: [Int32],
                groupIndex: [Int32]? = nil, symmetric: Bool) throws {
        guard rows > 0, columns > 0 else {
            throw GroupQuantizedMatrixError.invalidShape(rows: rows, columns: columns)
        }
        guard Self.supportedBits.contains(bits) else {
            throw GroupQuantizedMatrixError.unsupportedBits(bits)
        }
        let size = groupSize == -1 ? columns : groupSize
        guard size > 0 else { throw GroupQuantizedMatrixError.invalidGroupSize(groupSize) }
        self.rows = rows
        self.columns = columns
        self.bits = bits
        self.groupSize = size
        self.codes = codes
        self.scales = scales
        self.zeroPoints = zeroPoints
        self.groupIndex = groupIndex ?? Self.identityGroupIndex(columns: columns, groupSize: size)
        self.symmetric = symmetric
        try validate()
    }

    /// Checks the invariants that the mutable fields may have broken since `init`.
    public func validate() throws {
        let (r, c, g) = (rows, columns, groups)
        func count(_ name: String, _ n: Int, _ want: Int) throws {
            if n != want { throw GroupQuantizedMatrixError.wrongCount(field: name, count: n, expected: want) }
        }
        try count("codes", codes.count, r * c)
        try count("scales", scales.count, r * g)
        try count("zeroPoints", zeroPoints.count, r * g)
        try count("groupIndex", groupIndex.count, c)
        let limit = 1 << bits
        if let i = codes.firstIndex(where: { Int($0) >= limit }) {
            throw GroupQuantizedMatrixError.valueOutOfRange(field: "codes", index: i, value: Int(codes[i]), limit: limit)
        }
        if let i = zeroPoints.firstIndex(where: { $0 < 0 || Int($0) >= limit }) {
            throw GroupQuantizedMatrixError.valueOutOfRange(field: "zeroPoints", index: i, value: Int(zeroPoints[i]), limit: limit)
        }
        if let i = groupIndex.firstIndex(where: { $0 < 0 || Int($0) >= g }) {
            throw GroupQuantizedMatrixError.valueOutOfRange(field: "groupIndex", index: i, value: Int(groupIndex[i]), limit: g)
        }
        if let i = scales.firstIndex(where: { !$0.isFinite }) {
            throw GroupQuantizedMatrixError.nonFiniteScale(index: i)
        }
        var perGroup = [Int](repeating: 0, count: g)
        for gi in groupIndex { perGroup[Int(gi)] += 1 }
        if let gi = perGroup.firstIndex(where: { $0 > groupSize }) {
            throw GroupQuantizedMatrixError.groupTooLarge(group: gi, columns: perGroup[gi], groupSize: groupSize)
        }
        if symmetric {
            let z = Self.symmetricZeroPoint(bits: bits)
            if let i = zeroPoints.firstIndex(where: { $0 != z }) {
                throw GroupQuantizedMatrixError.asymmetricZeroPoint(index: i, value: Int(zeroPoints[i]), expected: Int(z))
            }
        }
    }

    /// The f32 weight, row-major `[rows, columns]`.
    public func dequantized() -> [Float] {
        var out = [Float](repeating: 0, count: rows * columns)
        let g = groups
        codes.withUnsafeBufferPointer { q in
            scales.withUnsafeBufferPointer { s in
                zeroPoints.withUnsafeBufferPointer { z in
                    groupIndex.withUnsafeBufferPointer { gi in
                        out.withUnsafeMutableBufferPointer { o in
                            for r in 0..<rows {
                                let row = r * columns, grow = r * g
                                for c in 0..<columns {
                                    let k = grow + Int(gi[c])
                                    o[row + c] = Float(Int32(q[row + c]) - z[k]) * s[k]
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}

extension GroupQuantizedMatrix {
    /// The matrix with its rows reordered: row `r` of the result is row `sourceRow(r)` of
    /// this one (codes, scales and zero points move together; `groupIndex` is per column
    /// and stays). `sourceRow` must be a permutation of `0..<rows`.
    public func permutingRows(_ sourceRow: (Int) -> Int) -> GroupQuantizedMatrix {
        var out = self
        let g = groups
        for r in 0..<rows {
            let s = sourceRow(r)
            out.codes.replaceSubrange(r * columns..<(r + 1) * columns, with: codes[s * columns..<(s + 1) * columns])
            out.scales.replaceSubrange(r * g..<(r + 1) * g, with: scales[s * g..<(s + 1) * g])
            out.zeroPoints.replaceSubrange(r * g..<(r + 1) * g, with: zeroPoints[s * g..<(s + 1) * g])
        }
        return out
    }

    /// The matrix with every scale rounded to the nearest IEEE half (as GPTQ and AWQ
    /// checkpoints store them), so that `dequantized()` gives what a reader of the file gets.
    public func scalesRoundedToHalf() -> GroupQuantizedMatrix {
        var out = self
        out.scales = scales.map { Half.f16ToFloat(Half.floatToF16($0)) }
        return out
    }

    /// The matrix of a toolkit affine quantization: codes and zero points made unsigned
    /// (`AffineGrid.unsignedCode`, `unsignedZeroPoint`: a symmetric grid's codes move up by
    /// `2^(bits−1)`, its zero point becomes `2^(bits−1)`), one group per row for `.channel`
    /// and `.tensor` granularity (the tensor's parameters repeated on every row).
    /// - Throws: `GroupQuantizedMatrixError` when the grid's bits are not 2, 3, 4 or 8 or a
    ///   code is out of range.
    public init(_ q: AffineQuantized) throws {
        let grid = q.grid
        let groupSize: Int, groups: Int
        switch q.granularity {
        case .group(let g): groupSize = g; groups = q.groupsPerRow
        case .channel, .tensor: groupSize = q.columns; groups = 1
        }
        var scales = [Float](repeating: 0, count: q.rows * groups)
        var zeros = [Int32](repeating: 0, count: q.rows * groups)
        for r in 0..<q.rows {
            for k in 0..<groups {
                let p = q.parameters(row: r, column: k * groupSize)
                scales[r * groups + k] = p.scale
                zeros[r * groups + k] = Int32(bitPattern: grid.unsignedZeroPoint(p))
            }
        }
        let limit = 1 << grid.bits
        var codes = [UInt8](repeating: 0, count: q.codes.count)
        for (i, c) in q.codes.enumerated() {
            let u = Int(c) + Int(grid.unsignedOffset)
            guard u >= 0, u < limit else {
                throw GroupQuantizedMatrixError.valueOutOfRange(field: "codes", index: i, value: u, limit: limit)
            }
            codes[i] = UInt8(u)
        }
        try self.init(rows: q.rows, columns: q.columns, bits: grid.bits, groupSize: groupSize, codes: codes,
                      scales: scales, zeroPoints: zeros, symmetric: grid.symmetric)
    }

    /// GPTQ's output on a toolkit integer grid (`GPTQ.quantize` with an `AffineGPTQGrid`) as
    /// a matrix to write: each rounded weight's code recovered from its group's parameters,
    /// `g_idx` as GPTQ chose it (act-order included), codes and zero points made unsigned as
    /// in `init(_: AffineQuantized)`.
    /// - Throws: `GroupQuantizedMatrixError` for bits other than 2, 3, 4, 8, parameters that do
    ///   not match the shape, or a code out of range.
    public init(_ result: GPTQResult<AffineParameters>, grid: AffineGPTQGrid, rows: Int, columns: Int) throws {
        let affine = grid.grid
        guard Self.supportedBits.contains(affine.bits) else { throw GroupQuantizedMatrixError.unsupportedBits(affine.bits) }
        guard rows > 0, columns > 0 else { throw GroupQuantizedMatrixError.invalidShape(rows: rows, columns: columns) }
        guard result.weights.count == rows * columns, result.groupIndex.count == columns else {
            throw GroupQuantizedMatrixError.wrongCount(field: "weights", count: result.weights.count, expected: rows * columns)
        }
        let groups = result.groupParameters.count
        if let g = result.groupParameters.firstIndex(where: { $0.count != rows }) {
            throw GroupQuantizedMatrixError.wrongCount(field: "groupParameters[\(g)]", count: result.groupParameters[g].count,
                                                      expected: rows)
        }
        if let c = result.groupIndex.firstIndex(where: { $0 < 0 || Int($0) >= groups }) {
            throw GroupQuantizedMatrixError.valueOutOfRange(field: "groupIndex", index: c, value: Int(result.groupIndex[c]),
                                                           limit: groups)
        }
        var scales = [Float](repeating: 0, count: rows * groups)
        var zeros = [Int32](repeating: 0, count: rows * groups)
        for g in 0..<groups {
            for r in 0..<rows {
                let p = result.groupParameters[g][r]
                scales[r * groups + g] = p.scale
                zeros[r * groups + g] = Int32(bitPattern: affine.unsignedZeroPoint(p))
            }
        }
        var codes = [UInt8](repeating: 0, count: rows * columns)
        let limit = 1 << affine.bits
        for r in 0..<rows {
            for c in 0..<columns {
                let i = r * columns + c
                let p = result.groupParameters[Int(result.groupIndex[c])][r]
                let u = Int(affine.code(result.weights[i], p)) + Int(affine.unsignedOffset)
                guard u >= 0, u < limit else {
                    throw GroupQuantizedMatrixError.valueOutOfRange(field: "codes", index: i, value: u, limit: limit)
                }
                codes[i] = UInt8(u)
            }
        }
        try self.init(rows: rows, columns: columns, bits: affine.bits,
                      groupSize: grid.groupSize > 0 ? min(grid.groupSize, columns) : columns, codes: codes,
                      scales: scales, zeroPoints: zeros, groupIndex: result.groupIndex, symmetric: affine.symmetric)
    }

    /// Round-to-nearest onto the grid, group by group (no calibration): the baseline that
    /// GPTQ and AWQ improve on, and a way to make checkpoints for tests and export.
    ///
    /// The toolkit's `quantizeAffine` on an `AffineGrid` (its conventions: each group's
    /// range widened to include 0, ties to even, a symmetric grid's restricted range
    /// `±(2^(bits−1) − 1)` stored with zero point `2^(bits−1)`), then `init(_:)`. With
    /// `halfPrecisionScales` each scale is rounded up to an f16 before the codes are
    /// computed, so the matrix survives a checkpoint's f16 scales unchanged.
    /// `minimumZeroPoint` raises asymmetric zero points to at least that value, the group's
    /// codes recomputed (1 keeps them storable in GPTQ's v1 "zero − 1" format).
    ///
    /// - Parameters:
    ///   - weight: row-major `[rows, columns]`.
    ///   - groupSize: columns per group, or `-1` for per-channel.
    /// - Throws: `GroupQuantizedMatrixError` for a bad shape, bit width or group size, or a
    ///   non-finite weight.
    public static func roundToNearest(_ weight: [Float], rows: Int, columns: Int, bits: Int, groupSize: Int,
                                      symmetric: Bool, halfPrecisionScales: Bool = true,
                                      minimumZeroPoint: Int32 = 0) throws -> GroupQuantizedMatrix {
        guard rows > 0, columns > 0 else { throw GroupQuantizedMatrixError.invalidShape(rows: rows, columns: columns) }
        guard supportedBits.contains(bits) else { throw GroupQuantizedMatrixError.unsupportedBits(bits) }
        guard weight.count == rows * columns else {
            throw GroupQuantizedMatrixError.wrongCount(field: "weight", count: weight.count, expected: rows * columns)
        }
        guard groupSize == -1 || groupSize > 0 else { throw GroupQuantizedMatrixError.invalidGroupSize(groupSize) }
        if let i = weight.firstIndex(where: { !$0.isFinite }) { throw GroupQuantizedMatrixError.nonFiniteWeight(index: i) }
        let grid = AffineGrid(bits: bits, symmetric: symmetric)
        let q = quantizeAffine(weight, rows: rows, columns: columns, grid: grid,
                               granularity: groupSize == -1 || groupSize >= columns ? .channel : .group(groupSize),
                               scaleType: halfPrecisionScales ? .f16 : .f32)
        var m = try GroupQuantizedMatrix(q)
        if !symmetric && minimumZeroPoint > 0 {
            let g = m.groups, size = m.groupSize
            for k in m.zeroPoints.indices where m.zeroPoints[k] < minimumZeroPoint {
                let z = min(minimumZeroPoint, Int32(m.maxCode))
                m.zeroPoints[k] = z
                let r = k / g, lo = r * columns + (k % g) * size, hi = r * columns + min((k % g + 1) * size, columns)
                let p = AffineParameters(scale: m.scales[k], zeroPoint: z)
                for i in lo..<hi { m.codes[i] = UInt8(grid.code(weight[i], p)) }
            }
        }
        return m
    }
}

/// Why a `GroupQuantizedMatrix` is invalid.
public enum GroupQuantizedMatrixError: Error, Equatable, CustomStringConvertible {
    /// Rows or columns are not positive.
    case invalidShape(rows: Int, columns: Int)
    /// Bits outside `GroupQuantizedMatrix.supportedBits`.
    case unsupportedBits(Int)
    /// A group size that is neither positive nor `-1`.
    case invalidGroupSize(Int)
    /// An array whose length does not match the shape.
    case wrongCount(field: String, count: Int, expected: Int)
    /// A code, zero point or group index outside `0..<limit`.
    case valueOutOfRange(field: String, index: Int, value: Int, limit: Int)
    /// A NaN or infinite scale.
    case nonFiniteScale(index: Int)
    /// A NaN or infinite weight given to `roundToNearest`.
    case nonFiniteWeight(index: Int)
    /// More columns assigned to one group than `groupSize`.
    case groupTooLarge(group: Int, columns: Int, groupSize: Int)
    /// A symmetric matrix whose zero point is not `2^(bits−1)`.
    case asymmetricZeroPoint(index: Int, value: Int, expected: Int)

    /// A one-line explanation.
    public var description: String {
        switch self {
        case let .invalidShape(r, c): return "invalid shape \(r)×\(c)"
        case let .unsupportedBits(b): return "unsupported bit width \(b) (expected 2, 3, 4 or 8)"
        case let .invalidGroupSize(g): return "invalid group size \(g) (expected a positive number or -1)"
        case let .wrongCount(f, n, want): return "\(f) has \(n) entries, expected \(want)"
        case let .valueOutOfRange(f, i, v, lim): return "\(f)[\(i)] = \(v) is outside 0..<\(lim)"
        case let .nonFiniteScale(i): return "scales[\(i)] is not finite"
        case let .nonFiniteWeight(i): return "weight[\(i)] is not finite"
        case let .groupTooLarge(g, n, size): return "group \(g) has \(n) columns, more than the group size \(size)"
        case let .asymmetricZeroPoint(i, v, z): return "symmetric matrix has zeroPoints[\(i)] = \(v), expected \(z)"
        }
    }
}
