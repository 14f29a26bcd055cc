import Foundation
import Tensors

/// LLM.int8()-style mixed-precision decomposition (Dettmers et al., 2022): a few input
/// columns (features) carry activations far larger than the rest, and one per-token int8
/// scale would spend its range on them. Those columns are multiplied in f32 through BLAS
/// with the f32 weight columns; every other column goes through the int8 product with
/// per-row activation and per-output-channel weight scales ("vector-wise"), whose scales
/// then see only the ordinary columns.
///
///     y = x[:, O] · W[:, O]ᵀ (f32)  +  W8A8(x with O zeroed, W with O zeroed) + b
///
/// where O is `outlierColumns`. An input that is non-zero only on O gives exactly the f32
/// product of those columns.
public struct OutlierDecomposedLinear: Linear, SizedLinear, @unchecked Sendable {
    /// Input width (columns of the weight).
    public let inFeatures: Int
    /// Output width (rows of the weight).
    public let outFeatures: Int
    /// The input columns computed in f32, ascending, without repeats.
    public let outlierColumns: [Int]
    /// The int8 part: the weight with the outlier columns set to zero, dynamic per-token
    /// activations. It also adds the bias.
    public let int8Part: W8A8Linear
    /// The f32 weight columns of `outlierColumns`, `[outFeatures, outlierColumns.count]` row-major.
    public let outlierWeight: [Float]

    /// Splits `weight` (`outFeatures × inFeatures` f32, row-major) at `outlierColumns`
    /// (any order; repeats are ignored; each in `0..<inFeatures`).
    public init(weight: UnsafeBufferPointer<Float>, outFeatures: Int, inFeatures: Int, outlierColumns: [Int],
                bias: [Float]? = nil) {
        precondition(weight.count == outFeatures * inFeatures, "weight size does not match shape")
        let cols = Array(Set(outlierColumns)).sorted()
        precondition(cols.allSatisfy { $0 >= 0 && $0 < inFeatures }, "outlier column out of 0..<\(inFeatures)")
        var rest = Array(weight)
        var gathered = [Float](repeating: 0, count: outFeatures * cols.count)
        for j in 0..<outFeatures {
            for (c, col) in cols.enumerated() {
                gathered[j * cols.count + c] = rest[j * inFeatures + col]
                rest[j * inFeatures + col] = 0
            }
        }
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.outlierColumns = cols
        outlierWeight = gathered
        int8Part = rest.withUnsafeBufferPointer {
            W8A8Linear(weight: $0, outFeatures: outFeatures, inFeatures: inFeatures, bias: bias,
                       activations: .dynamicPerToken)
        }
    }

    /// Splits the f32 weights of `dense` (keeping its bias).
    public init(_ dense: DenseLinear, outlierColumns: [Int]) {
        self = dense.weight.withPointer {
            OutlierDecomposedLinear(weight: UnsafeBufferPointer(start: $0, count: dense.weight.count),
                                    outFeatures: dense.outFeatures, inFeatures: dense.inFeatures,
                                    outlierColumns: outlierColumns, bias: dense.bias)
        }
    }

    /// The columns of `x` (`rows × columns`, row-major: a calibration batch of tokens) in
    /// which some token has |x| > `threshold` (LLM.int8() uses 6.0), ascending.
    public static func outlierColumns(in x: UnsafePointer<Float>, rows: Int, columns: Int,
                                      threshold: Float = 6.0) -> [Int] {
        var maxAbs = [Float](repeating: 0, count: columns)
        for r in 0..<rows {
            let row = x + r * columns
            for c in 0..<columns { maxAbs[c] = max(maxAbs[c], abs(row[c])) }
        }
        return outlierColumns(maxAbs: maxAbs, threshold: threshold)
    }

    /// The columns whose calibration max|x| (`maxAbs`, one per column, e.g. from
    /// `ActivationStatistics.maxAbs`) exceeds `threshold`, ascending.
    public static func outlierColumns(maxAbs: [Float], threshold: Float = 6.0) -> [Int] {
        maxAbs.indices.filter { maxAbs[$0] > threshold }
    }

    /// Bytes of the int8 part plus the f32 outlier columns.
    public var storageBytes: Int { int8Part.storageBytes + 4 * outlierWeight.count }

    /// Computes `[rows, outFeatures]` into `y` from `x` (`[rows, inFeatures]`): the int8
    /// product of the ordinary columns, then the f32 product of the outlier columns added.
    public func forward(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        outlierWeight.withUnsafeBufferPointer { w in
            Self.decomposedForward(x, rows: rows, columns: outlierColumns, int8Part: int8Part, outlierWeight: w.baseAddress, into: y)
        }
    }

    /// `y = x[:, O] · Wo ᵀ + int8Part(x with O zeroed)`, O = `columns` (ascending, may be
    /// empty), Wo = `outlierWeight` (`[int8Part.outFeatures, columns.count]` row-major).
    static func decomposedForward(_ x: UnsafePointer<Float>, rows: Int, columns: [Int], int8Part: W8A8Linear,
                                  outlierWeight: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>) {
        guard rows > 0 else { return }
        let k = int8Part.inFeatures, c = columns.count
        guard c > 0, let outlierWeight else { return int8Part.forward(x, rows: rows, into: y) }
        // x with the outlier columns zeroed, and those columns gathered, in one scratch.
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: rows * (k + c))
        defer { scratch.deallocate() }
        let rest = scratch, outliers = scratch + rows * k
        rest.update(from: x, count: rows * k)
        for r in 0..<rows {
            for (i, col) in columns.enumerated() {
                outliers[r * c + i] = rest[r * k + col]
                rest[r * k + col] = 0
            }
        }
        int8Part.forward(rest, rows: rows, into: y)
        BLAS.gemm(transposeB: true, m: rows, n: int8Part.outFeatures, k: c, outliers, lda: c, outlierWeight, ldb: c,
                  beta: 1, y, ldc: int8Part.outFeatures)
    }
}

/// LLM.int8() as bitsandbytes runs a stored 8-bit layer: the weights are int8 rows with
/// one scale each (vector-wise, `W ≈ q · s`), and the outlier columns are found anew in
/// every batch — the input columns in which some row has |x| ≥ `threshold`. Those columns
/// are multiplied in f32 with the dequantized weight columns; the rest go through the
/// dynamic per-token W8A8 product. Unlike `OutlierDecomposedLinear` (columns fixed from
/// calibration, exact f32 weights for them) nothing but the int8 rows and their scales is
/// needed, which is all a bitsandbytes checkpoint holds.
public struct LLMInt8Linear: Linear, SizedLinear, @unchecked Sendable {
    /// Input width.
    public var inFeatures: Int { int8Part.inFeatures }
    /// Output width.
    public var outFeatures: Int { int8Part.outFeatures }
    /// |x| at or above which a column is an outlier (0: never).
    public let threshold: Float
    /// The int8 rows, dynamic per-token activations.
    public let int8Part: W8A8Linear
    private let codes: [Int8]

    /// A layer over int8 rows (`outFeatures × inFeatures`, values in −127…127) and their
    /// scales (`W ≈ q · scale`).
    public init(quantizedWeight: [Int8], scales: [Float], outFeatures: Int, inFeatures: Int, threshold: Float = 6) {
        int8Part = W8A8Linear(quantizedWeight: quantizedWeight, scales: scales, outFeatures: outFeatures,
                              inFeatures: inFeatures, activations: .dynamicPerToken)
        codes = quantizedWeight
        self.threshold = threshold
    }

    /// Bytes of the int8 rows and scales as stored in a checkpoint.
    public var storageBytes: Int { inFeatures * outFeatures + 4 * outFeatures }

    /// The input columns of `x` (`rows × inFeatures`) with some |x| ≥ `threshold`, ascending.
    public func outlierColumns(_ x: UnsafePointer<Float>, rows: Int) -> [Int] {
        guard threshold > 0 else { return [] }
        var hit = [Bool](repeating: false, count: inFeatures)
        for r in 0..<rows {
            let row = x + r * inFeatures
            for c in 0..<inFeatures where abs(row[c]) >= threshold { hit[c] = true }
        }
        return hit.indices.filter { hit[$0] }
    }

    /// Computes `[rows, outFeatures]` into `y` from `x` (`[rows, inFeatures]`).
    public func forward(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        let columns = outlierColumns(x, rows: rows)
        guard !columns.isEmpty else { return int8Part.forward(x, rows: rows, into: y) }
        let n = outFeatures, k = inFeatures, c = columns.count
        var weight = [Float](repeating: 0, count: n * c)
        for j in 0..<n {
            let s = int8Part.weightScales[j]
            for (i, col) in columns.enumerated() { weight[j * c + i] = Float(codes[j * k + col]) * s }
        }
        weight.withUnsafeBufferPointer { w in
            OutlierDecomposedLinear.decomposedForward(x, rows: rows, columns: columns, int8Part: int8Part,
                                                      outlierWeight: w.baseAddress, into: y)
        }
    }
}
