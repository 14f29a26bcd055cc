import Tensors

/// A weight matrix (or its companion vector) that a toolkit quantizer refused.
public enum WeightMatrixError: Error, Equatable, CustomStringConvertible {
    /// The buffer does not hold `rows × columns` values, or a dimension is negative.
    case shapeMismatch(count: Int, rows: Int, columns: Int)
    /// A weight is NaN or infinite (flat index given).
    case nonFinite(index: Int, value: Float)
    /// An importance vector does not have one positive finite entry per input column.
    case invalidImportance(expected: Int, actual: Int)
    /// The scheme is not implemented for this entry point.
    case unsupported(String)

    /// A one-line message saying what is wrong.
    public var description: String {
        switch self {
        case .shapeMismatch(let count, let rows, let columns):
            return "weights hold \(count) values, expected \(rows) × \(columns)"
        case .nonFinite(let index, let value):
            return "weight \(index) is \(value); quantization needs finite weights"
        case .invalidImportance(let expected, let actual):
            return "importance has \(actual) values, expected \(expected) finite non-negative ones (one per column)"
        case .unsupported(let what):
            return what
        }
    }

    /// Throws unless `weights` holds `rows × columns` finite values.
    static func check(_ weights: UnsafeBufferPointer<Float>, rows: Int, columns: Int) throws {
        guard rows >= 0, columns >= 0, rows.multipliedReportingOverflow(by: columns) == (weights.count, false) else {
            throw WeightMatrixError.shapeMismatch(count: weights.count, rows: rows, columns: columns)
        }
        for i in weights.indices where !weights[i].isFinite {
            throw WeightMatrixError.nonFinite(index: i, value: weights[i])
        }
    }
}

/// Quantizes a row-major `rows × columns` weight matrix with `scheme` and decodes it again
/// ("fake quantization"), so the result shows exactly the error the scheme introduces.
///
/// Works for every codebook: integer grids (round to nearest, range from each group's min
/// and max), NF4/FP4 (blockwise absmax, with double quantization when the scheme asks),
/// k-means, and FP8. W8A8 schemes quantize only the weights here (int8 symmetric per channel);
/// activations are a run-time matter.
/// - Throws: `QuantSchemeError` for an invalid scheme; `WeightMatrixError` when the shape
///   does not match or a weight is not finite.
public func fakeQuantize(_ weights: [Float], rows: Int, columns: Int, scheme: QuantScheme) throws -> [Float] {
    try scheme.validate()
    return try weights.withUnsafeBufferPointer { w in
        try WeightMatrixError.check(w, rows: rows, columns: columns)
        var out = [Float](repeating: 0, count: w.count)
        try out.withUnsafeMutableBufferPointer { o in
            try fakeQuantize(w, into: o, rows: rows, columns: columns, scheme: scheme)
        }
        return out
    }
}

/// Buffer form of `fakeQuantize(_:rows:columns:scheme:)`; `output` must hold as many values
/// as `weights`. The weights are assumed validated (shape and finiteness).
func fakeQuantize(_ w: UnsafeBufferPointer<Float>, into o: UnsafeMutableBufferPointer<Float>,
                  rows: Int, columns: Int, scheme: QuantScheme) throws {
    switch scheme.codebook {
    case .integer(let bits, let symmetric):
        fakeQuantizeAffine(w, into: o, rows: rows, columns: columns,
                           grid: AffineGrid(bits: bits, symmetric: symmetric),
                           granularity: scheme.granularity, scaleType: scheme.scaleType)
    case .nf4, .fp4, .kmeans, .fp8E4M3, .fp8E5M2:
        throw WeightMatrixError.unsupported("\(scheme): not implemented yet")
    }
}
