import Foundation
import Testing
@testable import Formats
import Quantization

/// Deterministic random numbers for the tests (SplitMix64).
struct HFQuantizedRandom {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    mutating func float() -> Float { Float(next() >> 40) / Float(1 << 24) }

    /// A random valid matrix; `actOrder` shuffles the columns' groups as GPTQ's desc_act does.
    mutating func matrix(rows: Int, columns: Int, bits: Int, groupSize: Int, symmetric: Bool = false,
                         actOrder: Bool = false, minimumZero: Int32 = 0) throws -> GroupQuantizedMatrix {
        let size = groupSize == -1 ? columns : groupSize
        let groups = (columns + size - 1) / size
        let limit = 1 << bits
        var groupIndex = GroupQuantizedMatrix.identityGroupIndex(columns: columns, groupSize: size)
        if actOrder {
            for i in stride(from: columns - 1, to: 0, by: -1) { groupIndex.swapAt(i, int(i + 1)) }
        }
        let codes = (0..<rows * columns).map { _ in UInt8(int(limit)) }
        // Scales that f16 holds exactly, so a write → read round trip is lossless.
        let scales = (0..<rows * groups).map { _ in Float(int(2000) + 1) / 65536 }
        let zeros = (0..<rows * groups).map { _ in
            symmetric ? GroupQuantizedMatrix.symmetricZeroPoint(bits: bits) : Int32(Int(minimumZero) + int(limit - Int(minimumZero)))
        }
        return try GroupQuantizedMatrix(rows: rows, columns: columns, bits: bits, groupSize: groupSize, codes: codes,
                                        scales: scales, zeroPoints: zeros, groupIndex: groupIndex, symmetric: symmetric)
    }
}

@Suite struct HFQuantizedPackingTests {
    /// A 32-output × 32-input matrix whose codes and zero points are given by functions.
    func matrix(bits: Int, code: (Int, Int) -> Int, zero: (Int) -> Int32) throws -> GroupQuantizedMatrix {
        var codes = [UInt8](repeating: 0, count: 32 * 32)
        for o in 0..<32 { for i in 0..<32 { codes[o * 32 + i] = UInt8(code(o, i)) } }
        return try GroupQuantizedMatrix(rows: 32, columns: 32, bits: bits, groupSize: 32, codes: codes,
                                        scales: Array(repeating: 1, count: 32), zeroPoints: (0..<32).map(zero), symmetric: false)
    }

    @Test func gptqFourBitWordsAreHandComputed() throws {
        // Input i of output column 0 has code i % 16: word 0 = codes 0…7, lowest nibble first.
        let m = try matrix(bits: 4, code: { o, i in o == 0 ? i % 16 : 0 }, zero: { Int32($0 % 16) })
        let q = HFQuantizedPacking.gptqQWeight(m)  // [32·4/32 = 4, 32]
        #expect(q.count == 4 * 32)
        #expect(UInt32(bitPattern: q[0 * 32 + 0]) == 0x7654_3210)
        #expect(UInt32(bitPattern: q[1 * 32 + 0]) == 0xFEDC_BA98)
        #expect(q[0 * 32 + 1] == 0)
        // Zero points along the outputs, stored minus one in format v1 (0 wraps to 0xF).
        let z1 = HFQuantizedPacking.gptqQZeros(m, offset: 1)
        #expect(UInt32(bitPattern: z1[0]) == 0x6543_210F)
        let z2 = HFQuantizedPacking.gptqQZeros(m, offset: 0)
        #expect(UInt32(bitPattern: z2[0]) == 0x7654_3210)
        #expect(UInt32(bitPattern: z2[1]) == 0xFEDC_BA98)
    }

    @Test func gptqTwoAndEightBitWordsAreHandComputed() throws {
        let m2 = try matrix(bits: 2, code: { o, i in o == 0 ? i % 4 : 0 }, zero: { _ in 0 })
        // 16 codes per word: 0,1,2,3,0,1,… → bits 11 10 01 00 repeated = 0xE4E4E4E4.
        #expect(UInt32(bitPattern: HFQuantizedPacking.gptqQWeight(m2)[0]) == 0xE4E4_E4E4)
        let m8 = try matrix(bits: 8, code: { o, i in o == 0 ? i * 7 : 0 }, zero: { _ in 0 })
        let q8 = HFQuantizedPacking.gptqQWeight(m8)  // [8, 32]
        #expect(UInt32(bitPattern: q8[0]) == 0x150E_0700)  // codes 0, 7, 14, 21
        #expect(UInt32(bitPattern: q8[1 * 32]) == UInt32(7 * 4) | UInt32(7 * 5) << 8 | UInt32(7 * 6) << 16 | UInt32(7 * 7) << 24)
    }

    @Test func gptqThreeBitValuesStraddleWords() throws {
        // Only input 10 (bits 30…32 of the stream) and input 21 (bits 63…65) are non-zero.
        let m = try matrix(bits: 3, code: { o, i in o == 0 && (i == 10 || i == 21) ? 0b111 : 0 }, zero: { _ in 0 })
        let q = HFQuantizedPacking.gptqQWeight(m)  // [3, 32]
        #expect(UInt32(bitPattern: q[0 * 32]) == 0xC000_0000)  // bits 30, 31
        #expect(UInt32(bitPattern: q[1 * 32]) == 0x8000_0001)  // bit 32 (word 1 bit 0) and bit 63
        #expect(UInt32(bitPattern: q[2 * 32]) == 0x0000_0003)  // bits 64, 65
        // Input 11 starts at stream bit 33: word 1, bits 1…3.
        let m11 = try matrix(bits: 3, code: { o, i in o == 0 && i == 11 ? 0b101 : 0 }, zero: { _ in 0 })
        #expect(UInt32(bitPattern: HFQuantizedPacking.gptqQWeight(m11)[32]) == 0b1010)
    }

    @Test func awqWordsFollowTheInterleavedOrder() throws {
        // Output column c of input 0 has code c % 8 + 1; AWQ puts column order[k] in nibble k.
        var codes = [UInt8](repeating: 0, count: 8 * 2)
        for o in 0..<8 { codes[o * 2] = UInt8(o + 1) }
        let m = try GroupQuantizedMatrix(rows: 8, columns: 2, bits: 4, groupSize: 2, codes: codes,
                                         scales: Array(repeating: 1, count: 8), zeroPoints: (0..<8).map { Int32(8 - $0) },
                                         symmetric: false)
        let q = HFQuantizedPacking.awqQWeight(m)  // [2, 1]
        // Nibbles (low → high) hold columns 0,2,4,6,1,3,5,7 → codes 1,3,5,7,2,4,6,8.
        #expect(UInt32(bitPattern: q[0]) == 0x8642_7531)
        #expect(q[1] == 0)
        // Zeros 8,7,6,5,4,3,2,1 by column → nibbles 8,6,4,2,7,5,3,1.
        #expect(UInt32(bitPattern: HFQuantizedPacking.awqQZeros(m)[0]) == 0x1357_2468)
        let back = HFQuantizedPacking.awqUnpackTransposed(q, n: 2, m: 8)
        #expect(back.map { UInt8($0) } == codes)
    }

    @Test(arguments: [2, 3, 4, 8])
    func gptqPackingRoundTrips(bits: Int) throws {
        var rng = HFQuantizedRandom(state: UInt64(bits))
        let m = try rng.matrix(rows: 64, columns: 96, bits: bits, groupSize: 32, actOrder: true)
        let q = HFQuantizedPacking.gptqQWeight(m)
        #expect(q.count == 96 / 32 * bits * 64)
        #expect(HFQuantizedPacking.gptqCodes(q, rows: 64, columns: 96, bits: bits) == m.codes)
        for offset: Int32 in [0, 1] {
            let z = HFQuantizedPacking.gptqQZeros(m, offset: offset)
            let stored = HFQuantizedPacking.gptqStoredZeros(z, rows: 64, groups: 3, bits: bits)
            let mask = Int32((1 << bits) - 1)
            #expect(stored == m.zeroPoints.map { ($0 - offset) & mask })
        }
    }
}
