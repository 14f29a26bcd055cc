import CKernels
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

/// Arithmetic of the calibration forward passes through already-quantized layers.
public enum CalibrationForward: String, Sendable, CaseIterable {
    /// f32 activations × the quantized weights decoded to f32.
    case f32
    /// The quantized weights re-rounded to int8 per output channel, activations to int8 per
    /// token, int32 accumulation (`W8A8Linear`): several times faster, the inputs the later
    /// layers are calibrated on carry int8 rounding.
    case int8
}

/// Quantizes a Llama model block by block on calibration data, the way GPTQ needs it:
/// the calibration windows' hidden states enter block 0; for each block the inputs of its
/// linear layers are captured (as Hessians `2·XᵀX/n`; layers sharing an input share one),
/// each layer is handed to the layer quantizer, and the block's outputs computed with the
/// *quantized* layers become the next block's inputs. Only one block is ever held in f32:
/// peak memory is one block's weights, its Hessians and the calibration activations.
///
/// Without `prepareBlock` a block takes one pass in four stages over all windows, each
/// computed with the layers quantized so far: q/k/v are quantized on the normed block
/// inputs, `attn_output` on the attention computed with the quantized q/k/v, gate/up on the
/// MLP inputs after the quantized attention, `ffn_down` on the activations of the quantized
/// gate/up (every layer sees the inputs it will see in the quantized model; each linear runs
/// once per window). With `prepareBlock` (which needs all of a block's input statistics
/// before any layer changes) all layers see inputs from the block with its original weights
/// (a capture pass), then a pass with the quantized block produces the next inputs.
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
    /// How quantized layers compute the next layers' calibration inputs (default f32).
    public var forward = CalibrationForward.f32
    /// Called after each layer with (block, layer name, seconds so far).
    public var onLayer: (Int, String, Double) -> Void = { _, _, _ in }

    /// A quantizer over `model` (any weight mode; each block is decoded to f32 when its turn comes).
    public init(model: LlamaModel, windows: CalibrationWindows) {
        self.model = model
        self.windows = windows
    }

    /// The block being quantized: its layers in f32 (replaced by their quantized weights as
    /// they are done), the original f32 weights, and what the model keeps of each layer.
    private struct BlockState {
        var block: LlamaBlock
        var weights: [String: [Float]] = [:]
        var kept: [String: any Linear] = [:]
    }

    /// Runs the whole model through `quantizeLayer`, layer by layer in forward order.
    public func run(quantizeLayer: (LayerJob) throws -> LayerOutcome) throws -> SequentialTimings {
        let start = Date()
        var timings = SequentialTimings()
        var solverSeconds = 0.0  // kept apart from `timings`, which the stage functions hold inout
        let d = model.hp.hiddenSize, len = windows.length
        // Blocks run one at a time: one layer's keys and values (index 0), not the whole
        // model's, so nothing here grows with depth.
        var oneLayer = model.hp
        oneLayer.layerCount = 1
        let cache = KVCache(oneLayer, capacity: len)
        var hidden: [[Float]] = windows.windows.map { w in
            var x = [Float](repeating: 0, count: len * d)
            x.withUnsafeMutableBufferPointer { xb in
                for (i, tok) in w.enumerated() { model.embedding.row(Int(tok), into: xb.baseAddress! + i * d) }
            }
            return x
        }
        for l in model.blocks.indices.prefix(blockLimit ?? model.blocks.count) {
            var state = BlockState(block: model.blocks[l])
            let slots = LlamaModel.linearSlots(l)
            // Decode this block's layers to f32.
            for (name, path) in slots {
                guard let dense = DenseLinear(decoding: state.block[keyPath: path]) else { throw FoldError.notDense(layer: name) }
                state.weights[name] = dense.weight.array
                state.block[keyPath: path] = dense
            }
            let quantize = { (kinds: [String], hessian: [Float], state: inout BlockState) throws in
                for (name, path) in slots where kinds.contains(Self.kind(name)) {
                    let layer = state.block[keyPath: path]
                    let s0 = Date()
                    let outcome = try quantizeLayer(LayerJob(name: name, layer: l, rows: layer.outFeatures, columns: layer.inFeatures,
                                                             weights: state.weights[name]!, hessian: hessian))
                    solverSeconds += Date().timeIntervalSince(s0)
                    let dense = DenseLinear(weight: FloatStorage(outcome.weights), outFeatures: layer.outFeatures,
                                            inFeatures: layer.inFeatures, bias: (layer as? DenseLinear)?.bias)
                    state.block[keyPath: path] = self.forward == .int8 ? W8A8Linear(dense) : dense
                    state.kept[name] = outcome.keep ?? dense
                    self.onLayer(l, name, Date().timeIntervalSince(start))
                }
            }
            if prepareBlock == nil {
                try runStaged(layer: l, state: &state, hidden: &hidden, cache: cache, timings: &timings, quantize: quantize)
            } else {
                try runCaptured(layer: l, state: &state, hidden: &hidden, cache: cache, timings: &timings, quantize: quantize)
            }
            for (name, path) in slots { model.blocks[l][keyPath: path] = state.kept[name]! }
            model.blocks[l].attentionNorm = state.block.attentionNorm
            model.blocks[l].mlpNorm = state.block.mlpNorm
            Self.returnFreedMemory()
        }
        timings.solver = solverSeconds
        timings.total = Date().timeIntervalSince(start)
        return timings
    }

    /// Hands the heap's free pages back to the system after a block: each block allocates
    /// and frees hundreds of MB of activations in pieces of many sizes from several threads,
    /// and without this the C allocator keeps the freed space, so resident memory would
    /// creep up with the number of blocks though nothing is held.
    static func returnFreedMemory() {
        sq_release_free_heap()
    }

    /// `attn_q` of `blk.3.attn_q.weight`.
    private static func kind(_ name: String) -> String { String(name.split(separator: ".")[2]) }

    /// The input a block linear reads, named by its first consumer's kind as `prepareBlock`
    /// keys Hessians and scales: `attn_q` (q, k, v), `attn_output`, `ffn_gate` (gate, up), `ffn_down`.
    public static func inputKind(of name: String) -> String {
        switch kind(name) {
        case "attn_q", "attn_k", "attn_v": return "attn_q"
        case "ffn_gate", "ffn_up": return "ffn_gate"
        case let k: return k
        }
    }

    /// One pass in four stages (see the type's documentation); `hidden` becomes the
    /// quantized block's outputs.
    private func runStaged(layer l: Int, state: inout BlockState, hidden: inout [[Float]], cache: KVCache,
                           timings: inout SequentialTimings,
                           quantize: ([String], [Float], inout BlockState) throws -> Void) throws {
        let hp = model.hp, d = hp.hiddenSize, len = windows.length
        let last = l + 1 == model.blocks.count
        var h = [Float](repeating: 0, count: len * d)
        func normed(_ x: [Float], _ w: [Float]) -> [Float] {
            Ops.rmsNorm(x, weight: w, rows: len, n: d, eps: hp.rmsEps, into: &h)
            return h
        }
        // Each stage: forward over all windows (accumulating the next input's Hessian), then quantize.
        func stage(columns: Int, _ body: (Int, HessianAccumulator) -> Void) -> [Float] {
            let acc = HessianAccumulator(columns: columns)
            let t0 = Date()
            for i in hidden.indices { body(i, acc) }
            timings.hessian += acc.seconds
            timings.forward += Date().timeIntervalSince(t0) - acc.seconds
            return acc.hessian()
        }
        let hAttn = stage(columns: d) { i, acc in acc.add(normed(hidden[i], state.block.attentionNorm), rows: len) }
        try quantize(["attn_q", "attn_k", "attn_v"], hAttn, &state)

        var mixes: [[Float]] = []
        let block1 = state.block
        let hOut = stage(columns: block1.output.inFeatures) { i, acc in
            cache.reset()
            let mix = model.attentionMix(block1, layer: 0, normed: normed(hidden[i], block1.attentionNorm), rows: len, cache: cache)
            acc.add(mix, rows: len)
            mixes.append(mix)
        }
        try quantize(["attn_output"], hOut, &state)

        let block2 = state.block
        var o = [Float](repeating: 0, count: len * d)
        let hMLP = stage(columns: d) { i, acc in
            block2.output.forward(mixes[i], rows: len, into: &o)
            Ops.add(&hidden[i], o, n: len * d)
            acc.add(normed(hidden[i], block2.mlpNorm), rows: len)
        }
        mixes = []
        try quantize(["ffn_gate", "ffn_up"], hMLP, &state)

        var activations: [[Float]] = []
        let block3 = state.block
        let hDown = stage(columns: block3.down.inFeatures) { i, acc in
            let g = model.gatedActivation(block3, normed: normed(hidden[i], block3.mlpNorm), rows: len)
            acc.add(g, rows: len)
            if !last { activations.append(g) }
        }
        try quantize(["ffn_down"], hDown, &state)

        if !last {
            let t0 = Date()
            for i in hidden.indices {
                state.block.down.forward(activations[i], rows: len, into: &o)
                Ops.add(&hidden[i], o, n: len * d)
            }
            timings.forward += Date().timeIntervalSince(t0)
        }
    }

    /// A capture pass with the original block, `prepareBlock`, every layer quantized, then a
    /// pass with the quantized block producing the next inputs.
    private func runCaptured(layer l: Int, state: inout BlockState, hidden: inout [[Float]], cache: KVCache,
                             timings: inout SequentialTimings,
                             quantize: ([String], [Float], inout BlockState) throws -> Void) throws {
        let len = windows.length
        let slots = LlamaModel.linearSlots(l)
        let block = state.block
        // One accumulator per distinct input, keyed by its first consumer's kind.
        let accumulators: [(String, [String], HessianAccumulator)] = [
            ("attn_q", ["attn_q", "attn_k", "attn_v"], HessianAccumulator(columns: block.query.inFeatures)),
            ("attn_output", ["attn_output"], HessianAccumulator(columns: block.output.inFeatures)),
            ("ffn_gate", ["ffn_gate", "ffn_up"], HessianAccumulator(columns: block.gate.inFeatures)),
            ("ffn_down", ["ffn_down"], HessianAccumulator(columns: block.down.inFeatures)),
        ]
        var capturing = block
        for (name, path) in slots {
            let acc = accumulators.first(where: { $0.0 == Self.inputKind(of: name) })!.2
            capturing[keyPath: path] = TappedLinear(base: block[keyPath: path], name: name) { _, x, rows, _ in acc.add(x, rows: rows) }
        }
        let t0 = Date()
        for i in hidden.indices {
            var x = hidden[i]
            cache.reset()
            model.forwardBlock(capturing, layer: 0, x: &x, rows: len, cache: cache)
        }
        let hessianSeconds = accumulators.reduce(0) { $0 + $1.2.seconds }
        timings.hessian += hessianSeconds
        timings.forward += Date().timeIntervalSince(t0) - hessianSeconds

        // Let the caller transform the block (e.g. fold AWQ scales) before quantizing.
        var hessians: [String: [Float]] = [:]
        for (k, _, acc) in accumulators { hessians[k] = acc.hessian() }
        if let prepareBlock {
            let saved = model.blocks[l]
            model.blocks[l] = state.block
            let scaled = try prepareBlock(l, hessians)
            state.block = model.blocks[l]
            model.blocks[l] = saved
            for (k, _, acc) in accumulators {
                guard let s = scaled[k] else { continue }
                let n = acc.n
                hessians[k]!.withUnsafeMutableBufferPointer { h in
                    for i in 0..<n { for j in 0..<n { h[i * n + j] /= s[i] * s[j] } }
                }
            }
            for (name, path) in slots {
                if let d = state.block[keyPath: path] as? DenseLinear { state.weights[name] = d.weight.array }
            }
        }
        for (k, kinds, _) in accumulators { try quantize(kinds, hessians[k]!, &state) }
        // Outputs of the quantized block feed the next one.
        if l + 1 < model.blocks.count {
            let t1 = Date()
            for i in hidden.indices {
                cache.reset()
                model.forwardBlock(state.block, layer: 0, x: &hidden[i], rows: len, cache: cache)
            }
            timings.forward += Date().timeIntervalSince(t1)
        }
    }
}
