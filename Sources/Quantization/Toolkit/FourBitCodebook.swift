import Foundation
import Tensors

/// Sixteen fixed levels in [−1, 1] that a 4-bit code selects; a block's weights are divided
/// by the block absmax and each is replaced by the nearest level.
public struct FourBitCodebook: Hashable, Sendable {
    /// The level each code 0…15 stands for.
    public let levels: [Float]
    /// Distinct levels in ascending order.
    let sorted: [Float]
    /// The code of each `sorted` level.
    let sortedCodes: [UInt8]
    /// Midpoints between adjacent sorted levels: the decision boundaries.
    let thresholds: [Float]

    /// A codebook from the 16 levels, by code (duplicates such as ±0 allowed).
    public init(levels: [Float]) {
        precondition(levels.count == 16, "FourBitCodebook needs 16 levels")
        self.levels = levels
        var seen: [Float: UInt8] = [:]
        for (c, v) in levels.enumerated() where seen[v] == nil { seen[v] = UInt8(c) }
        sorted = seen.keys.sorted()
        sortedCodes = sorted.map { seen[$0]! }
        thresholds = zip(sorted, sorted.dropFirst()).map { ($0 + $1) / 2 }
    }

    /// The code whose level is nearest to `x` (a tie goes to the larger level).
    public func code(_ x: Float) -> UInt8 {
        var k = 0
        for t in thresholds where x >= t { k += 1 }
        return sortedCodes[k]
    }

    /// QLoRA's NormalFloat4: quantiles of the standard normal distribution, rescaled to
    /// [−1, 1], with an exact zero. Code 0 is −1, code 7 is 0, code 15 is 1.
    public static let nf4 = FourBitCodebook(levels: NormalFloat.levels())

    /// FP4 E2M1 (the OCP microscaling element type): sign, 2 exponent bits, 1 mantissa bit,
    /// magnitudes {0, 0.5, 1, 1.5, 2, 3, 4, 6}, divided by 6 so the largest is 1. The code is
    /// the E2M1 bit pattern (8 is −0). bitsandbytes' `fp4` uses a different exponent bias;
    /// this is the standard element type.
    public static let fp4 = FourBitCodebook(levels: [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6]
        .map { Float($0) / 6 })
}

/// How the NF4 levels are built (QLoRA, appendix E): the positive half is the standard
/// normal quantiles at 8 probabilities evenly spaced from `offset` down to 0.5 (excluded),
/// the negative half at 7 such probabilities, plus 0; each half divided by the largest
/// quantile. `offset` = ½(1 − 1/32 + 1 − 1/30) splits the tails between the two halves.
/// As in the reference construction, the probabilities are spaced in f32 and the
/// quantiles rounded to f32 before the division.
enum NormalFloat {
    static let offset: Float = 0.9677083

    static func levels() -> [Float] {
        let positive = linspace(offset, 0.5, 9).dropLast().map { Float(standardNormalQuantile(Double($0))) }
        let negative = linspace(offset, 0.5, 8).dropLast().map { -Float(standardNormalQuantile(Double($0))) }
        let all = (positive + [0] + negative).sorted()
        let top = all.last!
        return all.map { $0 / top }
    }

    /// `n` evenly spaced f32 values from `start` to `end`, computed from both ends toward the
    /// middle (as common tensor libraries do, so the ends are exact).
    static func linspace(_ start: Float, _ end: Float, _ n: Int) -> [Float] {
        let step = (end - start) / Float(n - 1)
        return (0..<n).map { i in i < n / 2 ? start + step * Float(i) : end - step * Float(n - 1 - i) }
    }

    /// Φ⁻¹(p) for 0 < p < 1 by bisection on Φ(x) = ½·erfc(−x/√2), to double precision.
    static func standardNormalQuantile(_ p: Double) -> Double {
        var lo = -40.0, hi = 40.0
        for _ in 0..<200 {
            let mid = (lo + hi) / 2
            if mid == lo || mid == hi { break }
            if 0.5 * erfc(-mid / 2.0.squareRoot()) < p { lo = mid } else { hi = mid }
        }
        return (lo + hi) / 2
    }
}

/// A matrix quantized to a `FourBitCodebook` with one absmax scale per block.
public struct BlockwiseQuantized: Sendable {
    /// Output channels.
    public let rows: Int
    /// Input columns.
    public let columns: Int
    /// The 16 levels.
    public let codebook: FourBitCodebook
    /// The blocks: `.group(n)` is n columns of a row, `.channel` a whole row, `.tensor` all.
    public let granularity: QuantScheme.Granularity
    /// The 4-bit codes of all weights, row-major, packed two per byte (low nibble first).
    public var packedCodes: [UInt8]
    /// Each block's absmax (row-major block order), as stored.
    public var absmax: StoredFloats

    /// Bytes of codes plus scales (plus the double-quantization constants).
    public var storedByteCount: Int { packedCodes.count + absmax.byteCount }

    /// Stored bits per weight: `8 · storedByteCount / (rows · columns)`.
    public var bitsPerParameter: Double {
        rows * columns == 0 ? 0 : Double(8 * storedByteCount) / Double(rows * columns)
    }

    /// The weights the codes stand for: `levels[code] · absmax[block]`.
    public func dequantized() -> [Float] {
        let scales = absmax.values(), levels = codebook.levels, columns = self.columns
        let perRow = granularity.groupsPerRow(columns: columns)
        let length = granularity.groupLength(columns: columns)
        let isTensor = granularity == .tensor
        var out = [Float](repeating: 0, count: rows * columns)
        packedCodes.withUnsafeBufferPointer { q in
            out.withUnsafeMutableBufferPointer { o in
                parallelFor(rows) { r in
                    for c in 0..<columns {
                        let i = r * columns + c
                        let s = isTensor ? scales[0] : scales[r * perRow + c / length]
                        o[i] = levels[Int((q[i / 2] >> UInt8(4 * (i % 2))) & 0xF)] * s
                    }
                }
            }
        }
        return out
    }
}

/// Quantizes a row-major matrix to `codebook` (NF4 or FP4) with absmax scaling per block,
/// as bitsandbytes' 4-bit types do: codes are chosen with the exact absmax, which is then
/// stored as `scaleType` (rounded up) or, with `doubleQuant`, by `DoubleQuantizedScales`.
/// - Precondition: `weights.count == rows * columns`, all finite.
public func quantizeBlockwise(
    _ weights: UnsafeBufferPointer<Float>, rows: Int, columns: Int, codebook: FourBitCodebook,
    granularity: QuantScheme.Granularity, scaleType: QuantScheme.ScaleType = .f32, doubleQuant: Bool = false
) -> BlockwiseQuantized {
    precondition(weights.count == rows * columns, "quantizeBlockwise: weights must hold rows × columns values")
    let perRow = granularity.groupsPerRow(columns: columns)
    let length = granularity.groupLength(columns: columns)
    let isTensor = granularity == .tensor
    let n = rows * columns
    var blockMax = [Float](repeating: 0, count: isTensor ? 1 : rows * perRow)
    if isTensor {
        let (mn, mx) = minMax(weights, rows: rows, columns: columns)
        blockMax[0] = max(-mn, mx)
    }
    var codes = [UInt8](repeating: 0, count: n)
    blockMax.withUnsafeMutableBufferPointer { bm in
        codes.withUnsafeMutableBufferPointer { q in
            parallelFor(rows) { r in
                for k in 0..<perRow {
                    let lo = r * columns + k * length, hi = r * columns + min((k + 1) * length, columns)
                    let a: Float
                    if isTensor {
                        a = bm[0]
                    } else {
                        let (mn, mx) = minMax(weights, lo, hi)
                        a = max(-mn, mx)
                        bm[r * perRow + k] = a
                    }
                    // Dividing by a scale rounded up keeps every ratio inside [−1, 1].
                    let s = doubleQuant ? a : scaleType.stored(a)
                    let inv: Float = s > 0 ? 1 / s : 0
                    for i in lo..<hi { q[i] = codebook.code(weights[i] * inv) }
                }
            }
        }
    }
    let packed = try! BitPacking.pack(codes, bits: 4)  // every code is below 16
    let absmax: StoredFloats = doubleQuant
        ? .doubleQuantized(DoubleQuantizedScales(quantizing: blockMax))
        : StoredFloats(blockMax, as: scaleType, roundUp: true)
    return BlockwiseQuantized(rows: rows, columns: columns, codebook: codebook, granularity: granularity,
                              packedCodes: packed, absmax: absmax)
}

/// Array form of `quantizeBlockwise` (the buffer form documents the details).
public func quantizeBlockwise(
    _ weights: [Float], rows: Int, columns: Int, codebook: FourBitCodebook,
    granularity: QuantScheme.Granularity, scaleType: QuantScheme.ScaleType = .f32, doubleQuant: Bool = false
) -> BlockwiseQuantized {
    weights.withUnsafeBufferPointer {
        quantizeBlockwise($0, rows: rows, columns: columns, codebook: codebook, granularity: granularity, scaleType: scaleType,
                          doubleQuant: doubleQuant)
    }
}
