import Foundation
import Quantization
import Tensors

/// One linear layer handed to a layer quantizer by `SequentialQuantizer`.
public struct LayerJob {
    /// GGUF weight name (`blk.3.attn_q.weight`).
    public let name: String
    /// Block index.
    public let layer: Int
    /// Output and input features.
    public let rows: Int, columns: Int
    /// f32 weights, row-major `[rows, columns]`.
    public let weights: [Float]
    /// `2·XᵀX/n` of the layer's calibration inputs (full symmetric `columns × columns`).
    public let hessian: [Float]
}

/// What a layer quantizer returns for one layer.
public struct LayerOutcome {
    /// The quantized weights as f32 (they compute the block's outputs for the next block).
    public var weights: [Float]
    /// What the model keeps in place of the layer once its block is done (e.g. a compact
    /// `QuantizedLinear`, or a `ReleasedLinear` when the caller has taken the result
    /// elsewhere and memory must stay bounded); nil keeps `weights` as a `DenseLinear`.
    public var keep: (any Linear)?

    /// An outcome.
    public init(weights: [Float], keep: (any Linear)? = nil) {
        self.weights = weights
        self.keep = keep
    }
}

/// A layer whose weights have been handed to an exporter: it keeps its shape so the model
/// stays well-formed, but computing with it is a programming error.
public struct ReleasedLinear: Linear {
    /// The layer's name, for the error message.
    public let name: String
    public let inFeatures: Int
    public let outFeatures: Int

    /// A placeholder for layer `name` of the given shape.
    public init(name: String, outFeatures: Int, inFeatures: Int) {
        self.name = name
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
    }

    public func forward(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        fatalError("\(name) was released after quantization; load the written model to run it")
    }
}

/// Seconds spent in each phase of a sequential quantization.
public struct SequentialTimings: Codable, Sendable {
    /// Running calibration windows through blocks (both passes).
    public var forward = 0.0
    /// Accumulating input Hessians.
    public var hessian = 0.0
    /// The layer quantizer (GPTQ's solver).
    public var solver = 0.0
    /// Everything.
    public var total = 0.0
}

/// Accumulates `XᵀX` of the inputs of one or more layers sharing an input.
final class HessianAccumulator: @unchecked Sendable {
    let n: Int
    var upper: [Float]
    var tokens = 0
    var seconds = 0.0

    init(columns: Int) {
        n = columns
        upper = [Float](repeating: 0, count: columns * columns)
    }

    func add(_ x: UnsafePointer<Float>, rows: Int) {
        let start = Date()
        upper.withUnsafeMutableBufferPointer { LinearAlgebra.gramUpper(x, rows: rows, n: n, into: $0.baseAddress!) }
        tokens += rows
        seconds += Date().timeIntervalSince(start)
    }

    /// `2·XᵀX/tokens`, symmetric.
    func hessian() -> [Float] {
        var h = upper
        let scale = 2 / Float(max(tokens, 1))
        for i in h.indices { h[i] *= scale }
        h.withUnsafeMutableBufferPointer { LinearAlgebra.symmetrize($0.baseAddress!, n: n) }
        return h
    }
}

/// Quantizes a Llama model block by block on calibration data, the way GPTQ needs it:
/// the calibration windows' hidden states enter block 0; for each block the inputs of its
/// linear layers are captured (as Hessians `2·XᵀX/n`; layers sharing an input share one),
/// each layer is handed to the layer quantizer, and the block's outputs computed with the
/// *quantized* layers become the next block's inputs. Only one block is ever held in f32:
/// peak memory is one block's weights, its Hessians and the calibration hidden states.
///
/// All of a block's layers see inputs from the block with its original weights (one capture
/// pass per block), then one pass with the quantized block produces the next inputs.
public final class SequentialQuantizer {
    /// The model, changed in place: each block's layers are replaced as it is quantized.
    public let model: LlamaModel
    /// The calibration windows.
    public let windows: CalibrationWindows
    /// Called for each block after its inputs are captured and before its layers are
    /// quantized, with the block index and the Hessian of each distinct input (keyed by the
    /// first consumer's kind: `attn_q`, `attn_output`, `ffn_gate`, `ffn_down`). It may change
    /// the model's block `l` in function-preserving ways (folding scales, as AWQ does) and
    /// returns, per input kind it rescaled, the factor `s` its input columns were divided by.
    public var prepareBlock: ((Int, [String: [Float]]) throws -> [String: [Float]])?
    /// Quantize only the first `blockLimit` blocks (nil: all).
    public var blockLimit: Int?
    /// Called after each layer with (block, layer name, seconds so far).
    public var onLayer: (Int, String, Double) -> Void = { _, _, _ in }

    /// A quantizer over `model` (any weight mode; each block is decoded to f32 when its turn comes).
    public init(model: LlamaModel, windows: CalibrationWindows) {
        self.model = model
        self.windows = windows
    }

    /// Runs the whole model through `quantizeLayer`, layer by layer in forward order.
    public func run(quantizeLayer: (LayerJob) throws -> LayerOutcome) throws -> SequentialTimings {
        let start = Date()
        var timings = SequentialTimings()
        let d = model.hp.hiddenSize, len = windows.length
        let cache = model.makeCache(capacity: len)
        var hidden: [[Float]] = windows.windows.map { w in
            var x = [Float](repeating: 0, count: len * d)
            x.withUnsafeMutableBufferPointer { xb in
                for (i, tok) in w.enumerated() { model.embedding.row(Int(tok), into: xb.baseAddress! + i * d) }
            }
            return x
        }
        for l in model.blocks.indices.prefix(blockLimit ?? model.blocks.count) {
            var block = model.blocks[l]
            let slots = LlamaModel.linearSlots(l)
            // Decode this block's layers to f32.
            var weights: [String: [Float]] = [:]
            for (name, path) in slots {
                guard let dense = DenseLinear(decoding: block[keyPath: path]) else { throw FoldError.notDense(layer: name) }
                weights[name] = dense.weight.array
                block[keyPath: path] = dense
            }
            // Capture pass: one accumulator per distinct input.
            let attnIn = HessianAccumulator(columns: block.query.inFeatures)
            let outIn = HessianAccumulator(columns: block.output.inFeatures)
            let mlpIn = HessianAccumulator(columns: block.gate.inFeatures)
            let downIn = HessianAccumulator(columns: block.down.inFeatures)
            let accumulatorOf: [String: HessianAccumulator] = [
                "attn_q": attnIn, "attn_k": attnIn, "attn_v": attnIn, "attn_output": outIn,
                "ffn_gate": mlpIn, "ffn_up": mlpIn, "ffn_down": downIn,
            ]
            func kind(_ name: String) -> String { String(name.split(separator: ".")[2]) }
            var capturing = block
            for (name, path) in slots {
                let acc = accumulatorOf[kind(name)]!
                capturing[keyPath: path] = TappedLinear(base: block[keyPath: path], name: name) { _, x, rows, _ in acc.add(x, rows: rows) }
            }
            let t0 = Date()
            for i in hidden.indices {
                var x = hidden[i]
                cache.reset()
                model.forwardBlock(capturing, layer: l, x: &x, rows: len, cache: cache)
            }
            let hessianSeconds = [attnIn, outIn, mlpIn, downIn].reduce(0) { $0 + $1.seconds }
            timings.hessian += hessianSeconds
            timings.forward += Date().timeIntervalSince(t0) - hessianSeconds

            // Let the caller transform the block (e.g. fold AWQ scales) before quantizing.
            var hessians: [ObjectIdentifier: [Float]] = [:]
            if let prepareBlock {
                let byKind = ["attn_q": attnIn, "attn_output": outIn, "ffn_gate": mlpIn, "ffn_down": downIn]
                var hs: [String: [Float]] = [:]
                for (k, acc) in byKind { hs[k] = acc.hessian() }
                let saved = model.blocks[l]
                model.blocks[l] = block
                let scaled = try prepareBlock(l, hs)
                block = model.blocks[l]
                model.blocks[l] = saved
                for (k, acc) in byKind {
                    var h = hs[k]!
                    if let s = scaled[k] {
                        let n = acc.n
                        for i in 0..<n { for j in 0..<n { h[i * n + j] /= s[i] * s[j] } }
                    }
                    hessians[ObjectIdentifier(acc)] = h
                }
                for (name, path) in slots {
                    if let d = block[keyPath: path] as? DenseLinear {
                        weights[name] = d.weight.array
                    }
                }
            }
            // Quantize each layer.
            var kept: [String: any Linear] = [:]
            for (name, path) in slots {
                let acc = accumulatorOf[kind(name)]!
                let h = hessians[ObjectIdentifier(acc)] ?? acc.hessian()
                hessians[ObjectIdentifier(acc)] = h
                let layer = block[keyPath: path]
                let s0 = Date()
                let outcome = try quantizeLayer(LayerJob(name: name, layer: l, rows: layer.outFeatures, columns: layer.inFeatures,
                                                         weights: weights[name]!, hessian: h))
                timings.solver += Date().timeIntervalSince(s0)
                let dense = DenseLinear(weight: FloatStorage(outcome.weights), outFeatures: layer.outFeatures,
                                        inFeatures: layer.inFeatures, bias: (layer as? DenseLinear)?.bias)
                block[keyPath: path] = dense
                kept[name] = outcome.keep ?? dense
                onLayer(l, name, Date().timeIntervalSince(start))
            }
            // Outputs of the quantized block feed the next one.
            if l + 1 < model.blocks.count {
                let t1 = Date()
                for i in hidden.indices {
                    cache.reset()
                    model.forwardBlock(block, layer: l, x: &hidden[i], rows: len, cache: cache)
                }
                timings.forward += Date().timeIntervalSince(t1)
            }
            for (name, path) in slots { model.blocks[l][keyPath: path] = kept[name]! }
            model.blocks[l].attentionNorm = block.attentionNorm
            model.blocks[l].mlpNorm = block.mlpNorm
        }
        timings.total = Date().timeIntervalSince(start)
        return timings
    }
}
