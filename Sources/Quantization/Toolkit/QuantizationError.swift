import Foundation

/// How far an approximation (e.g. dequantized weights) is from its reference: mean squared
/// error, largest absolute error, signal-to-quantization-noise ratio and cosine similarity.
///
/// It keeps the underlying sums (in double precision), so errors of several tensors merge
/// exactly as if they had been measured on all their values at once (`merged(with:)`).
public struct QuantizationError: Hashable, Sendable, CustomStringConvertible {
    /// Values compared.
    public private(set) var count: Int
    /// Σ (x − y)².
    public private(set) var sumSquaredError: Double
    /// Σ x² of the reference.
    public private(set) var sumSquaredReference: Double
    /// Σ y² of the approximation.
    public private(set) var sumSquaredApproximation: Double
    /// Σ x·y.
    public private(set) var dotProduct: Double
    /// max |x − y|.
    public private(set) var maxAbs: Float

    /// No values: every statistic is 0 (cosine 1, SQNR infinite).
    public init() {
        count = 0
        sumSquaredError = 0
        sumSquaredReference = 0
        sumSquaredApproximation = 0
        dotProduct = 0
        maxAbs = 0
    }

    /// Compares `approximation` with `reference` element by element.
    /// - Precondition: both have the same count.
    public init(reference: UnsafeBufferPointer<Float>, approximation: UnsafeBufferPointer<Float>) {
        precondition(reference.count == approximation.count, "QuantizationError: counts differ")
        self.init()
        count = reference.count
        for i in 0..<reference.count {
            let x = Double(reference[i]), y = Double(approximation[i])
            let d = x - y
            sumSquaredError += d * d
            sumSquaredReference += x * x
            sumSquaredApproximation += y * y
            dotProduct += x * y
            maxAbs = max(maxAbs, abs(reference[i] - approximation[i]))
        }
    }

    /// Array form of `init(reference:approximation:)`.
    public init(reference: [Float], approximation: [Float]) {
        self = reference.withUnsafeBufferPointer { r in
            approximation.withUnsafeBufferPointer { QuantizationError(reference: r, approximation: $0) }
        }
    }

    /// Mean squared error.
    public var mse: Double { count == 0 ? 0 : sumSquaredError / Double(count) }

    /// Root mean squared error.
    public var rmse: Double { mse.squareRoot() }

    /// Signal-to-quantization-noise ratio in decibels, `10·log10(Σx² / Σ(x − y)²)`; infinite
    /// when the approximation is exact.
    public var sqnrDB: Double {
        if sumSquaredError == 0 { return .infinity }
        return 10 * log10(sumSquaredReference / sumSquaredError)
    }

    /// Cosine similarity of the two vectors (1 when both are zero; 0 when just one is).
    public var cosine: Double {
        if sumSquaredReference == 0 && sumSquaredApproximation == 0 { return 1 }
        let norms = (sumSquaredReference * sumSquaredApproximation).squareRoot()
        return norms == 0 ? 0 : dotProduct / norms
    }

    /// The error over both sets of values together.
    public func merged(with other: QuantizationError) -> QuantizationError {
        var m = self
        m.count += other.count
        m.sumSquaredError += other.sumSquaredError
        m.sumSquaredReference += other.sumSquaredReference
        m.sumSquaredApproximation += other.sumSquaredApproximation
        m.dotProduct += other.dotProduct
        m.maxAbs = max(maxAbs, other.maxAbs)
        return m
    }

    /// The error over all the given sets together.
    public static func merged(_ errors: some Sequence<QuantizationError>) -> QuantizationError {
        errors.reduce(QuantizationError()) { $0.merged(with: $1) }
    }

    /// Merges per-tensor errors into one per layer, in order of each layer's first tensor.
    /// `layer` maps a tensor name to its layer's name; by default `layerName(of:)`.
    public static func byLayer(
        _ tensors: [(name: String, error: QuantizationError)],
        layer: (String) -> String = layerName(of:)
    ) -> [(layer: String, error: QuantizationError)] {
        var order: [String] = [], merged: [String: QuantizationError] = [:]
        for (name, error) in tensors {
            let key = layer(name)
            if merged[key] == nil { order.append(key) }
            merged[key, default: QuantizationError()] = merged[key, default: QuantizationError()].merged(with: error)
        }
        return order.map { ($0, merged[$0]!) }
    }

    /// The layer a tensor belongs to: `blk.N` for GGUF names (`blk.3.attn_q.weight`),
    /// `layers.N` / `layer.N` / `h.N` for Hugging Face names
    /// (`model.layers.3.self_attn.q_proj.weight` → `layers.3`); otherwise the name without
    /// its last component (`token_embd.weight` → `token_embd`).
    public static func layerName(of tensor: String) -> String {
        let parts = tensor.split(separator: ".", omittingEmptySubsequences: false)
        for i in parts.indices.dropLast() where ["blk", "layers", "layer", "h"].contains(parts[i]) {
            if Int(parts[i + 1]) != nil { return "\(parts[i]).\(parts[i + 1])" }
        }
        return parts.count > 1 ? parts.dropLast().joined(separator: ".") : tensor
    }

    /// `mse=… maxAbs=… sqnr=…dB cos=…`.
    public var description: String {
        func f(_ v: Double, _ digits: Int) -> String { String(format: "%.\(digits)g", v) }
        return "mse=\(f(mse, 4)) maxAbs=\(f(Double(maxAbs), 4)) sqnr=\(f(sqnrDB, 4))dB cos=\(f(cosine, 6))"
    }
}
