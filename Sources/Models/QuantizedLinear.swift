import CKernels
import Foundation
import Quantization
import Tensors

/// A linear layer that keeps its weight in a GGML block format (Q4_1, Q8_0, Q4_K, …) and
/// computes with it directly, never holding an f32 copy of the whole matrix.
///
/// - By default: each input row is quantized to 8 bits per value (`CKernels`' activation
///   layouts) and every output is an integer dot product of the weight row, read in
///   place, with it. Chunks of output rows go to the threads; each weight block is
///   unpacked once for up to eight input rows.
/// - From `batchThreshold` input rows on (off by default): tiles of weight rows are
///   decoded to f32 in a reused scratch buffer and multiplied with BLAS sgemm, so the
///   activations stay f32.
///
/// Types with a kernel: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
/// IQ4_XS (`hasKernel`).
///
/// The weight bytes are either a view into memory another object owns (a memory-mapped
/// GGUF file, kept alive by this value) or owned.
public struct QuantizedLinear: Linear, SizedLinear, EmbeddingTable, @unchecked Sendable {
    /// Storage type of the weight.
    public let type: DType
    /// Input width (columns of the weight); a multiple of the type's block size.
    public let inFeatures: Int
    /// Output width (rows of the weight).
    public let outFeatures: Int
    /// Optional bias of length `outFeatures`.
    public let bias: [Float]?
    /// Bytes of one weight row (`inFeatures / blockSize` blocks).
    public let rowBytes: Int
    let base: UnsafeRawPointer
    private let owner: AnyObject

    /// Input rows from which `forward` decodes tiles to f32 and uses sgemm instead of the
    /// integer dot-product kernels (initially `defaultBatchThreshold`; 1 sends every call
    /// through sgemm, for f32 activations).
    public var batchThreshold: Int

    /// The `batchThreshold` new layers get: `Int.max`, every batch on the integer kernels,
    /// as llama.cpp's CPU backend does. Measured on a shared 2-core AVX-512 VNNI machine
    /// (Q4_1, 1536×576 and 576×1536 layers, interleaved timings, GMAC/s): integer 31–36
    /// at 1 row and 60–64 from 8 to 128 rows, 40–46 at 512; decode + sgemm 31 at 32 rows,
    /// 40 at 64–128, 32–46 at 256–512. Whole model, pp512: 232 vs 207 tokens/s. The cost is
    /// the 8-bit activations: SmolLM2's wikitext-2 perplexity rises 0.6% (tiles: 0.0%).
    nonisolated(unsafe) public static var defaultBatchThreshold = Int.max

    /// True when `type` has an integer dot-product kernel, so it can be a `QuantizedLinear`.
    public static func hasKernel(_ type: DType) -> Bool {
        guard let id = type.ggmlTypeID else { return false }
        return sq_qdot_supported(id) != 0 && Codecs.canDequantize(type)
    }

    /// A layer over `bytes` (the `[outFeatures, inFeatures]` weight in `type`'s blocks,
    /// row-major), which stay valid while `owner` lives; no copy is made.
    ///
    /// - Throws: `CodecError.unsupportedType` if `type` has no kernel, `.invalidCount` if
    ///   a row is not a whole number of blocks, `.byteCountMismatch` if `bytes` has the
    ///   wrong size.
    public init(type: DType, outFeatures: Int, inFeatures: Int, borrowing bytes: UnsafeRawBufferPointer,
                owner: AnyObject, bias: [Float]? = nil) throws {
        guard QuantizedLinear.hasKernel(type) else { throw CodecError.unsupportedType(type) }
        guard outFeatures > 0, inFeatures > 0, let rowBytes = type.byteCount(elements: inFeatures) else {
            throw CodecError.invalidCount(type, count: inFeatures)
        }
        let (total, overflow) = rowBytes.multipliedReportingOverflow(by: outFeatures)
        guard !overflow, total == bytes.count, let base = bytes.baseAddress else {
            throw CodecError.byteCountMismatch(type, count: inFeatures &* outFeatures, expected: overflow ? -1 : total,
                                               actual: bytes.count)
        }
        precondition(bias == nil || bias!.count == outFeatures, "bias size does not match outFeatures")
        self.type = type
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.bias = bias
        self.rowBytes = rowBytes
        self.base = base
        self.owner = owner
        batchThreshold = QuantizedLinear.defaultBatchThreshold
    }

    /// A layer owning a copy of `bytes` (the weight in `type`'s blocks, row-major).
    ///
    /// - Throws: `CodecError`, as `init(type:outFeatures:inFeatures:borrowing:owner:bias:)`.
    public init(type: DType, outFeatures: Int, inFeatures: Int, bytes: [UInt8], bias: [Float]? = nil) throws {
        let owned = OwnedBytes(bytes)
        try self.init(type: type, outFeatures: outFeatures, inFeatures: inFeatures,
                      borrowing: UnsafeRawBufferPointer(start: owned.pointer, count: bytes.count), owner: owned,
                      bias: bias)
    }

    /// The raw block bytes of the weight (valid while this value lives).
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: rowBytes * outFeatures) }

    /// Bytes of the block-quantized weight plus the f32 bias.
    public var storageBytes: Int { rowBytes * outFeatures + 4 * (bias?.count ?? 0) }

    /// Width of a row (`inFeatures`), as an embedding table.
    public var width: Int { inFeatures }
    /// Number of rows (`outFeatures`), as an embedding table.
    public var rowCount: Int { outFeatures }

    /// Decodes weight row `index` to f32 (the embedding of token `index`).
    public func row(_ index: Int, into out: UnsafeMutablePointer<Float>) {
        precondition(index >= 0 && index < outFeatures, "row \(index) out of 0..<\(outFeatures)")
        decode(rows: index..<index + 1, into: out)
    }

    /// Decodes the whole weight to f32 (`[outFeatures, inFeatures]`), e.g. for a dense reference.
    public func dequantized() -> [Float] {
        [Float](unsafeUninitializedCapacity: outFeatures * inFeatures) { buf, n in
            let chunks = Self.chunks(outFeatures, rows: 64)
            parallelFor(chunks.count) { c in decode(rows: chunks[c], into: buf.baseAddress! + chunks[c].lowerBound * inFeatures) }
            n = outFeatures * inFeatures
        }
    }

    /// Computes `rows` outputs from `rows` inputs (`x` is `[rows, inFeatures]`, `y` is
    /// `[rows, outFeatures]`), on the integer kernels below `batchThreshold` rows and
    /// through decoded tiles and sgemm from it.
    public func forward(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        guard rows > 0 else { return }
        if rows >= batchThreshold {
            forwardDecodingTiles(x, rows: rows, into: y)
        } else {
            forwardIntegerDots(x, rows: rows, into: y)
        }
    }

    /// The integer path: a `FusedQuantizedLinear` of this layer alone.
    func forwardIntegerDots(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Float>.self, capacity: 1) { out in
            out[0] = y
            FusedQuantizedLinear([self])!.forwardIntegerDots(x, rows: rows, into: UnsafePointer(out.baseAddress!))
        }
    }

    /// True when `forward` of `rows` inputs takes the integer path.
    func takesIntegerPath(rows: Int) -> Bool { rows < batchThreshold }

    /// The batched path: decode tiles of weight rows to f32 and multiply with sgemm.
    func forwardDecodingTiles(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        let tileRows = max(1, min(outFeatures, Self.tileFloats / inFeatures))
        let scratch = FloatScratch.shared.acquire(tileRows * inFeatures)
        defer { FloatScratch.shared.release(scratch) }
        if let bias {
            for r in 0..<rows { (y + r * outFeatures).update(from: bias, count: outFeatures) }
        }
        var lo = 0
        while lo < outFeatures {
            let hi = min(outFeatures, lo + tileRows)
            let chunks = Self.chunks(hi - lo, rows: 64)
            parallelFor(chunks.count) { c in
                let r = chunks[c]
                decode(rows: lo + r.lowerBound..<lo + r.upperBound, into: scratch.pointer + r.lowerBound * inFeatures)
            }
            BLAS.gemm(transposeB: true, m: rows, n: hi - lo, k: inFeatures, x, lda: inFeatures,
                      scratch.pointer, ldb: inFeatures, beta: bias == nil ? 0 : 1, y + lo, ldc: outFeatures)
            lo = hi
        }
    }

    func addBias(_ y: UnsafeMutablePointer<Float>, rows: Int) {
        guard let bias else { return }
        for r in 0..<rows {
            let out = y + r * outFeatures
            for j in 0..<outFeatures { out[j] += bias[j] }
        }
    }

    /// Decodes weight rows `range` into `out` (`range.count × inFeatures` floats).
    private func decode(rows range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let src = UnsafeRawBufferPointer(start: base + range.lowerBound * rowBytes, count: range.count * rowBytes)
        // Shape and byte count were validated at init, so this cannot throw.
        try! Codecs.dequantize(type, from: src, count: range.count * inFeatures, into: out)
    }

    /// Runs `body(c)` for every `c` in `0..<n` on up to `threads` threads of the spinning
    /// pool (`parallelForSpinning`): a thread that is preempted (on a shared machine)
    /// delays only the chunk it holds, not a fixed share of the work.
    static func forEachChunk(_ n: Int, threads: Int, _ body: (Int) -> Void) {
        parallelForSpinning(n, threads: threads, body)
    }

    /// `0..<n` cut into ranges of `rows` (the last may be shorter).
    static func chunks(_ n: Int, rows: Int) -> [Range<Int>] {
        stride(from: 0, to: n, by: rows).map { $0..<min(n, $0 + rows) }
    }

    /// Output rows per kernel call on the integer path for batches (see `FusedQuantizedLinear`).
    static let batchChunkRows = 32
    /// Weight bytes × input rows below which the integer path stays on one thread. The
    /// pool's workers spin between loops, so handing a layer to them costs well under a
    /// microsecond; below ~64 KiB (SmolLM2's Q4_0 key and value projections) the layer
    /// itself takes only a few microseconds. With libdispatch threads this had to be 1 MiB,
    /// which left every SmolLM2 layer but the head on one thread: on a 2-core Zen 3 that
    /// thread's kernels read 11–19 GB/s of the ~30 the machine has.
    static let parallelWorkBytes = 1 << 16
    /// Floats in one decoded f32 tile on the batched path (4 MiB).
    static let tileFloats = 1 << 20
}

/// Bytes copied into a 64-byte-aligned allocation that lives as long as this object.
final class OwnedBytes {
    let pointer: UnsafeMutableRawPointer

    init(_ bytes: [UInt8]) {
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 64)
        bytes.withUnsafeBytes { pointer.copyMemory(from: $0.baseAddress ?? UnsafeRawPointer(pointer), byteCount: $0.count) }
    }

    deinit { pointer.deallocate() }
}

/// A few f32 buffers reused across calls, so the batched path does not fault in fresh
/// pages for every layer of every forward pass.
final class FloatScratch: @unchecked Sendable {
    /// One reused buffer of `capacity` floats.
    struct Buffer {
        let pointer: UnsafeMutablePointer<Float>
        let capacity: Int
    }

    static let shared = FloatScratch()
    private let lock = NSLock()
    private var free: [Buffer] = []

    /// A buffer of at least `count` floats; give it back with `release`.
    func acquire(_ count: Int) -> Buffer {
        lock.lock()
        defer { lock.unlock() }
        if let i = free.firstIndex(where: { $0.capacity >= count }) { return free.remove(at: i) }
        return Buffer(pointer: .allocate(capacity: count), capacity: count)
    }

    /// Returns a buffer for reuse (keeps the few largest).
    func release(_ buffer: Buffer) {
        lock.lock()
        defer { lock.unlock() }
        free.append(buffer)
        free.sort { $0.capacity > $1.capacity }
        while free.count > 4 { free.removeLast().pointer.deallocate() }
    }
}

extension DenseLinear {
    /// `layer` as full-precision f32: itself if it already is, its decoded blocks if it is a
    /// `QuantizedLinear`; nil for other kinds (W8A8, wrappers).
    public init?(decoding layer: any Linear) {
        if let d = layer as? DenseLinear {
            self = d
        } else if let q = layer as? QuantizedLinear {
            self.init(weight: FloatStorage(q.dequantized()), outFeatures: q.outFeatures, inFeatures: q.inFeatures, bias: q.bias)
        } else {
            return nil
        }
    }
}
