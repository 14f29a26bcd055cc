import Tensors

/// GPTQ onto a toolkit integer grid: per group of `groupSize` columns (or per row), the
/// scale and zero point from the group's current min and max, as round-to-nearest would.
public struct AffineGPTQGrid: GPTQGrid {
    /// The integer grid.
    public let grid: AffineGrid
    /// Columns per group; 0 = per output channel.
    public let groupSize: Int
    /// How scales are stored (they are rounded to it before use).
    public var scaleType: QuantScheme.ScaleType
    /// Asymmetric zero points are raised to at least this (1 keeps them storable in the
    /// GPTQ v1 checkpoint format, which stores zero − 1).
    public var minimumZeroPoint: Int32 = 0

    /// A grid for an integer scheme (`int4-asym-g128`, `int3-sym-channel`, …); nil for
    /// schemes that are not integer grids per channel or group.
    public init?(_ scheme: QuantScheme) {
        guard case let .integer(bits, symmetric) = scheme.codebook, scheme.activations == .none else { return nil }
        switch scheme.granularity {
        case .channel: groupSize = 0
        case .group(let g): groupSize = g
        case .tensor: return nil
        }
        grid = AffineGrid(bits: bits, symmetric: symmetric)
        scaleType = scheme.scaleType
    }

    public func parameters(columns: UnsafePointer<Float>, count: Int, rows: Int) -> [AffineParameters] {
        var lo = [Float](repeating: .infinity, count: rows), hi = [Float](repeating: -.infinity, count: rows)
        for k in 0..<count {
            let col = columns + k * rows
            for r in 0..<rows {
                lo[r] = min(lo[r], col[r])
                hi[r] = max(hi[r], col[r])
            }
        }
        return (0..<rows).map { r in
            var p = grid.parameters(min: lo[r], max: hi[r], scaleType: scaleType)
            if !grid.symmetric && p.zeroPoint < minimumZeroPoint { p.zeroPoint = min(minimumZeroPoint, grid.qmax) }
            return p
        }
    }

    @inline(__always)
    public func round(_ x: Float, offset: Int, _ p: AffineParameters) -> Float { grid.fakeQuantize(x, p) }
}

/// GPTQ onto GGUF blocks, so llama.cpp users get GPTQ's rounding in their usual files. At
/// each block's first column the block's scales are chosen from the current weights
/// exactly as the type's own encoder would; GPTQ then rounds each column onto that fixed
/// grid, and `encode` writes blocks that decode to exactly the rounded weights.
///
/// Types: Q8_0, Q4_0 and Q5_0 (one f16 scale per 32), Q4_K (256-weight super-blocks: f16 `d`,
/// `dmin` and 6-bit scales and minimums per 32, chosen by the Q4_K search).
public struct GGUFBlockGPTQGrid: GPTQGrid {
    /// Per row, one block: for Q4_0/Q8_0 the f16 scale; for Q4_K the block's 16-byte header
    /// plus the 8 sub-block (scale, min) pairs it decodes to.
    public struct Parameters: Sendable {
        /// Effective step and offset of each 32-weight sub-block: weight = step·q − offset.
        var step: [Float]
        var offset: [Float]
        /// Bytes that precede the quants in the block (f16 d; or d, dmin, scales).
        var header: [UInt8]
    }

    /// The block type.
    public let type: DType
    public var groupSize: Int { type.blockSize }
    /// Block scales come from the original weights: recomputing them from the error-updated
    /// weights at each block's first column made GPTQ lose to plain rounding at Q4_0 on
    /// SmolLM2 (27.45 vs 27.07 perplexity); fixed scales win (26.95, 25.28 with act-order).
    public var fixedGroups: Bool { true }

    /// Types GPTQ can round onto.
    public static let supportedTypes: [DType] = [.q8_0, .q4_0, .q5_0, .q4_K]

    /// A grid for `type`; nil if GPTQ cannot target it.
    public init?(type: DType) {
        guard Self.supportedTypes.contains(type) else { return nil }
        self.type = type
    }

    public func parameters(columns: UnsafePointer<Float>, count: Int, rows: Int) -> [Parameters] {
        var block = [Float](repeating: 0, count: type.blockSize)
        var bytes = [UInt8](repeating: 0, count: type.bytesPerBlock)
        return (0..<rows).map { r in
            for k in 0..<type.blockSize { block[k] = k < count ? columns[k * rows + r] : 0 }
            block.withUnsafeBufferPointer { x in
                bytes.withUnsafeMutableBytes { y in
                    try! Codecs.quantize(type, from: x.baseAddress!, count: type.blockSize, into: y.baseAddress!)
                }
            }
            return bytes.withUnsafeBytes { parameters(of: $0.baseAddress!) }
        }
    }

    /// The grid of an encoded block.
    func parameters(of x: UnsafeRawPointer) -> Parameters {
        switch type {
        case .q8_0, .q4_0, .q5_0:
            let d = x.f16(0)
            return Parameters(step: [d], offset: [0], header: [x.u8(0), x.u8(1)])
        default:  // Q4_K
            let d = x.f16(0), dmin = x.f16(2)
            var step: [Float] = [], offset: [Float] = []
            for j in 0..<8 {
                let (sc, m) = Codecs.Q4_K.scaleMin(x + 4, j)
                step.append(d * Float(sc))
                offset.append(dmin * Float(m))
            }
            return Parameters(step: step, offset: offset, header: (0..<16).map { x.u8($0) })
        }
    }

    /// The code range of the type and the code that stands for zero.
    private var codeRange: (lo: Float, hi: Float, bias: Float) {
        switch type {
        case .q8_0: return (-127, 127, 0)
        case .q4_0: return (0, 15, 8)
        case .q5_0: return (0, 31, 16)
        default: return (0, 15, 0)
        }
    }

    @inline(__always)
    func code(_ x: Float, offset k: Int, _ p: Parameters) -> Float {
        let s = type == .q4_K ? k / 32 : 0
        let step = p.step[s]
        let (lo, hi, bias) = codeRange
        guard step != 0 else { return bias }
        return min(max(((x + p.offset[s]) / step).rounded(.toNearestOrEven) + bias, lo), hi)
    }

    public func round(_ x: Float, offset k: Int, _ p: Parameters) -> Float {
        let s = type == .q4_K ? k / 32 : 0
        return p.step[s] * (code(x, offset: k, p) - codeRange.bias) - p.offset[s]
    }

    /// Encodes one row of rounded weights (each on its block's grid) as blocks of the type.
    /// `parameters[b]` is block `b`'s grid.
    public func encode(row: UnsafePointer<Float>, columns: Int, parameters: [Parameters]) -> [UInt8] {
        let blocks = columns / type.blockSize
        var out = [UInt8](repeating: 0, count: blocks * type.bytesPerBlock)
        for b in 0..<blocks {
            let p = parameters[b], x = row + b * type.blockSize, base = b * type.bytesPerBlock
            for (i, v) in p.header.enumerated() { out[base + i] = v }
            let q = (0..<type.blockSize).map { UInt8(truncatingIfNeeded: Int(code(x[$0], offset: $0, p))) }
            switch type {
            case .q8_0:
                for j in 0..<32 { out[base + 2 + j] = q[j] }
            case .q4_0:
                for j in 0..<16 { out[base + 2 + j] = q[j] | q[j + 16] << 4 }
            case .q5_0:
                var qh: UInt32 = 0
                for j in 0..<32 { qh |= UInt32(q[j] >> 4) << j }
                for k in 0..<4 { out[base + 2 + k] = UInt8(truncatingIfNeeded: qh >> (8 * k)) }
                for j in 0..<16 { out[base + 6 + j] = (q[j] & 0x0F) | (q[j + 16] & 0x0F) << 4 }
            default:
                for c in 0..<4 { for l in 0..<32 { out[base + 16 + 32 * c + l] = q[64 * c + l] | q[64 * c + 32 + l] << 4 } }
            }
        }
        return out
    }
}

extension GPTQ {
    /// Plain round-to-nearest on the same grid (parameters from the original weights, no
    /// error feedback): the baseline GPTQ is measured against.
    public static func roundToNearest<G: GPTQGrid>(weights: [Float], rows: Int, columns n: Int, grid: G) -> [Float] {
        let g = grid.groupSize > 0 ? min(grid.groupSize, n) : n
        var out = weights
        var cols = [Float](repeating: 0, count: g * rows)
        for start in stride(from: 0, to: n, by: g) {
            let count = min(g, n - start)
            for k in 0..<count { for r in 0..<rows { cols[k * rows + r] = weights[r * n + start + k] } }
            let params = cols.withUnsafeBufferPointer { grid.parameters(columns: $0.baseAddress!, count: count, rows: rows) }
            for r in 0..<rows {
                for k in 0..<count {
                    out[r * n + start + k] = grid.round(weights[r * n + start + k], offset: grid.groupSize > 0 ? k : start + k, params[r])
                }
            }
        }
        return out
    }
}
