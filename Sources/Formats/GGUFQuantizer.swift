import Foundation
import Quantization
import Tensors

/// What happened to one tensor during `GGUFQuantizer.quantize`.
public struct QuantizedTensorReport: Codable, Sendable {
    /// Tensor name.
    public var name: String
    /// Row-major shape.
    public var shape: [Int]
    /// Type in the input.
    public var from: String
    /// Type in the output.
    public var to: String
    /// Why the recipe chose `to`.
    public var reason: String
    /// Bytes in the output.
    public var bytes: Int
    /// Root-mean-square error of the quantized weights against the input, and the RMS of the input.
    public var rmse: Double, rms: Double
}

/// Quantizes a checkpoint into a GGUF file, tensor by tensor: each tensor is decoded to
/// f32 from the memory-mapped input, quantized to the type its recipe chooses and written,
/// so only one tensor is in memory at a time. The output is written to a temporary file
/// and renamed when complete.
public struct GGUFQuantizer {
    /// Which type each tensor gets.
    public var recipe: QuantRecipe
    /// Per-tensor importance (imatrix: mean squared input activation per column), by tensor name.
    public var importance: [String: [Float]]
    /// Allow inputs whose weights are already quantized (quality will be lower than from full precision).
    public var allowRequantize: Bool
    /// Tensors already encoded elsewhere (e.g. by GPTQ), by name, parked in a spill file
    /// until written: written as given, in place of the recipe's own encoding. Their type
    /// must match what the recipe chose.
    public var precomputed: [String: SpillFile.Slice] = [:]
    /// Whether precomputed tensors approximate the source's values (GPTQ: the report gives
    /// their error against them) or a rescaled model's (AWQ: no error is reported).
    public var precomputedMatchSource = true

    /// A quantizer following `recipe`.
    public init(recipe: QuantRecipe, importance: [String: [Float]] = [:], allowRequantize: Bool = false) {
        self.recipe = recipe
        self.importance = importance
        self.allowRequantize = allowRequantize
    }

    /// The plan: each tensor's chosen type and the reason, without quantizing anything.
    public func plan(_ input: QuantizationSource) -> [(tensor: SourceTensor, choice: QuantRecipe.Choice)] {
        input.tensors.map { t in
            var c = recipe.choose(name: t.name, shape: t.shape)
            if c.keepsInputType && t.type.isFloat { c.type = t.type }
            return (t, c)
        }
    }

    /// Quantizes `input` into a new GGUF at `path`. `progress` is called after each tensor
    /// with (done, total, name).
    public func quantize(_ input: QuantizationSource, to path: String,
                         progress: @escaping (Int, Int, String) -> Void = { _, _, _ in }) throws -> [QuantizedTensorReport] {
        let steps = plan(input)
        if !allowRequantize,
           let q = steps.first(where: { $0.tensor.type.isQuantized && $0.tensor.shape.count >= 2 && $0.choice.type != $0.tensor.type }) {
            throw QuantizeError.alreadyQuantized(path: input.path, tensor: q.tensor.name, type: q.tensor.type.rawValue)
        }
        for (name, imp) in importance {
            if let t = input.tensors.first(where: { $0.name == name }), t.shape.count == 2, imp.count != t.shape[1] {
                throw QuantizeError.badImportance(tensor: name, expected: t.shape[1], actual: imp.count)
            }
            if let j = imp.firstIndex(where: { !$0.isFinite || $0 < 0 }) {
                throw QuantizeError.invalidImportance(tensor: name, index: j, value: imp[j])
            }
        }
        var writer = GGUFWriter(metadata: input.metadata)
        writer.setValue(.uint32(UInt32(recipe.mix.fileType)), forKey: "general.file_type")
        writer.setValue(.uint32(2), forKey: "general.quantization_version")
        var reports = [QuantizedTensorReport?](repeating: nil, count: steps.count)
        let total = steps.count
        var done = 0
        writer.tensors = try steps.enumerated().map { i, step in
            let (t, choice) = step
            let data: GGUFWriter.TensorData
            if let slice = precomputed[t.name] {
                guard slice.count == choice.type.byteCount(elements: t.elementCount) else {
                    throw QuantizeError.unsupportedInput(path: input.path, reason: "precomputed \(t.name) has \(slice.count) bytes, not \(choice.type.rawValue)'s")
                }
                let compare = precomputedMatchSource
                data = .fill { out in
                    let bytes = try slice.load()
                    out.copyBytes(from: bytes)
                    var (rmse, rms) = (0.0, 0.0)
                    if compare {
                        let x = try t.decode()
                        let back = try bytes.withUnsafeBytes { try Codecs.dequantize(choice.type, bytes: $0, count: x.count) }
                        (rmse, rms) = rootMeanSquares(x, back)
                    }
                    reports[i] = QuantizedTensorReport(name: t.name, shape: t.shape, from: t.type.rawValue, to: choice.type.rawValue,
                                                       reason: choice.reason + (compare ? " (precomputed)" : " (precomputed, rescaled: not compared)"),
                                                       bytes: bytes.count, rmse: rmse, rms: rms)
                    done += 1
                    progress(done, total, t.name)
                }
            } else if choice.type == t.type {
                data = .fill { out in out.copyMemory(from: try t.raw()) }
                reports[i] = QuantizedTensorReport(name: t.name, shape: t.shape, from: t.type.rawValue, to: t.type.rawValue,
                                                   reason: choice.reason + " (copied)", bytes: t.type.byteCount(elements: t.elementCount) ?? 0, rmse: 0, rms: 0)
            } else {
                guard Codecs.canQuantize(choice.type) else { throw QuantizeError.unsupportedTarget(type: choice.type.rawValue) }
                let imp = importance[t.name]
                data = .fill { out in
                    let x = try t.decode()
                    if let j = x.firstIndex(where: { !$0.isFinite }) {
                        throw QuantizeError.nonFiniteWeight(path: input.path, tensor: t.name, index: j, value: x[j])
                    }
                    let rowLength = t.shape.last ?? t.elementCount
                    let q = try Codecs.quantize(choice.type, x, rowLength: rowLength, importance: imp)
                    out.copyBytes(from: q)
                    let back = try q.withUnsafeBytes { try Codecs.dequantize(choice.type, bytes: $0, count: x.count) }
                    let (rmse, rms) = rootMeanSquares(x, back)
                    reports[i] = QuantizedTensorReport(name: t.name, shape: t.shape, from: t.type.rawValue,
                                                       to: choice.type.rawValue, reason: choice.reason, bytes: q.count,
                                                       rmse: rmse, rms: rms)
                    done += 1
                    progress(done, total, t.name)
                }
            }
            return GGUFWriter.TensorEntry(name: t.name, dims: t.dims, type: choice.type, data: data)
        }
        try writer.write(to: path)
        return reports.compactMap { $0 }
    }
}

/// Root-mean-square error of `back` against `x`, and the RMS of `x`.
private func rootMeanSquares(_ x: [Float], _ back: [Float]) -> (Double, Double) {
    var se = 0.0, ss = 0.0
    for j in 0..<x.count {
        let d = Double(x[j] - back[j])
        se += d * d
        ss += Double(x[j]) * Double(x[j])
    }
    let n = Double(max(x.count, 1))
    return ((se / n).squareRoot(), (ss / n).squareRoot())
}
