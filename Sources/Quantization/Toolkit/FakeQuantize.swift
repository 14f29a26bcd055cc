import Tensors

/// A weight matrix (or its companion vector) that a toolkit quantizer refused.
public enum WeightMatrixError: Error, Equatable, CustomStringConvertible {
    /// The buffer does not hold `rows × columns` values, or a dimension is negative.
    case shapeMismatch(count: Int, rows: Int, columns: Int)
    /// A weight is NaN or infinite (flat index given).
    case nonFinite(index: Int, value: Float)

    /// A one-line message saying what is wrong.
    public var description: String {
        switch self {
        case .shapeMismatch(let count, let rows, let columns):
            return "weights hold \(count) values, expected \(rows) × \(columns)"
        case .nonFinite(let index, let value):
            return "weight \(index) is \(value); quantization needs finite weights"
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
        out.withUnsafeMutableBufferPointer { o in
            fakeQuantize(w, into: o, rows: rows, columns: columns, scheme: scheme)
        }
        return out
    }
}

/// Buffer form of `fakeQuantize(_:rows:columns:scheme:)`; `output` must hold as many values
/// as `weights`. The weights and scheme are assumed validated.
func fakeQuantize(_ w: UnsafeBufferPointer<Float>, into o: UnsafeMutableBufferPointer<Float>,
                  rows: Int, columns: Int, scheme: QuantScheme) {
    switch scheme.codebook {
    case .integer(let bits, let symmetric):
        fakeQuantizeAffine(w, into: o, rows: rows, columns: columns,
                           grid: AffineGrid(bits: bits, symmetric: symmetric),
                           granularity: scheme.granularity, scaleType: scheme.scaleType)
    case .nf4, .fp4:
        let q = quantizeBlockwise(w, rows: rows, columns: columns, codebook: scheme.codebook == .nf4 ? .nf4 : .fp4,
                                  granularity: scheme.granularity, scaleType: scheme.scaleType,
                                  doubleQuant: scheme.doubleQuant)
        copy(q.dequantized(), into: o)
    case .kmeans(let bits):
        let q = quantizeKMeans(w, rows: rows, columns: columns, bits: bits, granularity: scheme.granularity,
                               scaleType: scheme.scaleType)
        copy(q.dequantized(), into: o)
    case .fp8E4M3, .fp8E5M2:
        let q = quantizeFP8(w, rows: rows, columns: columns, format: scheme.codebook == .fp8E4M3 ? .e4m3 : .e5m2,
                            granularity: scheme.granularity, scaleType: scheme.scaleType)
        copy(q.dequantized(), into: o)
    }
}

private func copy(_ values: [Float], into o: UnsafeMutableBufferPointer<Float>) {
    _ = o.update(fromContentsOf: values)
}
