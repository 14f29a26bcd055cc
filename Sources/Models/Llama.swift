import CKernels
import Foundation
import Tensors

/// Looks up rows of an embedding table.
public protocol EmbeddingTable: Sendable {
    /// Width of a row.
    var width: Int { get }
    /// Number of rows.
    var rowCount: Int { get }
    /// Writes row `index` as f32 into `out`.
    func row(_ index: Int, into out: UnsafeMutablePointer<Float>)
}

extension DenseLinear: EmbeddingTable {
    /// Width of a row (`inFeatures`).
    public var width: Int { inFeatures }
    /// Number of rows (`outFeatures`).
    public var rowCount: Int { outFeatures }
    /// Copies row `index` of the weight.
    public func row(_ index: Int, into out: UnsafeMutablePointer<Float>) {
        weight.withPointer { out.update(from: $0 + index * inFeatures, count: inFeatures) }
    }
}

/// One transformer block: attention then SwiGLU MLP, each behind an RMSNorm, with residuals.
public struct LlamaBlock: Sendable {
    /// RMSNorm weight before attention.
    public var attentionNorm: [Float]
    /// Query projection.
    public var query: any Linear { didSet { updateFusion() } }
    /// Key projection.
    public var key: any Linear { didSet { updateFusion() } }
    /// Value projection.
    public var value: any Linear { didSet { updateFusion() } }
    /// Attention output projection.
    public var output: any Linear { didSet { updateFusion() } }
    /// RMSNorm weight before the MLP.
    public var mlpNorm: [Float]
    /// The MLP's gate projection.
    public var gate: any Linear { didSet { updateFusion() } }
    /// The MLP's up projection.
    public var up: any Linear { didSet { updateFusion() } }
    /// The MLP's down projection.
    public var down: any Linear { didSet { updateFusion() } }
    /// The layers fused for the integer path, kept in step with them.
    public private(set) var fusion: BlockFusion! = nil

    private mutating func updateFusion() { fusion = BlockFusion(self) }

    /// A block from its parts.
    public init(attentionNorm: [Float], query: any Linear, key: any Linear, value: any Linear, output: any Linear,
                mlpNorm: [Float], gate: any Linear, up: any Linear, down: any Linear) {
        self.attentionNorm = attentionNorm
        self.query = query
        self.key = key
        self.value = value
        self.output = output
        self.mlpNorm = mlpNorm
        self.gate = gate
        self.up = up
        self.down = down
        fusion = BlockFusion(self)
    }
}

/// A Llama-family decoder: embeddings, blocks, final norm, output head.
public final class LlamaModel: @unchecked Sendable {
    /// The model's shape.
    public let hp: LlamaHyperparameters
    /// Token embeddings.
    public var embedding: any EmbeddingTable
    /// The transformer blocks, first to last.
    public var blocks: [LlamaBlock]
    /// Final RMSNorm weight.
    public var outputNorm: [Float]
    /// The output head (the embedding itself when tied).
    public var head: any Linear { didSet { headFusion = FusedQuantizedLinear([head]) } }
    /// The head on the integer path, kept in step with it.
    private var headFusion: FusedQuantizedLinear?
    let rope: RoPE

    /// A model from its parts; shapes are checked by the loader.
    public init(hp: LlamaHyperparameters, embedding: any EmbeddingTable, blocks: [LlamaBlock],
                outputNorm: [Float], head: any Linear) {
        self.hp = hp
        self.embedding = embedding
        self.blocks = blocks
        self.outputNorm = outputNorm
        self.head = head
        headFusion = FusedQuantizedLinear([head])
        rope = RoPE(dims: hp.ropeDims, base: hp.ropeBase, style: hp.ropeStyle)
    }

    /// A new KV cache for this model (capacity defaults to the training context).
    public func makeCache(capacity: Int? = nil) -> KVCache {
        KVCache(hp, capacity: capacity ?? hp.contextLength)
    }

    /// Runs `tokens` at the next positions of `cache` and returns the logits of the rows
    /// from `logitsFrom` on (`[tokens.count - logitsFrom, vocab]`, row-major). The default
    /// returns the last row only, which is what generation needs.
    public func forward(_ tokens: [Int32], cache: KVCache, logitsFrom: Int? = nil) -> [Float] {
        let t = tokens.count, d = hp.hiddenSize
        precondition(t > 0 && cache.count + t <= cache.capacity, "KV cache overflow")
        var x = [Float](repeating: 0, count: t * d)
        x.withUnsafeMutableBufferPointer { xb in
            for (i, tok) in tokens.enumerated() { embedding.row(Int(tok), into: xb.baseAddress! + i * d) }
        }
        for (l, block) in blocks.enumerated() {
            forwardBlock(block, layer: l, x: &x, rows: t, cache: cache)
        }
        cache.advance(by: t)
        let first = logitsFrom ?? (t - 1)
        let n = t - first
        var normed = [Float](repeating: 0, count: n * d)
        var logits = [Float](repeating: 0, count: n * hp.vocabSize)
        x.withUnsafeBufferPointer { xb in
            outputNorm.withUnsafeBufferPointer { w in
                Ops.rmsNorm(xb.baseAddress! + first * d, weight: w.baseAddress!, rows: n, n: d, eps: hp.rmsEps,
                            into: &normed)
            }
        }
        Self.project(headFusion, [head], normed, rows: n, into: &logits)
        return logits
    }

    /// Attention and MLP of one block over `rows` new positions, updating `x` in place.
    func forwardBlock(_ b: LlamaBlock, layer: Int, x: inout [Float], rows t: Int, cache: KVCache) {
        let d = hp.hiddenSize
        var h = [Float](repeating: 0, count: t * d)
        Ops.rmsNorm(x, weight: b.attentionNorm, rows: t, n: d, eps: hp.rmsEps, into: &h)
        let attn = attentionMix(b, layer: layer, normed: h, rows: t, cache: cache)
        var o = [Float](repeating: 0, count: t * d)
        Self.project(b.fusion.output, [b.output], attn, rows: t, into: &o)
        Ops.add(&x, o, n: t * d)

        Ops.rmsNorm(x, weight: b.mlpNorm, rows: t, n: d, eps: hp.rmsEps, into: &h)
        let g = gatedActivation(b, normed: h, rows: t)
        Self.project(b.fusion.down, [b.down], g, rows: t, into: &o)
        Ops.add(&x, o, n: t * d)
    }

    /// `silu(gate(h)) · up(h)` of block `b` for `rows` normed inputs `h`: the input of `ffn_down`.
    func gatedActivation(_ b: LlamaBlock, normed h: [Float], rows t: Int) -> [Float] {
        let f = hp.intermediateSize
        var g = [Float](repeating: 0, count: t * f)
        var u = [Float](repeating: 0, count: t * f)
        h.withUnsafeBufferPointer { hb in
            g.withUnsafeMutableBufferPointer { gb in
                u.withUnsafeMutableBufferPointer { ub in
                    Self.project(b.fusion.gateUp, [b.gate, b.up], hb.baseAddress!, rows: t,
                                 into: [gb.baseAddress!, ub.baseAddress!])
                }
            }
        }
        Ops.swiglu(&g, u, n: t * f)
        return g
    }

    /// Queries, keys and values of block `b` from the attention-normed inputs `h` of `rows`
    /// new positions (keys and values appended to `cache` at its current count), rotated,
    /// and the attention over the cache: the input of `attn_output`, `[rows, heads·headDim]`.
    func attentionMix(_ b: LlamaBlock, layer: Int, normed h: [Float], rows t: Int, cache: KVCache) -> [Float] {
        let hd = hp.headDim
        let qWidth = hp.headCount * hd, kvWidth = hp.kvHeadCount * hd
        var q = [Float](repeating: 0, count: t * qWidth)
        var attn = [Float](repeating: 0, count: t * qWidth)
        let p0 = cache.count
        cache.keys[layer].withUnsafeMutableBufferPointer { kc in
            cache.values[layer].withUnsafeMutableBufferPointer { vc in
                let kRows = kc.baseAddress! + p0 * kvWidth, vRows = vc.baseAddress! + p0 * kvWidth
                q.withUnsafeMutableBufferPointer { qb in
                    h.withUnsafeBufferPointer { hb in
                        Self.project(b.fusion.qkv, [b.query, b.key, b.value], hb.baseAddress!, rows: t,
                                     into: [qb.baseAddress!, kRows, vRows])
                    }
                    for i in 0..<t {
                        rope.apply(qb.baseAddress! + i * qWidth, heads: hp.headCount, headDim: hd, position: p0 + i)
                        rope.apply(kRows + i * kvWidth, heads: hp.kvHeadCount, headDim: hd, position: p0 + i)
                    }
                    attn.withUnsafeMutableBufferPointer { ab in
                        attention(q: qb.baseAddress!, keys: kc.baseAddress!, values: vc.baseAddress!,
                                  out: ab.baseAddress!, rows: t, start: p0)
                    }
                }
            }
        }
        return attn
    }

    /// Causal grouped-query attention of `rows` queries at positions `start..<start+rows`
    /// over the cached keys/values of positions `0..<start+rows`.
    func attention(q: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                   out: UnsafeMutablePointer<Float>, rows t: Int, start p0: Int) {
        if t <= Self.directAttentionRows {
            attentionDirect(q: q, keys: keys, values: values, out: out, rows: t, start: p0)
            return
        }
        let hd = hp.headDim, nH = hp.headCount, nKV = hp.kvHeadCount
        let qWidth = nH * hd, kvWidth = nKV * hd, group = nH / nKV
        let len = p0 + t
        let scale = 1 / Float(hd).squareRoot()
        var scores = [Float](repeating: 0, count: t * len)
        // Queries in tiles of 64 rows: a tile ending at row r1 sees only keys 0..<p0+r1, so
        // the causal half of the score matrix above the tiles' diagonals is never computed.
        let tile = 64
        scores.withUnsafeMutableBufferPointer { sb in
            let s = sb.baseAddress!
            for head in 0..<nH {
                let kvHead = head / group
                for r0 in stride(from: 0, to: t, by: tile) {
                    let r1 = min(t, r0 + tile), keysSeen = p0 + r1
                    let st = s + r0 * len
                    BLAS.gemm(transposeB: true, m: r1 - r0, n: keysSeen, k: hd, alpha: scale,
                              q + r0 * qWidth + head * hd, lda: qWidth, keys + kvHead * hd, ldb: kvWidth, st, ldc: len)
                    parallelFor(r1 - r0) { i in
                        let row = st + i * len
                        let visible = p0 + r0 + i + 1
                        Ops.softmax(row, n: visible)
                        for j in visible..<keysSeen { row[j] = 0 }
                    }
                    BLAS.gemm(m: r1 - r0, n: hd, k: keysSeen, st, lda: len, values + kvHead * hd, ldb: kvWidth,
                              out + r0 * qWidth + head * hd, ldc: qWidth)
                }
            }
        }
    }
}

extension LlamaModel {
    /// `layers[k].forward(x, rows:, into: y[k])` for layers that share their input: on
    /// their fusion (one parallel integer loop) when there is one and it takes the integer
    /// path for `rows`, else one layer after another. `layers` is an autoclosure so the
    /// fused path builds no array of them.
    static func project(_ fused: FusedQuantizedLinear?, _ layers: @autoclosure () -> [any Linear],
                        _ x: UnsafePointer<Float>, rows: Int, into y: [UnsafeMutablePointer<Float>]) {
        if let fused, fused.takesIntegerPath(rows: rows) {
            fused.forwardIntegerDots(x, rows: rows, into: y)
        } else {
            for (layer, out) in zip(layers(), y) { layer.forward(x, rows: rows, into: out) }
        }
    }

    /// `project` of one layer, from an array input to an array output.
    static func project(_ fused: FusedQuantizedLinear?, _ layer: @autoclosure () -> [any Linear], _ x: [Float],
                        rows: Int, into y: inout [Float]) {
        x.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer { project(fused, layer(), xb.baseAddress!, rows: rows, into: [$0.baseAddress!]) }
        }
    }

    /// Query rows up to which attention runs on `attentionDirect` rather than BLAS: for a
    /// single generated token, sgemm's packing of a 1×64 query and a 64×len key block cost
    /// more than the arithmetic (about a fifth of generation time on SmolLM2 at 2 threads).
    static let directAttentionRows = 4

    /// `attention` for a few query rows, one row at a time on `sq_attention_decode`: the
    /// visible positions split over the threads, every query head of a key/value group
    /// dotted with a key row while it is in registers, and the parts' softmax sums merged.
    func attentionDirect(q: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                         out: UnsafeMutablePointer<Float>, rows t: Int, start p0: Int) {
        let hd = hp.headDim, nH = hp.headCount, nKV = hp.kvHeadCount
        let qWidth = nH * hd, kvWidth = nKV * hd
        let scale = 1 / Float(hd).squareRoot()
        let threads = Threads.count
        let floats = sq_attention_scratch_floats(p0 + t, Int32(nH), Int32(hd), Int32(threads))
        withUnsafeTemporaryAllocation(of: Float.self, capacity: floats) { sb in
            for i in 0..<t {
                sq_attention_decode(q + i * qWidth, keys, values, kvWidth, p0 + i + 1, Int32(nH), Int32(nKV), Int32(hd),
                                    scale, out + i * qWidth, sb.baseAddress!, Int32(threads))
            }
        }
    }

    /// Weights in the linear layers of the blocks and the output head.
    public var linearParameterCount: Int {
        let layers = blocks.flatMap { [$0.query, $0.key, $0.value, $0.output, $0.gate, $0.up, $0.down] } + [head]
        return layers.reduce(0) { $0 + $1.inFeatures * $1.outFeatures }
    }

    /// Bytes of weights read to produce one token: every linear layer, the head, and
    /// (optionally) the whole embedding table. Only layers that know their storage count
    /// their true size; others count as f32.
    public func weightBytes(includeEmbedding: Bool) -> Int {
        let layers = blocks.flatMap { [$0.query, $0.key, $0.value, $0.output, $0.gate, $0.up, $0.down] } + [head]
        var total = layers.reduce(0) { $0 + (($1 as? any SizedLinear)?.storageBytes ?? 4 * $1.inFeatures * $1.outFeatures) }
        if includeEmbedding {
            total += (embedding as? any SizedLinear)?.storageBytes ?? 4 * embedding.rowCount * embedding.width
        }
        return total
    }
}

/// A linear layer that knows how many bytes its weights occupy.
public protocol SizedLinear: Linear {
    /// Bytes of weight storage.
    var storageBytes: Int { get }
}

extension DenseLinear: SizedLinear {
    /// Bytes of the f32 weights and bias.
    public var storageBytes: Int { 4 * (weight.count + (bias?.count ?? 0)) }
}
