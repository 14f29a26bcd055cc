import Foundation
import Testing
import Quantization
import Tensors

/// Small seeded problems: correlated inputs (so the Hessian is far from diagonal, where
/// GPTQ's error feedback matters) and weights with a few large columns.
struct GPTQProblem {
    let rows: Int, columns: Int, tokens: Int
    var weights: [Float] = [], inputs: [Float] = [], hessian: [Float] = []

    init(rows: Int, columns: Int, tokens: Int = 512, seed: UInt64 = 1, deadColumns: [Int] = []) {
        self.rows = rows; self.columns = columns; self.tokens = tokens
        var state = seed &* 0x9E3779B97F4A7C15 | 1
        func uniform() -> Float {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return Float(state >> 40) / Float(1 << 24) * 2 - 1
        }
        weights = (0..<(rows * columns)).map { i in uniform() * (i % columns % 17 == 0 ? 3 : 1) }
        // x = z·M with M mixing neighbouring columns: correlated features.
        let latent = (0..<(tokens * columns)).map { _ in uniform() }
        inputs = [Float](repeating: 0, count: tokens * columns)
        for t in 0..<tokens {
            for c in 0..<columns {
                var v: Float = 0
                for k in max(0, c - 3)...min(columns - 1, c + 3) { v += latent[t * columns + k] * (k == c ? 1 : 0.6) }
                inputs[t * columns + c] = deadColumns.contains(c) ? 0 : v * (c % 5 == 0 ? 4 : 1)
            }
        }
        hessian = [Float](repeating: 0, count: columns * columns)
        inputs.withUnsafeBufferPointer { x in
            hessian.withUnsafeMutableBufferPointer { h in
                LinearAlgebra.gramUpper(x.baseAddress!, rows: tokens, n: columns, alpha: 2 / Float(tokens), beta: 0, into: h.baseAddress!)
                LinearAlgebra.symmetrize(h.baseAddress!, n: columns)
            }
        }
    }

    /// ‖(W − Ŵ)Xᵀ‖²: the layer-output error GPTQ minimises.
    func outputError(_ q: [Float]) -> Double {
        var total = 0.0
        for t in 0..<tokens {
            for r in 0..<rows {
                var e: Float = 0
                for c in 0..<columns { e += (weights[r * columns + c] - q[r * columns + c]) * inputs[t * columns + c] }
                total += Double(e * e)
            }
        }
        return total
    }
}

@Suite struct GPTQSolverTests {
    @Test(arguments: ["int4-asym-g128", "int4-sym-g64", "int3-asym-g128", "int4-sym-channel", "int2-asym-g32", "int8-sym-channel"])
    func gptqBeatsRoundToNearestOnTheLayerOutput(_ text: String) throws {
        let p = GPTQProblem(rows: 48, columns: 256)
        let grid = try #require(AffineGPTQGrid(try QuantScheme(parsing: text)))
        let rtn = GPTQ.roundToNearest(weights: p.weights, rows: p.rows, columns: p.columns, grid: grid)
        for options in [GPTQOptions(), GPTQOptions(staticGroups: true), GPTQOptions(actOrder: true), GPTQOptions(actOrder: true, staticGroups: true)] {
            let r = try GPTQ.quantize(weights: p.weights, rows: p.rows, columns: p.columns, hessian: p.hessian, grid: grid, options: options)
            let ratio = p.outputError(r.weights) / p.outputError(rtn)
            #expect(ratio < 0.9, "\(text) act-order \(options.actOrder) static \(options.staticGroups): GPTQ/RTN = \(ratio)")
            // Every weight lies on its group's grid.
            for row in 0..<p.rows {
                for c in 0..<p.columns {
                    let params = r.groupParameters[Int(r.groupIndex[c])][row]
                    let v = r.weights[row * p.columns + c]
                    #expect(grid.round(v, offset: 0, params) == v)
                }
            }
        }
    }

    @Test func actOrderGroupsFollowTheQuantizationOrder() throws {
        let p = GPTQProblem(rows: 8, columns: 128)
        let grid = try #require(AffineGPTQGrid(try QuantScheme(parsing: "int4-asym-g32")))
        let r = try GPTQ.quantize(weights: p.weights, rows: p.rows, columns: p.columns, hessian: p.hessian, grid: grid,
                                  options: GPTQOptions(actOrder: true))
        #expect(Set(r.order) == Set(0..<128) && r.order != Array(0..<128))
        for (j, c) in r.order.enumerated() { #expect(r.groupIndex[c] == Int32(j / 32)) }
        let s = try GPTQ.quantize(weights: p.weights, rows: p.rows, columns: p.columns, hessian: p.hessian, grid: grid,
                                  options: GPTQOptions(actOrder: true, staticGroups: true))
        #expect(s.groupIndex == (0..<128).map { Int32($0 / 32) })
    }

    @Test func deadColumnsBecomeZeroAndRunsAreDeterministic() throws {
        let p = GPTQProblem(rows: 16, columns: 64, deadColumns: [3, 40])
        let grid = try #require(AffineGPTQGrid(try QuantScheme(parsing: "int4-sym-g32")))
        let a = try GPTQ.quantize(weights: p.weights, rows: p.rows, columns: p.columns, hessian: p.hessian, grid: grid)
        let b = try GPTQ.quantize(weights: p.weights, rows: p.rows, columns: p.columns, hessian: p.hessian, grid: grid)
        #expect(a.weights == b.weights)
        for r in 0..<p.rows { #expect(a.weights[r * 64 + 3] == 0 && a.weights[r * 64 + 40] == 0) }
        #expect(throws: GPTQError.self) {
            _ = try GPTQ.quantize(weights: p.weights, rows: p.rows, columns: 63, hessian: p.hessian, grid: grid)
        }
    }

    @Test(arguments: [DType.q4_0, .q5_0, .q8_0, .q4_K])
    func ggufBlockTargetsBeatTheirOwnEncoderAndEncodeExactly(_ type: DType) throws {
        let p = GPTQProblem(rows: 24, columns: 512)
        let grid = try #require(GGUFBlockGPTQGrid(type: type))
        // Static block scales (from the original weights), as the CLI uses for GGUF targets, with act-order.
        let r = try GPTQ.quantize(weights: p.weights, rows: p.rows, columns: p.columns, hessian: p.hessian, grid: grid,
                                  options: GPTQOptions(actOrder: true, staticGroups: true))
        var bytes: [UInt8] = []
        for row in 0..<p.rows {
            let params = (0..<(p.columns / type.blockSize)).map { r.groupParameters[$0][row] }
            bytes += r.weights.withUnsafeBufferPointer { grid.encode(row: $0.baseAddress! + row * p.columns, columns: p.columns, parameters: params) }
        }
        let decoded = try bytes.withUnsafeBytes { try Codecs.dequantize(type, bytes: $0, count: p.weights.count) }
        #expect(decoded == r.weights, "the blocks must decode to exactly the weights GPTQ chose")
        let plainBytes = try Codecs.quantize(type, p.weights, rowLength: p.columns)
        let plain = try plainBytes.withUnsafeBytes { try Codecs.dequantize(type, bytes: $0, count: p.weights.count) }
        let ratio = p.outputError(r.weights) / p.outputError(plain)
        #expect(ratio < (type == .q8_0 ? 0.95 : 0.9), "\(type): GPTQ/plain = \(ratio)")
    }
}

/// AWQ's clipped rounding returns the group parameters it chose: packed as a checkpoint
/// matrix, the weights decode to exactly the rounded weights it returned, and its loss is
/// no worse than plain rounding's (ratio 1 is among the candidates).
@Test func awqClippedRoundingPacksToItsOwnWeights() throws {
    let problem = GPTQProblem(rows: 16, columns: 96, seed: 7)
    let rows = problem.rows, columns = problem.columns, w = problem.weights, h = problem.hessian
    var grid = try #require(AffineGPTQGrid(try QuantScheme(parsing: "int4-asym-g32")))
    grid.scaleType = .f16
    let r = AWQ.clippedRoundToNearest(weights: w, rows: rows, columns: columns, hessian: h, grid: grid)
    #expect(r.groupParameters.count == 3 && r.groupParameters.allSatisfy { $0.count == rows })
    #expect(r.groupIndex == (0..<columns).map { Int32($0 / 32) })
    let packed = try GroupQuantizedMatrix(r, grid: grid, rows: rows, columns: columns)
    #expect(packed.dequantized() == r.weights)
    let plain = GPTQ.roundToNearest(weights: w, rows: rows, columns: columns, grid: grid)
    #expect(GPTQ.outputError(w, r.weights, rows: rows, columns: columns, hessian: h)
            <= GPTQ.outputError(w, plain, rows: rows, columns: columns, hessian: h) * (1 + 1e-6))
    #expect(r.weights != plain, "the outlier-heavy groups should have picked a clipping ratio below 1")
}
