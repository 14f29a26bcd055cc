import CKernels
import Foundation
import Tensors

/// A linear layer with int8 weights and int8 activations (W8A8, as in SmoothQuant and
/// TensorRT-LLM's int8 GEMM): both operands of the matrix product are 8-bit integers and
/// the sums are exact int32, scaled back to f32 once per output.
///
///     y[i, j] = sx[i] · sw[j] · Σ_k qx[i, k] · qw[j, k] + b[j]
///
/// - Weights: symmetric int8 per output channel, sw[j] = max|W[j, :]| / 127, quantized
///   once at construction and packed for the kernels (`CKernels_s8.h`).
/// - Activations: quantized on every call, either per token (row) from its own max|x|
///   (`.dynamicPerToken`), or with one calibrated scale for every token
///   (`.staticPerTensor(scale:)`, values beyond 127·scale saturate).
///
/// Both use −127…127 and round to nearest-even. Output channels and rows are split into
/// tiles handed to `Threads.count` threads.
public struct W8A8Linear: Linear, SizedLinear, @unchecked Sendable {
    /// How a layer quantizes its input rows.
    public enum ActivationMode: Sendable, Equatable, CustomStringConvertible {
        /// Each row (token) gets its own scale, max|x| / 127, computed on every call.
        case dynamicPerToken
        /// Every row uses `scale`, calibrated offline (e.g. max|x| / 127 over a calibration set).
        case staticPerTensor(scale: Float)

        /// `dynamic` or `static(scale)`.
        public var description: String {
            switch self {
            case .dynamicPerToken: return "dynamic"
            case .staticPerTensor(let s): return "static(\(s))"
            }
        }
    }

    /// Input width (columns of the weight), at most `maxInFeatures`.
    public let inFeatures: Int
    /// Output width (output channels, rows of the weight).
    public let outFeatures: Int
    /// How input rows are quantized.
    public let activationMode: ActivationMode
    /// Per-output-channel weight scales sw (length `outFeatures`).
    public let weightScales: [Float]
    /// Optional bias of length `outFeatures` (also stored in the packed weight).
    public let bias: [Float]?
    private let packed: AlignedBytes

    /// The largest `inFeatures` the int32 accumulators are guaranteed for.
    public static let maxInFeatures = 65536

    /// Quantizes `weight` (`outFeatures × inFeatures` f32, row-major) per output channel.
    public init(weight: UnsafeBufferPointer<Float>, outFeatures: Int, inFeatures: Int, bias: [Float]? = nil,
                activations: ActivationMode = .dynamicPerToken) {
        precondition(weight.count == outFeatures * inFeatures, "weight size does not match shape")
        let (q, scales) = Self.quantizePerChannel(weight, rows: outFeatures, columns: inFeatures)
        self.init(quantizedWeight: q, scales: scales, outFeatures: outFeatures, inFeatures: inFeatures, bias: bias,
                  activations: activations)
    }

    /// Quantizes the f32 weights of `dense` (and keeps its bias).
    public init(_ dense: DenseLinear, activations: ActivationMode = .dynamicPerToken) {
        self = dense.weight.withPointer {
            W8A8Linear(weight: UnsafeBufferPointer(start: $0, count: dense.weight.count), outFeatures: dense.outFeatures,
                       inFeatures: dense.inFeatures, bias: dense.bias, activations: activations)
        }
    }

    /// A layer over already-quantized weights: `quantizedWeight` holds `outFeatures` rows
    /// of `inFeatures` values in −127…127, `scales` one scale per row.
    public init(quantizedWeight: [Int8], scales: [Float], outFeatures: Int, inFeatures: Int, bias: [Float]? = nil,
                activations: ActivationMode = .dynamicPerToken) {
        precondition(outFeatures > 0 && inFeatures > 0, "empty layer")
        precondition(inFeatures <= Self.maxInFeatures, "inFeatures above \(Self.maxInFeatures)")
        precondition(quantizedWeight.count == outFeatures * inFeatures, "weight size does not match shape")
        precondition(scales.count == outFeatures, "one weight scale per output channel")
        precondition(!quantizedWeight.contains(-128), "int8 weights must lie in −127…127")
        precondition(bias == nil || bias!.count == outFeatures, "bias size does not match outFeatures")
        if case .staticPerTensor(let s) = activations {
            precondition(s.isFinite && s > 0, "a static activation scale must be positive and finite")
        }
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.activationMode = activations
        self.weightScales = scales
        self.bias = bias
        packed = AlignedBytes(count: sq_s8_packed_bytes(outFeatures, inFeatures))
        let p = packed.pointer
        quantizedWeight.withUnsafeBufferPointer { q in
            sq_s8_pack(q.baseAddress!, inFeatures, outFeatures, inFeatures, scales, bias, p)
        }
    }

    /// The symmetric per-row int8 quantization of a `rows × columns` matrix: scale
    /// max|row| / 127, values rounded to nearest-even (an all-zero row gets scale 0).
    public static func quantizePerChannel(_ weight: UnsafeBufferPointer<Float>, rows: Int, columns: Int)
        -> (values: [Int8], scales: [Float]) {
        precondition(weight.count == rows * columns, "weight size does not match shape")
        var scales = [Float](repeating: 0, count: rows)
        let values = [Int8](unsafeUninitializedCapacity: rows * columns) { buf, n in
            scales.withUnsafeMutableBufferPointer { s in
                let chunks = QuantizedLinear.chunks(rows, rows: 64)
                parallelFor(chunks.count) { c in
                    let r = chunks[c]
                    sq_s8_quantize_rows(weight.baseAddress! + r.lowerBound * columns, columns, r.count, columns,
                                        buf.baseAddress! + r.lowerBound * columns, columns, s.baseAddress! + r.lowerBound)
                }
            }
            n = rows * columns
        }
        return (values, scales)
    }

    /// The static activation scale that maps `maxAbs` (the largest |x| seen in calibration) to 127.
    public static func staticScale(maxAbs: Float) -> Float { maxAbs > 0 ? maxAbs / 127 : 1 }

    /// Weight row `j` as stored (int8).
    public func quantizedWeightRow(_ j: Int) -> [Int8] {
        precondition(j >= 0 && j < outFeatures, "row \(j) out of 0..<\(outFeatures)")
        return [Int8](unsafeUninitializedCapacity: inFeatures) { buf, n in
            sq_s8_unpack_row(packed.pointer, outFeatures, inFeatures, j, buf.baseAddress!)
            n = inFeatures
        }
    }

    /// The weights the layer computes with, sw[j] · qw[j, k], as f32 (`[outFeatures, inFeatures]`).
    public func dequantizedWeight() -> [Float] {
        (0..<outFeatures).flatMap { j in quantizedWeightRow(j).map { Float($0) * weightScales[j] } }
    }

    /// Bytes of the packed weight: int8 values (channels padded to 16, inputs to 4) plus
    /// per-channel sums, scales and bias.
    public var storageBytes: Int { packed.count }

    /// Quantizes the rows of `x` (`[rows, inFeatures]`) and writes `[rows, outFeatures]` to `y`.
    public func forward(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        guard rows > 0 else { return }
        let k = inFeatures, lda = (k + 63) & ~63
        let buf = UnsafeMutableRawPointer.allocate(byteCount: rows * lda + 4 * rows, alignment: 64)
        defer { buf.deallocate() }
        let q = buf.assumingMemoryBound(to: Int8.self)
        let scales = (buf + rows * lda).assumingMemoryBound(to: Float.self)
        let mode = activationMode
        let rowChunks = QuantizedLinear.chunks(rows, rows: 32)
        parallelFor(rowChunks.count, threads: rows >= 64 ? Threads.count : 1) { c in
            let r = rowChunks[c]
            switch mode {
            case .dynamicPerToken:
                sq_s8_quantize_rows(x + r.lowerBound * k, k, r.count, k, q + r.lowerBound * lda, lda,
                                    scales + r.lowerBound)
            case .staticPerTensor(let s):
                (scales + r.lowerBound).initialize(repeating: s, count: r.count)
                sq_s8_quantize_rows_static(x + r.lowerBound * k, k, r.count, k, s, q + r.lowerBound * lda, lda)
            }
        }
        multiply(q, lda: lda, scales: scales, rows: rows, into: y)
    }

    /// The integer product of quantized rows `q` (row stride `lda` bytes, scales `scales`)
    /// with the packed weight, into `y` (`[rows, outFeatures]`), in tiles over the threads.
    func multiply(_ q: UnsafePointer<Int8>, lda: Int, scales: UnsafePointer<Float>, rows: Int,
                  into y: UnsafeMutablePointer<Float>) {
        let (n, k, p) = (outFeatures, inFeatures, UnsafeRawPointer(packed.pointer))
        let rowBlocks = QuantizedLinear.chunks(rows, rows: Self.tileRows(inFeatures: k))
        let channelBlocks = QuantizedLinear.chunks(n, rows: Self.tileChannels)
        let tiles = rowBlocks.count * channelBlocks.count
        let work = rows * n * k
        QuantizedLinear.forEachChunk(tiles, threads: work < Self.parallelWork ? 1 : Threads.count) { t in
            let r = rowBlocks[t / channelBlocks.count], c = channelBlocks[t % channelBlocks.count]
            sq_s8_gemm(q + r.lowerBound * lda, lda, scales + r.lowerBound, r.count, p, n, k, c.lowerBound,
                       c.upperBound, y + r.lowerBound * n, n)
        }
    }

    /// Rows per tile: a block of activations (rows × k bytes, at most 256 KiB) that stays
    /// in L2 while the tile's weight slices pass over it; a multiple of the AVX-512 kernel's 8.
    static func tileRows(inFeatures k: Int) -> Int { min(256, max(8, (1 << 18) / max(k, 1) / 8 * 8)) }
    /// Output channels per tile, a multiple of the kernels' 16-channel panels (and of the
    /// AVX-512 kernel's 48-channel slices).
    static let tileChannels = 96
    /// Multiply-adds below which one thread does the whole product (waking workers costs
    /// microseconds; see `QuantizedLinear.parallelWorkBytes`).
    static let parallelWork = 1 << 20
}

/// A 64-byte-aligned, zero-filled allocation that lives as long as this object.
final class AlignedBytes: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    let count: Int

    init(count: Int) {
        self.count = count
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 64)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: max(count, 1))
    }

    deinit { pointer.deallocate() }
}
