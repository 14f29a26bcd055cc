import CKernels
import Models
import Quantization
import Tensors

/// A weight type with a dot-product kernel, and where its f16 scale fields sit in a block,
/// so random blocks can be given sane scales.
struct KernelType: CustomStringConvertible, Sendable {
    var type: DType
    /// Byte offsets of f16 fields in a block: the scale first, then the minimum (if any).
    var scaleOffsets: [Int]
    /// True when the second f16 field is subtracted (k-quant `dmin`) rather than added
    /// (legacy `m`, which is usually negative).
    var minIsSubtracted = false

    var description: String { type.rawValue }
    var id: UInt32 { type.ggmlTypeID! }
    var blockSize: Int { type.blockSize }

    static let all: [KernelType] = [
        KernelType(type: .q8_0, scaleOffsets: [0]),
        KernelType(type: .q4_0, scaleOffsets: [0]),
        KernelType(type: .q4_1, scaleOffsets: [0, 2]),
        KernelType(type: .q5_0, scaleOffsets: [0]),
        KernelType(type: .q5_1, scaleOffsets: [0, 2]),
        KernelType(type: .iq4_nl, scaleOffsets: [0]),
        KernelType(type: .q2_K, scaleOffsets: [80, 82], minIsSubtracted: true),
        KernelType(type: .q3_K, scaleOffsets: [108]),
        KernelType(type: .q4_K, scaleOffsets: [0, 2], minIsSubtracted: true),
        KernelType(type: .q5_K, scaleOffsets: [0, 2], minIsSubtracted: true),
        KernelType(type: .q6_K, scaleOffsets: [208]),
        KernelType(type: .iq4_xs, scaleOffsets: [0]),
    ]

    /// `rows` rows of `n` weights: random bytes with the f16 fields replaced by
    /// `scale()` and `minimum()`.
    func randomRows(_ rows: Int, n: Int, rng: inout SplitMix64, scale: (inout SplitMix64) -> Float,
                    minimum: (inout SplitMix64) -> Float) -> [UInt8] {
        let blocks = rows * n / blockSize, bpb = type.bytesPerBlock
        var bytes = (0..<blocks * bpb).map { _ in UInt8.random(in: 0...255, using: &rng) }
        for b in 0..<blocks {
            for (k, off) in scaleOffsets.enumerated() {
                let h = Half.floatToF16(k == 0 ? scale(&rng) : minimum(&rng))
                bytes[b * bpb + off] = UInt8(h & 0xFF)
                bytes[b * bpb + off + 1] = UInt8(h >> 8)
            }
        }
        return bytes
    }

    /// Decodes rows to f32 with the Swift codecs (bit-exact with `gguf.quants`).
    func dequantize(_ bytes: [UInt8], count: Int) -> [Float] {
        bytes.withUnsafeBytes { try! Codecs.dequantize(type, bytes: $0, count: count) }
    }
}

/// A quantized activation row in the kernels' layout (see `CKernels.h`), 64-byte aligned.
final class ActivationRow {
    let pointer: UnsafeMutableRawPointer
    let type: KernelType
    let n: Int
    let blockSize: Int
    let byteCount: Int

    init(type: KernelType, n: Int) {
        self.type = type
        self.n = n
        blockSize = Int(sq_qdot_act_block(type.id))
        byteCount = sq_qdot_act_bytes(type.id, n)
        pointer = .allocate(byteCount: byteCount, alignment: 64)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: byteCount)
    }

    /// The row `sq_qdot_quantize` makes from `x`.
    convenience init(type: KernelType, quantizing x: [Float]) {
        self.init(type: type, n: x.count)
        sq_qdot_quantize(type.id, x, x.count, pointer)
    }

    deinit { pointer.deallocate() }

    var blocks: Int { n / blockSize }
    var qs: UnsafeMutablePointer<Int8> { pointer.assumingMemoryBound(to: Int8.self) }
    /// The f32 fields after the quants: (d, s) pairs for 32-wide blocks, scales for 256-wide.
    private var floats: UnsafeMutablePointer<Float> { (pointer + n).assumingMemoryBound(to: Float.self) }
    var bsums: UnsafeMutablePointer<Int16> { (pointer + n + 4 * blocks).assumingMemoryBound(to: Int16.self) }

    /// Scale of block `b`.
    func d(_ b: Int) -> Float { floats[blockSize == 32 ? 2 * b : b] }
    /// d × Σ qs of 32-wide block `b`.
    func s(_ b: Int) -> Float { floats[2 * b + 1] }

    /// Where value `i` sits in `qs` (the nibble kinds store blocks in pairs).
    func position(_ i: Int) -> Int { sq_qdot_act_position(type.id, n, i) }

    /// Quant of value `i`.
    func quant(_ i: Int) -> Int8 { qs[position(i)] }

    /// Sets quants and block scales directly, filling in the sums the layout needs.
    func set(quants: [Int8], scales: [Float]) {
        for i in 0..<n { qs[position(i)] = quants[i] }
        for b in 0..<blocks {
            if blockSize == 32 {
                floats[2 * b] = scales[b]
                floats[2 * b + 1] = scales[b] * Float(quants[32 * b..<32 * b + 32].reduce(0) { $0 + Int($1) })
            } else {
                floats[b] = scales[b]
                for g in 0..<16 {
                    bsums[16 * b + g] = Int16(quants[256 * b + 16 * g..<256 * b + 16 * g + 16].reduce(0) { $0 + Int($1) })
                }
            }
        }
    }

    /// The values the row stands for: d × q.
    var dequantized: [Float] { (0..<n).map { d($0 / blockSize) * Float(quant($0)) } }
}

/// `rows` dot products at kernel `level` (−1 result when the CPU lacks it).
func kernelDots(_ t: KernelType, level: Int32, n: Int, weights: [UInt8], rows: Int, act: ActivationRow) -> (Int32, [Float]) {
    var out = [Float](repeating: .nan, count: rows)
    let rowBytes = t.type.byteCount(elements: n)!
    let used = weights.withUnsafeBytes {
        sq_qdot_rows_level(level, t.id, n, $0.baseAddress!, rowBytes, rows, act.pointer, &out)
    }
    return (used, out)
}

/// The SIMD levels this CPU has (AVX2 and AVX-512 VNNI on x86, NEON on arm64).
var simdLevels: [Int32] {
    let top = sq_cpu_level()
    return top == 3 ? [3] : Array(stride(from: 1, through: top, by: 1))
}

/// A roughly normal value (sum of uniforms), mean 0, standard deviation about `sigma`.
func gaussian(_ rng: inout SplitMix64, sigma: Float = 1) -> Float {
    var s: Float = 0
    for _ in 0..<4 { s += Float.random(in: -1...1, using: &rng) }
    return s * sigma * 0.866
}
