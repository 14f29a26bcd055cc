import Foundation
import Testing
import Quantization
import Tensors

/// The corrupt-block scan must look exactly where each codec keeps its scales: a NaN written
/// at the scanned offset must also turn the decoded block non-finite.
@Suite struct BlockValidationTests {
    static let types: [DType] = [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_nl, .iq4_xs]

    static func sample(_ n: Int) -> [Float] { (0..<n).map { Float(sin(Double($0) * 0.37) * 2 + cos(Double($0) * 1.3)) } }

    @Test(arguments: types)
    func cleanBlocksPassAndEachScaleFieldIsFound(_ type: DType) throws {
        let n = 1024
        let bytes = try Codecs.quantize(type, Self.sample(n), rowLength: n)
        #expect(bytes.withUnsafeBytes { Codecs.firstCorruptBlock(type, bytes: $0, count: n) } == nil)
        let decoded = try bytes.withUnsafeBytes { try Codecs.dequantize(type, bytes: $0, count: n) }
        #expect(decoded.allSatisfy { $0.isFinite })

        let size = type.bytesPerBlock, blocks = n / type.blockSize
        let block = blocks - 1
        // Try every byte pair of the last block: the scan must flag exactly the scale fields.
        var flagged: [String] = []
        for offset in stride(from: 0, to: size - 1, by: 2) {
            var patched = bytes
            patched[block * size + offset] = 0x00
            patched[block * size + offset + 1] = 0x7E  // f16 NaN
            let found = patched.withUnsafeBytes { Codecs.firstCorruptBlock(type, bytes: $0, count: n) }
            if let found {
                #expect(found.block == block && found.type == type)
                flagged.append(found.field)
                let out = try patched.withUnsafeBytes { try Codecs.dequantize(type, bytes: $0, count: n) }
                let inBlock = out[(block * type.blockSize)..<((block + 1) * type.blockSize)]
                #expect(inBlock.contains { !$0.isFinite }, "offset \(offset) is not a scale of \(type)")
            }
        }
        let expected = [DType.q4_1, .q5_1, .q2_K, .q4_K, .q5_K].contains(type) ? ["d", "dmin"] : ["d"]
        #expect(flagged == expected)
    }

    @Test func floatTensorsAreScannedElementByElement() {
        var values: [Float] = [1, 2, 3, 4]
        #expect(values.withUnsafeBytes { Codecs.firstCorruptBlock(.f32, bytes: $0, count: 4) } == nil)
        values[2] = -.infinity
        let bad = values.withUnsafeBytes { Codecs.firstCorruptBlock(.f32, bytes: $0, count: 4) }
        #expect(bad?.block == 2 && bad?.field == "value")
        let halves: [UInt16] = [0x3C00, 0x7C01]  // 1.0, NaN
        #expect(halves.withUnsafeBytes { Codecs.firstCorruptBlock(.f16, bytes: $0, count: 2) }?.block == 1)
        let bf: [UInt16] = [0x7F80, 0x3F80]  // +inf, 1.0
        #expect(bf.withUnsafeBytes { Codecs.firstCorruptBlock(.bf16, bytes: $0, count: 2) }?.block == 0)
    }
}
