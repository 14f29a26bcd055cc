import Foundation
import Formats

/// How far one quantized weight matrix is from the reference's: ‖W − Ŵ‖ / ‖W‖ over the
/// dequantized values (Frobenius norms).
public struct TensorError: Codable, Sendable, Equatable {
    /// The tensor's name (shared by both files).
    public var name: String
    /// The block (layer) index, or nil for tensors outside the blocks (embedding, head).
    public var layer: Int?
    /// The tensor's role: its name without the layer prefix and `.weight` (`attn_q`, `ffn_down`).
    public var role: String
    /// The tensor's storage type in the model.
    public var type: String
    /// Number of weights.
    public var elements: Int
    /// ‖W − Ŵ‖², summed in double precision.
    public var errorSquaredNorm: Double
    /// ‖W‖².
    public var referenceSquaredNorm: Double
    /// ‖W − Ŵ‖ / ‖W‖ (0 when W is all zeros and so is the error).
    public var relativeRMSE: Double

    /// A record from the two squared norms.
    public init(name: String, layer: Int?, role: String, type: String, elements: Int,
                errorSquaredNorm: Double, referenceSquaredNorm: Double) {
        self.name = name
        self.layer = layer
        self.role = role
        self.type = type
        self.elements = elements
        self.errorSquaredNorm = errorSquaredNorm
        self.referenceSquaredNorm = referenceSquaredNorm
        relativeRMSE = referenceSquaredNorm > 0 ? (errorSquaredNorm / referenceSquaredNorm).squareRoot()
            : (errorSquaredNorm > 0 ? .infinity : 0)
    }
}

/// Per-tensor weight error of a model against the reference it was quantized from.
public enum LayerErrorProfile {
    /// The 2-D tensors of `reference` that `model` also has, with the same shape.
    public static func matchingTensors(reference: Checkpoint, model: Checkpoint) -> [String] {
        reference.tensors.filter { t in
            t.shape.count == 2 && model.tensor(named: t.name)?.shape == t.shape
        }.map(\.name)
    }

    /// The relative error of every matching 2-D tensor, decoding one pair at a time so memory
    /// stays at two tensors of f32. `onTensor` is called after each one (for progress).
    public static func measure(reference: Checkpoint, model: Checkpoint,
                               onTensor: (Int, Int) -> Void = { _, _ in }) throws -> [TensorError] {
        let names = matchingTensors(reference: reference, model: model)
        var out: [TensorError] = []
        out.reserveCapacity(names.count)
        for (i, name) in names.enumerated() {
            let (err, ref) = squaredNorms(try reference.floats(name).data, try model.floats(name).data)
            let t = model.tensor(named: name)!
            out.append(TensorError(name: name, layer: layerIndex(of: name), role: role(of: name), type: t.type.rawValue,
                                   elements: t.elementCount, errorSquaredNorm: err, referenceSquaredNorm: ref))
            onTensor(i + 1, names.count)
        }
        return out
    }

    /// ‖a − b‖² and ‖a‖², accumulated in double precision per block of floats.
    public static func squaredNorms(_ a: [Float], _ b: [Float]) -> (error: Double, reference: Double) {
        precondition(a.count == b.count)
        var err = 0.0, ref = 0.0
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                var i = 0
                while i < pa.count {
                    let end = min(pa.count, i + 4096)
                    var e: Float = 0, r: Float = 0
                    for j in i..<end {
                        let d = pa[j] - pb[j]
                        e += d * d
                        r += pa[j] * pa[j]
                    }
                    err += Double(e)
                    ref += Double(r)
                    i = end
                }
            }
        }
        return (err, ref)
    }

    /// The block index in a GGUF (`blk.12.attn_q.weight`) or Hugging Face
    /// (`model.layers.12.self_attn.q_proj.weight`) tensor name.
    public static func layerIndex(of name: String) -> Int? {
        let parts = name.split(separator: ".")
        for (i, p) in parts.enumerated() where (p == "blk" || p == "layers" || p == "h") && i + 1 < parts.count {
            if let n = Int(parts[i + 1]) { return n }
        }
        return nil
    }

    /// The name without its block prefix and `.weight` suffix: `blk.3.ffn_down.weight` → `ffn_down`.
    public static func role(of name: String) -> String {
        var parts = name.split(separator: ".").map(String.init)
        if let i = parts.indices.first(where: { (parts[$0] == "blk" || parts[$0] == "layers" || parts[$0] == "h")
            && $0 + 1 < parts.count && Int(parts[$0 + 1]) != nil }) {
            parts.removeSubrange(0...(i + 1))
        }
        if parts.last == "weight" { parts.removeLast() }
        return parts.joined(separator: ".")
    }
}
