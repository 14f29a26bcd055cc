import Foundation
@testable import Models
import Quantization
import Tensors
import Testing

// QuantizedLinear against DenseLinear over the same weights decoded to f32.

/// A QuantizedLinear over random blocks and the DenseLinear of its decoded weights.
func layerPair(_ t: KernelType, out: Int, in inF: Int, bias: Bool, seed: UInt64) throws
    -> (QuantizedLinear, DenseLinear, [Float]) {
    var rng = SplitMix64(seed: seed)
    let w = t.randomRows(out, n: inF, rng: &rng, scale: { Float.random(in: 0.001...0.02, using: &$0) },
                         minimum: { t.minIsSubtracted ? Float.random(in: 0...0.01, using: &$0)
                                                      : -Float.random(in: 0...0.1, using: &$0) })
    let b = bias ? (0..<out).map { _ in gaussian(&rng) } : nil
    let q = try QuantizedLinear(type: t.type, outFeatures: out, inFeatures: inF, bytes: w, bias: b)
    let wf = t.dequantize(w, count: out * inF)
    return (q, DenseLinear(weight: FloatStorage(wf), outFeatures: out, inFeatures: inF, bias: b), wf)
}

/// rows = 1 and 5 take the integer kernels: each output within 1% of ‖w_r‖·‖x‖ of the
/// dense one (activation rounding; typically ~0.1%). rows = 64 (above the threshold of 16
/// set here) decodes tiles and uses sgemm: within 1e-5 × Σ|w·x| (f32 summation order only).
@Test(arguments: KernelType.all)
func quantizedLinearMatchesDenseOfDequantizedWeights(_ t: KernelType) throws {
    let inF = t.blockSize == 32 ? 576 : 1536, out = 200
    var (q, dense, wf) = try layerPair(t, out: out, in: inF, bias: t.type == .q4_1, seed: 5 &+ UInt64(t.id))
    q.batchThreshold = 16
    #expect(q.storageBytes == t.type.byteCount(elements: out * inF)! + (q.bias == nil ? 0 : 4 * out))
    var rng = SplitMix64(seed: 99)
    for rows in [1, 5, 64] {
        let x = (0..<rows * inF).map { _ in gaussian(&rng) }
        var got = [Float](repeating: 0, count: rows * out), want = got
        q.forward(x, rows: rows, into: &got)
        dense.forward(x, rows: rows, into: &want)
        for r in 0..<rows {
            let xr = x[r * inF..<(r + 1) * inF]
            let xNorm = sqrt(xr.reduce(0.0) { $0 + Double($1) * Double($1) })
            for o in 0..<out {
                let wr = wf[o * inF..<(o + 1) * inF]
                let err = abs(Double(got[r * out + o]) - Double(want[r * out + o]))
                if rows >= q.batchThreshold {
                    let magnitude = zip(wr, xr).reduce(0.0) { $0 + abs(Double($1.0) * Double($1.1)) }
                    #expect(err <= 1e-5 * magnitude + 1e-6, "\(t) rows=\(rows) [\(r),\(o)]")
                } else {
                    let wNorm = sqrt(wr.reduce(0.0) { $0 + Double($1) * Double($1) })
                    #expect(err <= 0.01 * wNorm * xNorm, "\(t) rows=\(rows) [\(r),\(o)]: \(err)")
                }
            }
        }
    }
}

/// The integer path gives the same rows (to f32 rounding, 1e-5 relative) whether they are
/// computed one at a time or together through the multi-row kernels, with a bias and a
/// row count that is not a multiple of the kernels' row groups; the f32 path agrees to
/// activation rounding.
@Test func integerPathRowsAreIndependentAndMatchTheFloatPath() throws {
    let t = KernelType.all[2]  // Q4_1
    let rows = 21, out = 96, inF = 256
    let (q, _, _) = try layerPair(t, out: out, in: inF, bias: true, seed: 21)
    var rng = SplitMix64(seed: 4)
    let x = (0..<rows * inF).map { _ in gaussian(&rng) }
    var byRow = [Float](repeating: 0, count: rows * out), batched = byRow, tiles = byRow
    for r in 0..<rows {
        x.withUnsafeBufferPointer { q.forwardIntegerDots($0.baseAddress! + r * inF, rows: 1, into: &byRow[r * out]) }
    }
    q.forwardIntegerDots(x, rows: rows, into: &batched)
    q.forwardDecodingTiles(x, rows: rows, into: &tiles)
    let scale = byRow.map(abs).max()!
    let rowsDiff = zip(byRow, batched).map { abs($0 - $1) }.max()!
    #expect(rowsDiff <= 1e-5 * scale, "one row at a time vs together: \(rowsDiff)")
    let pathDiff = zip(byRow, tiles).map { abs($0 - $1) }.max()!
    #expect(pathDiff <= 0.01 * scale, "integer and sgemm paths differ by \(pathDiff)")
}

/// Embedding rows decode bit-exactly, and `dequantized()` is the codec's output.
@Test(arguments: [KernelType.all[0], KernelType.all[10]])
func embeddingRowsAreTheDecodedWeights(_ t: KernelType) throws {
    let (q, _, wf) = try layerPair(t, out: 37, in: 512, bias: false, seed: 8)
    #expect(q.rowCount == 37 && q.width == 512)
    var row = [Float](repeating: 0, count: 512)
    for i in [0, 17, 36] {
        q.row(i, into: &row)
        #expect(row == Array(wf[i * 512..<(i + 1) * 512]))
    }
    #expect(q.dequantized() == wf)
}

@Test func quantizedLinearRejectsBadShapes() {
    #expect(throws: CodecError.unsupportedType(.f16)) {
        _ = try QuantizedLinear(type: .f16, outFeatures: 2, inFeatures: 32, bytes: [UInt8](repeating: 0, count: 128))
    }
    #expect(throws: CodecError.invalidCount(.q4_K, count: 320)) {
        _ = try QuantizedLinear(type: .q4_K, outFeatures: 2, inFeatures: 320, bytes: [])
    }
    #expect(throws: CodecError.byteCountMismatch(.q4_0, count: 64, expected: 36, actual: 35)) {
        _ = try QuantizedLinear(type: .q4_0, outFeatures: 2, inFeatures: 32, bytes: [UInt8](repeating: 0, count: 35))
    }
}

/// `weightBytes` counts the true block bytes of quantized layers.
@Test func weightBytesCountQuantizedStorage() throws {
    let (q, dense, _) = try layerPair(KernelType.all[2], out: 64, in: 64, bias: false, seed: 2)
    let hp = LlamaHyperparameters(vocabSize: 64, hiddenSize: 64, intermediateSize: 64, layerCount: 1, headCount: 4,
                                  kvHeadCount: 4, ropeBase: 10000, ropeStyle: .halves, contextLength: 16)
    let block = LlamaBlock(attentionNorm: [Float](repeating: 1, count: 64), query: q, key: q, value: q, output: q,
                           mlpNorm: [Float](repeating: 1, count: 64), gate: q, up: q, down: dense)
    let model = LlamaModel(hp: hp, embedding: q, blocks: [block], outputNorm: [Float](repeating: 1, count: 64), head: q)
    #expect(model.weightBytes(includeEmbedding: false) == 7 * 64 * 40 + 64 * 64 * 4)
}

/// Layers fused into one loop (a block's q/k/v or gate/up, here of three weight types and
/// odd row counts, 266 KB in all so that the loop is split) give exactly the outputs each
/// gives alone, at 1 and 3 input rows and 1–3 threads, whether the fusion was made at the
/// current thread count or another; the pieces the threads take cover every row of every
/// layer once, and for one input row on several threads they run through the rows in
/// order, in pieces of about `minPieceBytes`.
@Test func fusedLayersEqualEachLayerAlone() throws {
    let inF = 256
    let shapes: [(KernelType, Int)] = [(KernelType.all[1], 803), (KernelType.all[0], 245), (KernelType.all[2], 530)]
    let layers = try shapes.enumerated().map { k, s in try layerPair(s.0, out: s.1, in: inF, bias: k == 2, seed: 40 + UInt64(k)).0 }
    let ids = Array(Set(layers.map { $0.type.ggmlTypeID! }))
    var rng = SplitMix64(seed: 7)
    let saved = Threads.count
    defer { Threads.count = saved }
    Threads.count = 2
    let madeAtTwo = FusedQuantizedLinear(layers)!
    for threads in 1...3 {
        Threads.count = threads
        let madeNow = FusedQuantizedLinear(layers)!
        for rows in [1, 3] {
            let x = (0..<rows * inF).map { _ in gaussian(&rng) }
            var alone = layers.map { [Float](repeating: 0, count: rows * $0.outFeatures) }
            for k in layers.indices { layers[k].forwardIntegerDots(x, rows: rows, into: &alone[k]) }
            for fusion in [madeAtTwo, madeNow] {
                let outs = alone.map { UnsafeMutablePointer<Float>.allocate(capacity: $0.count) }
                for (p, a) in zip(outs, alone) { p.initialize(repeating: .nan, count: a.count) }
                x.withUnsafeBufferPointer { fusion.forwardIntegerDots($0.baseAddress!, rows: rows, into: outs) }
                let fused = zip(outs, alone).map { Array(UnsafeBufferPointer(start: $0, count: $1.count)) }
                outs.forEach { $0.deallocate() }
                #expect(fused == alone, "threads \(threads), rows \(rows)")
            }
            for threadsWanted in 1...3 {
                let plan = FusedQuantizedLinear.plan(layers, ids: ids, rows: rows, threads: threadsWanted)
                let pieces = (0..<plan.pieceCount).map { plan.calls[plan.starts[$0]..<plan.starts[$0 + 1]] }
                var seen = layers.map { [Int](repeating: 0, count: $0.outFeatures) }
                for piece in pieces { for c in piece { for r in c.firstRow..<c.firstRow + c.rows { seen[c.layer][r] += 1 } } }
                #expect(seen.allSatisfy { $0.allSatisfy { $0 == 1 } }, "pieces for \(threadsWanted) threads, \(rows) rows")
                if rows == 1 && threadsWanted > 1 {
                    let bytes = pieces.map { $0.reduce(0) { $0 + $1.rows * $1.rowBytes } }
                    // A piece may round up to a four-row group in each of the two layers it spans.
                    let biggestGroup = 4 * layers.map(\.rowBytes).max()!
                    let minimum = FusedQuantizedLinear.minPieceBytes
                    #expect(bytes.dropLast().allSatisfy { $0 >= minimum && $0 < minimum + 2 * biggestGroup }, "piece bytes \(bytes)")
                    let order = pieces.flatMap { $0.flatMap { c in (c.firstRow..<c.firstRow + c.rows).map { (c.layer, $0) } } }
                    #expect(order.elementsEqual(layers.indices.flatMap { k in (0..<layers[k].outFeatures).map { (k, $0) } }, by: ==),
                            "pieces run through the layers' rows in order")
                }
            }
        }
    }
}
