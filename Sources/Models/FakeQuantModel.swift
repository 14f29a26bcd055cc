import Formats
import Foundation
import Quantization
import Tensors

/// What fake quantization did to one weight matrix.
public struct FakeQuantLayerReport: Encodable, Sendable {
    /// Tensor name (GGUF naming for Llama models, the checkpoint's own otherwise).
    public var name: String
    /// `[rows, columns]`.
    public var shape: [Int]
    /// The scheme's short string.
    public var scheme: String
    /// Error of the decoded weights against the originals.
    public var error: WeightErrorSummary

    /// A report.
    public init(name: String, shape: [Int], scheme: String, error: WeightErrorSummary) {
        self.name = name
        self.shape = shape
        self.scheme = scheme
        self.error = error
    }
}

/// The error metrics of one tensor, encodable for reports; the raw sums stay with it so
/// layers pool exactly (`WeightErrorAggregate`).
public struct WeightErrorSummary: Encodable, Sendable {
    /// The raw sums the metrics come from.
    public let measured: QuantizationError
    /// Mean squared error.
    public var mse: Double
    /// Largest absolute error.
    public var maxAbs: Double
    /// Signal-to-quantization-noise ratio in dB (10·log10(Σx² / Σ(x−x̂)²)), at most 999.
    public var sqnrDB: Double
    /// Cosine similarity of the flattened tensors.
    public var cosine: Double

    /// The metrics of `approximation` against `reference`.
    public init(reference: [Float], approximation: [Float]) {
        self.init(QuantizationError(reference: reference, approximation: approximation))
    }

    /// The metrics of an accumulated error.
    public init(_ m: QuantizationError) {
        measured = m
        mse = m.mse
        maxAbs = Double(m.maxAbs)
        sqnrDB = min(m.sqnrDB, 999)  // exact reconstruction: capped so JSON stays finite
        cosine = m.cosine
    }

    private enum CodingKeys: String, CodingKey { case mse, maxAbs, sqnrDB, cosine }
}

extension LlamaModel {
    /// Replaces each block linear whose name passes `include` by the quantize→dequantize
    /// image of its weights under `scheme` (weights only: a W8A8 scheme's activation part is
    /// `W8A8Linear`'s business) and returns each layer's error. The model must hold f32
    /// weights (`WeightMode.f32`); layers that do not are refused.
    ///
    /// - Throws: `QuantSchemeError` or `WeightMatrixError` from the toolkit, or
    ///   `FakeQuantError.notDense` for a layer that is not full precision.
    public func fakeQuantizeWeights(scheme: QuantScheme, where include: (String) -> Bool,
                                    progress: (Int, Int, String) -> Void = { _, _, _ in }) throws -> [FakeQuantLayerReport] {
        let names = linearNames.filter(include)
        var reports: [FakeQuantLayerReport] = []
        for (i, name) in names.enumerated() {
            guard let layer = linear(named: name), let w = denseWeights(named: name) else {
                throw FakeQuantError.notDense(layer: name)
            }
            let q = try fakeQuantize(w, rows: layer.outFeatures, columns: layer.inFeatures, scheme: scheme)
            let bias = (layer as? DenseLinear)?.bias
            replaceLinear(named: name, with: DenseLinear(weight: FloatStorage(q), outFeatures: layer.outFeatures,
                                                         inFeatures: layer.inFeatures, bias: bias))
            reports.append(FakeQuantLayerReport(name: name, shape: [layer.outFeatures, layer.inFeatures],
                                                scheme: scheme.description,
                                                error: WeightErrorSummary(reference: w, approximation: q)))
            progress(i + 1, names.count, name)
        }
        return reports
    }
}

/// Why a model could not be fake-quantized.
public enum FakeQuantError: Error, CustomStringConvertible, Equatable {
    /// The layer is not an f32 `DenseLinear` (load the model with f32 weights).
    case notDense(layer: String)
    /// The layer pattern selected nothing.
    case noLayers(pattern: String)

    /// A one-line message.
    public var description: String {
        switch self {
        case .notDense(let l): return "layer \(l) does not hold f32 weights; load the model with f32 weights"
        case .noLayers(let p): return "no linear layer matches '\(p)'"
        }
    }
}

/// Fake-quantizes every 2-D tensor of a checkpoint whose name passes `include` and reports
/// the weight error only (for models this library does not run, e.g. BERT encoders).
/// Tensors are decoded one at a time.
public func fakeQuantizeCheckpoint(_ checkpoint: Checkpoint, scheme: QuantScheme, where include: (String) -> Bool,
                                   progress: ProgressSink? = nil) throws -> [FakeQuantLayerReport] {
    var reports: [FakeQuantLayerReport] = []
    for t in checkpoint.tensors where t.shape.count == 2 && t.type.isFloat && include(t.name) {
        let w = try checkpoint.floats(t.name).data
        let q = try fakeQuantize(w, rows: t.shape[0], columns: t.shape[1], scheme: scheme)
        reports.append(FakeQuantLayerReport(name: t.name, shape: t.shape, scheme: scheme.description,
                                            error: WeightErrorSummary(reference: w, approximation: q)))
        progress?.advance(note: t.name)
    }
    return reports
}

/// Anything that can be told a step finished (the CLI's progress bar).
public protocol ProgressSink {
    /// One more step done; `note` names it.
    func advance(note: String)
}

/// Summary of many layers' errors.
public struct WeightErrorAggregate: Encodable, Sendable {
    /// Weights covered.
    public var parameters: Int
    /// Every layer's error pooled (total signal over total noise, one cosine, one RMSE).
    public var pooled: WeightErrorSummary
    /// Mean of the layers' SQNR, dB.
    public var meanLayerSQNR: Double
    /// The lowest layer SQNR, dB, and its layer.
    public var worstLayerSQNR: Double, worstLayer: String

    /// Aggregates `reports`.
    public init(_ reports: [FakeQuantLayerReport]) {
        let merged = QuantizationError.merged(reports.map(\.error.measured))
        parameters = merged.count
        pooled = WeightErrorSummary(merged)
        meanLayerSQNR = reports.isEmpty ? 0 : reports.map(\.error.sqnrDB).reduce(0, +) / Double(reports.count)
        let worst = reports.min { $0.error.sqnrDB < $1.error.sqnrDB }
        worstLayerSQNR = worst?.error.sqnrDB ?? 0
        worstLayer = worst?.name ?? ""
    }
}
