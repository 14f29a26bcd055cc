import Testing
@testable import Quantization

/// `BitPacking`: the documented little-endian layout, round trips at every width and odd
/// lengths, and refusals.
@Suite struct ToolkitPackingTests {
    @Test func knownLayouts() throws {
        #expect(try BitPacking.pack([1, 2, 3], bits: 4) == [0x21, 0x03])
        #expect(try BitPacking.pack([3, 0, 1, 2, 3], bits: 2) == [0b10_01_00_11, 0b11])
        // 3 bits: 111 | 001 | 010 → stream 111 100 010 (LSB first) → 0x8F, 0x00
        #expect(try BitPacking.pack([7, 1, 2], bits: 3) == [0x8F, 0x00])
        #expect(try BitPacking.pack([7, 1, 6], bits: 3) == [0x8F, 0x01])
        #expect(try BitPacking.pack([31, 1], bits: 5) == [0x3F, 0x00])
        #expect(try BitPacking.pack([0x2A, 0x15], bits: 6) == [0x6A, 0x05])
        #expect(try BitPacking.pack([200, 7], bits: 8) == [200, 7])
        #expect(try BitPacking.pack([], bits: 3) == [])
    }

    @Test(arguments: 1...8)
    func roundTrips(_ bits: Int) throws {
        var rng = SplitMix64(seed: UInt64(bits))
        for count in [0, 1, 2, 3, 5, 7, 8, 9, 13, 31, 33, 100, 1001, 4099] {
            let codes = (0..<count).map { _ in UInt8.random(in: 0...UInt8((1 << bits) - 1), using: &rng) }
            let packed = try BitPacking.pack(codes, bits: bits)
            #expect(packed.count == (count * bits + 7) / 8)
            #expect(try BitPacking.unpack(packed, bits: bits, count: count) == codes, "bits \(bits) count \(count)")
            // Reading fewer codes than were packed gives the prefix.
            #expect(try BitPacking.unpack(packed, bits: bits, count: count / 2) == Array(codes.prefix(count / 2)))
        }
    }

    @Test func refusals() {
        #expect(throws: BitPackingError.codeTooWide(index: 2, code: 8, bits: 3)) {
            try BitPacking.pack([1, 7, 8, 9], bits: 3)
        }
        #expect(throws: BitPackingError.unsupportedWidth(9)) { try BitPacking.pack([1], bits: 9) }
        #expect(throws: BitPackingError.unsupportedWidth(0)) { try BitPacking.unpack([1], bits: 0, count: 1) }
        #expect(throws: BitPackingError.tooFewBytes(count: 3, bits: 3, bytes: 1)) {
            try BitPacking.unpack([0xFF], bits: 3, count: 3)
        }
        #expect(throws: BitPackingError.tooFewBytes(count: -1, bits: 4, bytes: 1)) {
            try BitPacking.unpack([0xFF], bits: 4, count: -1)
        }
        #expect(BitPackingError.codeTooWide(index: 2, code: 8, bits: 3).description == "code 2 is 8, which does not fit in 3 bits")
    }

    @Test func affineCodesPackUnsigned() throws {
        let w: [Float] = [-7, 0, 7, 3.5, -2.5, 2]
        let q = quantizeAffine(w, rows: 1, columns: 6, grid: AffineGrid(bits: 4, symmetric: true), granularity: .channel)
        #expect(q.codes == [-7, 0, 7, 4, -2, 2])  // scale 1; ties to even
        let unpacked = try BitPacking.unpack(q.packedCodes(), bits: 4, count: 6)
        #expect(unpacked == [1, 8, 15, 12, 6, 10])
        let a = quantizeAffine(w, rows: 2, columns: 3, grid: AffineGrid(bits: 3, symmetric: false), granularity: .channel)
        #expect(try BitPacking.unpack(a.packedCodes(), bits: 3, count: 6).map(Int32.init) == a.codes)
    }
}
