import CKernels
import Tensors

/// Quantized layers that share their input (a block's query, key and value projections, or
/// its gate and up projections, or one layer alone) run on the integer kernels as one
/// parallel loop: the input is quantized once per weight type, and the threads share the
/// layers' rows laid end to end. A 62 KB key projection alone is not worth a hand-over to
/// another thread; fused with its neighbours it is split like them.
///
/// The kernel calls for one input row (generation) at the thread count of the time of
/// construction are prepared once, so a call does no planning and no reference counting
/// per piece.
public final class FusedQuantizedLinear: @unchecked Sendable {
    /// The layers, in output order.
    public let layers: [QuantizedLinear]
    /// The shared input width.
    public let inFeatures: Int
    /// Distinct GGML weight types, each with its own activation buffer.
    let ids: [UInt32]
    /// Bytes of one quantized activation row for each of `ids`, 64-byte aligned.
    let actStrides: [Int]
    /// Σ actStrides of the types before each one: its buffer starts at rows × this.
    let actPrefix: [Int]
    /// Weight bytes of all layers.
    let weightBytes: Int
    /// Thread count the generation plan was made for, and the plan.
    let planThreads: Int
    let generationPlan: Plan

    /// One kernel call: `rows` rows of layer `layer` from `firstRow`, with the activation
    /// of type `ids[act]`.
    struct KernelCall {
        var layer: Int
        var act: Int
        var weights: UnsafeRawPointer
        var rowBytes: Int
        var firstRow: Int
        var rows: Int
        var outFeatures: Int
    }

    /// Kernel calls in the order of the layers' rows, cut into pieces: piece p is
    /// `calls[starts[p]..<starts[p + 1]]`.
    struct Plan {
        var calls: [KernelCall]
        var starts: [Int]
        var pieceCount: Int { starts.count - 1 }
    }

    /// The fusion of `layers`, or nil unless they are all `QuantizedLinear`s of one input width.
    public init?(_ layers: [any Linear]) {
        let quantized = layers.compactMap { $0 as? QuantizedLinear }
        guard !quantized.isEmpty, quantized.count == layers.count,
              quantized.allSatisfy({ $0.inFeatures == quantized[0].inFeatures }) else { return nil }
        self.layers = quantized
        inFeatures = quantized[0].inFeatures
        var ids: [UInt32] = []
        for layer in quantized where !ids.contains(layer.type.ggmlTypeID!) { ids.append(layer.type.ggmlTypeID!) }
        self.ids = ids
        actStrides = ids.map { [inFeatures] id in (sq_qdot_act_bytes(id, inFeatures) + 63) & ~63 }
        actPrefix = actStrides.indices.map { [actStrides] k in actStrides[..<k].reduce(0, +) }
        weightBytes = quantized.reduce(0) { $0 + $1.rowBytes * $1.outFeatures }
        planThreads = Threads.count
        generationPlan = Self.plan(quantized, ids: ids, rows: 1, threads: Self.threads(weightBytes, rows: 1))
    }

    /// True when every layer takes the integer path for `rows` input rows.
    public func takesIntegerPath(rows: Int) -> Bool { layers.allSatisfy { $0.takesIntegerPath(rows: rows) } }

    /// `layers[k].forward(x, rows:, into: y[k])` for every k, on the integer kernels.
    public func forwardIntegerDots(_ x: UnsafePointer<Float>, rows: Int, into y: [UnsafeMutablePointer<Float>]) {
        y.withUnsafeBufferPointer { forwardIntegerDots(x, rows: rows, into: $0.baseAddress!) }
    }

    /// As `forwardIntegerDots(_:rows:into:)` with the outputs at `y[0..<layers.count]`.
    func forwardIntegerDots(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafePointer<UnsafeMutablePointer<Float>>) {
        let inF = inFeatures
        let act = UnsafeMutableRawPointer.allocate(byteCount: rows * actStrides.reduce(0, +), alignment: 64)
        defer { act.deallocate() }
        for k in ids.indices {
            let (id, base, stride) = (ids[k], act + rows * actPrefix[k], actStrides[k])
            parallelFor(rows, threads: rows >= 16 ? Threads.count : 1) { r in
                sq_qdot_quantize(id, x + r * inF, inF, base + r * stride)
            }
        }
        let threads = Self.threads(weightBytes, rows: rows)
        let plan = rows == 1 && Threads.count == planThreads ? generationPlan
            : Self.plan(layers, ids: ids, rows: rows, threads: threads)
        let count = plan.calls.count
        withUnsafeTemporaryAllocation(of: sq_qdot_call.self, capacity: count) { cb in
            for c in 0..<count {
                let k = plan.calls[c]
                cb[c] = sq_qdot_call(type: ids[k.act], weights: k.weights, row_stride: k.rowBytes, rows: k.rows,
                                     act: act + rows * actPrefix[k.act], act_stride: actStrides[k.act],
                                     out: y[k.layer] + k.firstRow, out_stride: k.outFeatures)
            }
            plan.starts.withUnsafeBufferPointer { starts in
                sq_qdot_run(cb.baseAddress!, starts.baseAddress!, starts.count - 1, inF, rows, Int32(threads))
            }
        }
        for k in layers.indices { layers[k].addBias(y[k], rows: rows) }
    }

    /// Threads for `bytes` of weights times `rows` inputs: one below
    /// `QuantizedLinear.parallelWorkBytes`, where waking another costs more than it saves.
    static func threads(_ bytes: Int, rows: Int) -> Int {
        bytes * rows < QuantizedLinear.parallelWorkBytes ? 1 : Threads.count
    }

    /// The kernel calls for `rows` input rows on `threads` threads.
    ///
    /// For one input row (generation): pieces of about equal bytes, about eight per thread
    /// and at least `minPieceBytes`, which the pool hands out as one contiguous run per
    /// thread (`parallelForSpinning`). The kernels prefetch a few KiB ahead along their own
    /// rows, and a thread's next rows are warm only if they continue its last ones: with
    /// 32-row chunks taken in turn by two threads every chunk began with cold misses
    /// (SmolLM2's Q4_0 layers, 30 × 7 matrices of 62–500 KB and the head: 5.0 ms per token
    /// in 32-row chunks, 3.2 ms in halves). A thread late to the loop, or slower, loses
    /// nothing: the others finish its run from the far end. Batches go in 32-row chunks
    /// of one layer, where unpacking the weights, not reading them, is the cost.
    static func plan(_ layers: [QuantizedLinear], ids: [UInt32], rows: Int, threads: Int) -> Plan {
        func call(_ k: Int, _ range: Range<Int>) -> KernelCall {
            let layer = layers[k]
            return KernelCall(layer: k, act: ids.firstIndex(of: layer.type.ggmlTypeID!)!,
                              weights: layer.base + range.lowerBound * layer.rowBytes, rowBytes: layer.rowBytes,
                              firstRow: range.lowerBound, rows: range.count, outFeatures: layer.outFeatures)
        }
        var calls: [KernelCall] = [], starts = [0]
        guard rows == 1, threads > 1 else {
            for k in layers.indices {
                for range in QuantizedLinear.chunks(layers[k].outFeatures, rows: QuantizedLinear.batchChunkRows) {
                    calls.append(call(k, range))
                    starts.append(calls.count)
                }
            }
            return Plan(calls: calls, starts: starts)
        }
        // Cut at multiples of four rows (the kernels' row group).
        let total = layers.reduce(0) { $0 + $1.rowBytes * $1.outFeatures }
        let pieceBytes = max(minPieceBytes, total / (8 * threads))
        var filled = 0
        for (k, layer) in layers.enumerated() {
            var row = 0
            while row < layer.outFeatures {
                let want = (pieceBytes - filled + layer.rowBytes - 1) / layer.rowBytes
                let take = min(layer.outFeatures - row, max(4, (want + 3) & ~3))
                calls.append(call(k, row..<row + take))
                row += take
                filled += take * layer.rowBytes
                if filled >= pieceBytes {
                    starts.append(calls.count)
                    filled = 0
                }
            }
        }
        if starts.last! != calls.count { starts.append(calls.count) }
        return Plan(calls: calls, starts: starts)
    }

    /// Smallest piece of generation work handed out (see `plan`): taking a piece costs a
    /// compare-exchange and a kernel call, about 1% of reading 16 KiB.
    static let minPieceBytes = 16 << 10
}

/// A block's layers fused for the integer path (`FusedQuantizedLinear`): nil where a layer
/// is not a `QuantizedLinear` (f32, fake-quantized, W8A8, capturing layers), which then
/// run one at a time. `LlamaBlock` rebuilds it whenever one of its layers changes.
public final class BlockFusion: Sendable {
    /// Query, key and value projections.
    public let qkv: FusedQuantizedLinear?
    /// The attention output projection alone.
    public let output: FusedQuantizedLinear?
    /// Gate and up projections.
    public let gateUp: FusedQuantizedLinear?
    /// The down projection alone.
    public let down: FusedQuantizedLinear?

    init(_ b: LlamaBlock) {
        qkv = FusedQuantizedLinear([b.query, b.key, b.value])
        output = FusedQuantizedLinear([b.output])
        gateUp = FusedQuantizedLinear([b.gate, b.up])
        down = FusedQuantizedLinear([b.down])
    }
}
