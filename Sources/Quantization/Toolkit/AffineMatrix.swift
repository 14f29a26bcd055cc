import Tensors

/// A row-major weight matrix quantized to an `AffineGrid`: one code per weight and one
/// `AffineParameters` per scale group.
public struct AffineQuantized: Sendable {
    /// Output channels.
    public let rows: Int
    /// Input columns (the row length).
    public let columns: Int
    /// The integer grid the codes live on.
    public let grid: AffineGrid
    /// Which weights share parameters.
    public let granularity: QuantScheme.Granularity
    /// `rows × columns` codes, row-major, each in `grid.qmin … grid.qmax`.
    public var codes: [Int32]
    /// The scale groups' parameters: one for `.tensor`; otherwise `groupsPerRow` per row,
    /// row after row.
    public var parameters: [AffineParameters]

    /// Creates a quantized matrix from its parts (see the properties for the layout).
    public init(rows: Int, columns: Int, grid: AffineGrid, granularity: QuantScheme.Granularity,
                codes: [Int32], parameters: [AffineParameters]) {
        precondition(codes.count == rows * columns, "AffineQuantized: codes must be rows × columns")
        self.rows = rows
        self.columns = columns
        self.grid = grid
        self.granularity = granularity
        self.codes = codes
        self.parameters = parameters
    }

    /// Scale groups per row (1 for `.tensor` and `.channel`).
    public var groupsPerRow: Int { granularity.groupsPerRow(columns: columns) }

    /// The parameters that apply to the weight at `(row, column)`.
    public func parameters(row: Int, column: Int) -> AffineParameters {
        switch granularity {
        case .tensor: return parameters[0]
        case .channel: return parameters[row]
        case .group(let g): return parameters[row * groupsPerRow + column / g]
        }
    }

    /// The matrix the codes stand for, row-major.
    public func dequantized() -> [Float] {
        let columns = self.columns, grid = self.grid
        let perRow = groupsPerRow, groupLength = granularity.groupLength(columns: columns)
        let isTensor = granularity == .tensor
        return [Float](unsafeUninitializedCapacity: rows * columns) { out, count in
            codes.withUnsafeBufferPointer { q in
                parameters.withUnsafeBufferPointer { params in
                    let out = out.baseAddress!, q = q.baseAddress!
                    parallelFor(rows) { r in
                        for k in 0..<perRow {
                            let p = isTensor ? params[0] : params[r * perRow + k]
                            let lo = r * columns + k * groupLength
                            let hi = r * columns + Swift.min((k + 1) * groupLength, columns)
                            for i in lo..<hi { out[i] = grid.value(q[i], p) }
                        }
                    }
                }
            }
            count = rows * columns
        }
    }
}

/// Round-to-nearest quantization of a row-major `rows × columns` matrix to `grid`, with one
/// scale (and zero point) per `granularity` group chosen from the group's min and max.
///
/// Every weight lands within `scale / 2` of its decoded value. Rows run in parallel.
/// - Precondition: `weights.count == rows * columns` and every weight is finite.
public func quantizeAffine(
    _ weights: UnsafeBufferPointer<Float>, rows: Int, columns: Int, grid: AffineGrid,
    granularity: QuantScheme.Granularity, scaleType: QuantScheme.ScaleType = .f32
) -> AffineQuantized {
    precondition(weights.count == rows * columns, "quantizeAffine: weights must hold rows × columns values")
    let perRow = granularity.groupsPerRow(columns: columns)
    let paramCount = granularity == .tensor ? 1 : rows * perRow
    var parameters = [AffineParameters](repeating: .init(scale: 0, zeroPoint: 0), count: paramCount)
    let codes = [Int32](unsafeUninitializedCapacity: rows * columns) { out, count in
        parameters.withUnsafeMutableBufferPointer { params in
            let params = params.baseAddress!
            affineRows(weights, rows: rows, columns: columns, grid: grid, granularity: granularity,
                       scaleType: scaleType) { r, k, p, lo, hi in
                params[granularity == .tensor ? 0 : r * perRow + k] = p
                for i in lo..<hi { out[i] = grid.code(weights[i], p) }
            }
        }
        count = rows * columns
    }
    return AffineQuantized(rows: rows, columns: columns, grid: grid, granularity: granularity,
                           codes: codes, parameters: parameters)
}

/// Array form of `quantizeAffine(_:rows:columns:grid:granularity:scaleType:)`.
public func quantizeAffine(
    _ weights: [Float], rows: Int, columns: Int, grid: AffineGrid,
    granularity: QuantScheme.Granularity, scaleType: QuantScheme.ScaleType = .f32
) -> AffineQuantized {
    weights.withUnsafeBufferPointer {
        quantizeAffine($0, rows: rows, columns: columns, grid: grid, granularity: granularity,
                       scaleType: scaleType)
    }
}

/// `quantizeAffine` followed by `dequantized()`, without storing the codes: writes each
/// weight rounded to its group's grid into `output` (which may alias nothing in `weights`).
public func fakeQuantizeAffine(
    _ weights: UnsafeBufferPointer<Float>, into output: UnsafeMutableBufferPointer<Float>,
    rows: Int, columns: Int, grid: AffineGrid, granularity: QuantScheme.Granularity,
    scaleType: QuantScheme.ScaleType = .f32
) {
    precondition(weights.count == rows * columns && output.count == weights.count,
                 "fakeQuantizeAffine: buffers must hold rows × columns values")
    affineRows(weights, rows: rows, columns: columns, grid: grid, granularity: granularity,
               scaleType: scaleType) { _, _, p, lo, hi in
        for i in lo..<hi { output[i] = grid.fakeQuantize(weights[i], p) }
    }
}

/// The smallest and largest of `x[lo..<hi]` (0, 0 when empty).
@inline(__always)
func minMax(_ x: UnsafeBufferPointer<Float>, _ lo: Int, _ hi: Int) -> (min: Float, max: Float) {
    guard lo < hi else { return (0, 0) }
    var mn = x[lo], mx = x[lo]
    for i in (lo + 1)..<hi {
        let v = x[i]
        mn = Swift.min(mn, v)
        mx = Swift.max(mx, v)
    }
    return (mn, mx)
}

/// The smallest and largest value of the whole buffer, reduced over rows in parallel.
func minMax(_ x: UnsafeBufferPointer<Float>, rows: Int, columns: Int) -> (min: Float, max: Float) {
    guard rows > 0, columns > 0 else { return (0, 0) }
    var partial = [(min: Float, max: Float)](repeating: (0, 0), count: rows)
    partial.withUnsafeMutableBufferPointer { part in
        let part = part.baseAddress!
        parallelFor(rows) { r in part[r] = minMax(x, r * columns, (r + 1) * columns) }
    }
    return partial.dropFirst().reduce(partial[0]) { (Swift.min($0.min, $1.min), Swift.max($0.max, $1.max)) }
}

/// Walks every scale group, rows in parallel: calls `body(row, group, parameters, lo, hi)`
/// where `lo..<hi` are the group's flat indices and the parameters cover its min and max.
func affineRows(
    _ weights: UnsafeBufferPointer<Float>, rows: Int, columns: Int, grid: AffineGrid,
    granularity: QuantScheme.Granularity, scaleType: QuantScheme.ScaleType,
    _ body: (Int, Int, AffineParameters, Int, Int) -> Void
) {
    let perRow = granularity.groupsPerRow(columns: columns)
    let groupLength = granularity.groupLength(columns: columns)
    var tensorParameters: AffineParameters?
    if granularity == .tensor {
        let (mn, mx) = minMax(weights, rows: rows, columns: columns)
        tensorParameters = grid.parameters(min: mn, max: mx, scaleType: scaleType)
    }
    parallelFor(rows) { r in
        for k in 0..<perRow {
            let lo = r * columns + k * groupLength
            let hi = r * columns + Swift.min((k + 1) * groupLength, columns)
            let p: AffineParameters
            if let tensorParameters {
                p = tensorParameters
            } else {
                let (mn, mx) = minMax(weights, lo, hi)
                p = grid.parameters(min: mn, max: mx, scaleType: scaleType)
            }
            body(r, k, p, lo, hi)
        }
    }
}
