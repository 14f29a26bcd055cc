import Foundation
import Testing
import Quantization
import Tensors

@Suite struct HFQuantizedMatrixTests {
    @Test func dequantizedFollowsTheGroupIndex() throws {
        // 2 rows × 4 columns, groups of 2 in act-order: columns 0 and 3 form group 1.
        let m = try GroupQuantizedMatrix(rows: 2, columns: 4, bits: 4, groupSize: 2,
                                         codes: [1, 2, 3, 4, 15, 0, 8, 9], scales: [0.5, 2, 1, 0.25],
                                         zeroPoints: [8, 3, 0, 15], groupIndex: [1, 0, 0, 1], symmetric: false)
        #expect(!m.hasIdentityGrouping && m.groups == 2)
        // w = (code − zero[g]) · scale[g], g = groupIndex[column].
        let expected: [Float] = [-4, -3, -2.5, 2, 0, 0, 8, -1.5]
        #expect(m.dequantized() == expected)
    }

    @Test func invalidMatricesAreRefused() throws {
        func make(codes: [UInt8] = [0, 1, 2, 3], zeros: [Int32] = [1, 2], groupIndex: [Int32]? = nil, bits: Int = 2,
                  groupSize: Int = 2, symmetric: Bool = false) throws -> GroupQuantizedMatrix {
            try GroupQuantizedMatrix(rows: 1, columns: 4, bits: bits, groupSize: groupSize, codes: codes, scales: [1, 1],
                                     zeroPoints: zeros, groupIndex: groupIndex, symmetric: symmetric)
        }
        #expect(throws: Never.self) { try make() }
        #expect(throws: GroupQuantizedMatrixError.unsupportedBits(5)) { try make(bits: 5) }
        #expect(throws: GroupQuantizedMatrixError.valueOutOfRange(field: "codes", index: 3, value: 4, limit: 4)) {
            try make(codes: [0, 1, 2, 4])
        }
        #expect(throws: GroupQuantizedMatrixError.valueOutOfRange(field: "zeroPoints", index: 1, value: -1, limit: 4)) {
            try make(zeros: [0, -1])
        }
        #expect(throws: GroupQuantizedMatrixError.wrongCount(field: "codes", count: 3, expected: 4)) { try make(codes: [0, 1, 2]) }
        #expect(throws: GroupQuantizedMatrixError.groupTooLarge(group: 0, columns: 3, groupSize: 2)) {
            try make(groupIndex: [0, 0, 0, 1])
        }
        #expect(throws: GroupQuantizedMatrixError.valueOutOfRange(field: "groupIndex", index: 0, value: 2, limit: 2)) {
            try make(groupIndex: [2, 0, 1, 1])
        }
        #expect(throws: GroupQuantizedMatrixError.asymmetricZeroPoint(index: 0, value: 1, expected: 2)) { try make(symmetric: true) }
        #expect(throws: GroupQuantizedMatrixError.invalidGroupSize(0)) { try make(groupSize: 0) }
        // -1 is per-channel.
        let perChannel = try GroupQuantizedMatrix(rows: 1, columns: 4, bits: 2, groupSize: -1, codes: [0, 1, 2, 3],
                                                  scales: [1], zeroPoints: [2], symmetric: true)
        #expect(perChannel.groupSize == 4 && perChannel.groups == 1)
    }

    @Test(arguments: [(2, false), (3, false), (4, false), (8, false), (4, true), (8, true)])
    func roundToNearestStaysWithinHalfAStep(bits: Int, symmetric: Bool) throws {
        var rng = HFQuantizedRandom(state: 11)
        let rows = 6, columns = 96
        let w = (0..<rows * columns).map { _ in (rng.float() - 0.3) * 0.2 }
        for minimumZero: Int32 in [0, 1] {
            let m = try GroupQuantizedMatrix.roundToNearest(w, rows: rows, columns: columns, bits: bits, groupSize: 32,
                                                            symmetric: symmetric, minimumZeroPoint: minimumZero)
            #expect(m.groups == 3 && m.symmetric == symmetric && m.hasIdentityGrouping)
            #expect(m == m.scalesRoundedToHalf())  // scales already f16 values
            if symmetric { #expect(m.zeroPoints.allSatisfy { $0 == 1 << (bits - 1) }) }
            #expect(m.zeroPoints.allSatisfy { $0 >= minimumZero })
            // Half a step; a zero point raised to 1 can clip the group's top value by one step more.
            let steps: Float = minimumZero == 0 || symmetric ? 0.5 : 1.5
            let d = m.dequantized()
            for i in w.indices {
                let scale = m.scales[(i / columns) * 3 + (i % columns) / 32]
                #expect(abs(d[i] - w[i]) <= scale * steps * 1.0001 + 1e-9, "\(i)")
            }
        }
    }

    @Test func theToolkitsAffineQuantizationConverts() throws {
        var rng = HFQuantizedRandom(state: 5)
        let w = (0..<4 * 64).map { _ in rng.float() - 0.5 }
        for (grid, granularity) in [(AffineGrid(bits: 4, symmetric: true), QuantScheme.Granularity.group(16)),
                                    (AffineGrid(bits: 8, symmetric: false), .channel),
                                    (AffineGrid(bits: 3, symmetric: false), .tensor)] {
            let q = quantizeAffine(w, rows: 4, columns: 64, grid: grid, granularity: granularity, scaleType: .f16)
            let m = try GroupQuantizedMatrix(q)
            #expect(m.dequantized() == q.dequantized())
            #expect(m.codes.allSatisfy { Int($0) <= m.maxCode })
        }
        let tooWide = quantizeAffine(w, rows: 4, columns: 64, grid: AffineGrid(bits: 6, symmetric: false), granularity: .channel)
        #expect(throws: GroupQuantizedMatrixError.unsupportedBits(6)) { try GroupQuantizedMatrix(tooWide) }
    }

    @Test(arguments: [("int4-asym-g32", true), ("int3-sym-g32", true), ("int8-asym-channel", false), ("int2-asym-g16", false)])
    func gptqResultsConvertExactly(scheme: String, actOrder: Bool) throws {
        var rng = HFQuantizedRandom(state: 17)
        let rows = 32, columns = 64, samples = 128
        let w = (0..<rows * columns).map { _ in rng.float() - 0.5 }
        let x = (0..<samples * columns).map { i in (rng.float() - 0.5) * Float(1 + i % columns % 5) }
        var h = [Float](repeating: 0, count: columns * columns)
        for s in 0..<samples { for i in 0..<columns { for j in 0..<columns { h[i * columns + j] += 2 * x[s * columns + i] * x[s * columns + j] / Float(samples) } } }
        let grid = try #require(AffineGPTQGrid(try QuantScheme(parsing: scheme)))
        var options = GPTQOptions()
        options.actOrder = actOrder
        let result = try GPTQ.quantize(weights: w, rows: rows, columns: columns, hessian: h, grid: grid, options: options)
        let m = try GroupQuantizedMatrix(result, grid: grid, rows: rows, columns: columns)
        #expect(m.dequantized() == result.weights)
        #expect(m.groupIndex == result.groupIndex && m.hasIdentityGrouping == !actOrder)
        #expect(m.symmetric == grid.grid.symmetric)
    }

    @Test func rowsPermute() throws {
        var rng = HFQuantizedRandom(state: 9)
        let m = try rng.matrix(rows: 4, columns: 32, bits: 4, groupSize: 16)
        let p = m.permutingRows { [2, 0, 3, 1][$0] }
        let (a, b) = (m.dequantized(), p.dequantized())
        for (r, s) in [2, 0, 3, 1].enumerated() { #expect(Array(b[r * 32..<(r + 1) * 32]) == Array(a[s * 32..<(s + 1) * 32])) }
        #expect(p.permutingRows { [1, 3, 0, 2][$0] } == m)
    }
}
