import Foundation
import Tensors

/// Which W8A8 layer every block linear of a model becomes (`LlamaModel.quantizeW8A8`).
public enum W8A8Scheme: Sendable {
    /// `W8A8Linear` with per-token dynamic activation scales.
    case dynamicPerToken
    /// `W8A8Linear` with one static activation scale per layer: max|x| / 127 over every
    /// column of the layer's calibration inputs (`ActivationStatistics.maxAbs`).
    case staticPerTensor(ActivationStatistics)
    /// `OutlierDecomposedLinear` whose f32 columns are those with calibration max|x| above `threshold`.
    case outlierDecomposed(ActivationStatistics, threshold: Float)
}

/// Why a model's layers could not be converted to W8A8.
public enum W8A8Error: Error, CustomStringConvertible, Equatable {
    /// A static or outlier scheme met a layer the calibration never reached.
    case missingCalibration(layer: String)
    /// The layer keeps its weights in a form that cannot be read back as f32.
    case unsupportedLayer(layer: String, type: String)

    /// One line naming the layer and what is wrong.
    public var description: String {
        switch self {
        case let .missingCalibration(layer): return "\(layer): no calibration ranges recorded for this layer"
        case let .unsupportedLayer(layer, type): return "\(layer): a \(type) layer has no f32 weights to quantize"
        }
    }
}

extension LlamaModel {
    /// Replaces every block linear layer by `transform(name, layer)`, names being the GGUF
    /// weight names (`blk.3.ffn_up.weight`). The output head is left alone.
    public func mapBlockLinears(_ transform: (String, any Linear) throws -> any Linear) rethrows {
        for l in blocks.indices {
            for (name, path) in Self.linearSlots(l) {
                blocks[l][keyPath: path] = try transform(name, blocks[l][keyPath: path])
            }
        }
    }

    /// Runs each batch of tokens from an empty cache and returns the input statistics of
    /// every block linear (`captureInputs`); the layers are restored afterwards. Batches
    /// shorter than `statistics.minimumRows` (16 by default) are not recorded.
    public func inputStatistics(over batches: [[Int32]],
                                into statistics: ActivationStatistics = ActivationStatistics()) -> ActivationStatistics {
        let original = blocks
        defer { blocks = original }
        captureInputs(into: statistics)
        for batch in batches where !batch.isEmpty {
            _ = forward(batch, cache: makeCache(capacity: batch.count))
        }
        return statistics
    }

    /// Quantizes every block linear layer (not the head, not the embedding) to W8A8 under
    /// `scheme`, from its f32 weights (`DenseLinear`) or its decoded blocks (`QuantizedLinear`).
    ///
    /// - Throws: `W8A8Error` (before changing any layer) if a layer has no f32 weights or,
    ///   for the calibrated schemes, no recorded ranges.
    public func quantizeW8A8(_ scheme: W8A8Scheme) throws {
        var converted: [(String, any Linear)] = []
        for l in blocks.indices {
            for (name, path) in Self.linearSlots(l) {
                converted.append((name, try Self.w8a8(blocks[l][keyPath: path], name: name, scheme: scheme)))
            }
        }
        for (name, layer) in converted { replaceLinear(named: name, with: layer) }
    }

    /// The W8A8 form of one layer.
    static func w8a8(_ layer: any Linear, name: String, scheme: W8A8Scheme) throws -> any Linear {
        guard let dense = DenseLinear(decoding: layer) else {
            throw W8A8Error.unsupportedLayer(layer: name, type: String(describing: type(of: layer)))
        }
        switch scheme {
        case .dynamicPerToken:
            return W8A8Linear(dense, activations: .dynamicPerToken)
        case .staticPerTensor(let statistics):
            guard let m = statistics.maxAbs[name]?.max() else { throw W8A8Error.missingCalibration(layer: name) }
            return W8A8Linear(dense, activations: .staticPerTensor(scale: W8A8Linear.staticScale(maxAbs: m)))
        case .outlierDecomposed(let statistics, let threshold):
            guard let cols = statistics.maxAbs[name] else { throw W8A8Error.missingCalibration(layer: name) }
            return OutlierDecomposedLinear(dense, outlierColumns: OutlierDecomposedLinear.outlierColumns(
                maxAbs: cols, threshold: threshold))
        }
    }
}
