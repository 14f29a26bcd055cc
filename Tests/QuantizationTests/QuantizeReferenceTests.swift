import Testing
import Tensors
@testable import Quantization

extension QuantizeTests {
    /// Quantization compared with the `gguf` Python package's `gguf.quants.quantize` (which
    /// mirrors ggml's reference encoders), byte for byte, on random and real rows.
    @Suite struct Reference {
        static let types: [DType] = [.f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0]

        @Test(arguments: types)
        func matchesGGUF(_ type: DType) throws {
            let idx = try QuantizeFixtures.index()
            let refs = idx.references.filter { $0.type == type.rawValue }
            #expect(refs.count == idx.inputs.count,
                    "\(type.rawValue): fixtures incomplete: rerun python3 scripts/fixtures/quantize.py")
            for ref in refs {
                let input = try #require(idx.inputs.first { $0.name == ref.input })
                let x = try QuantizeFixtures.floats("\(input.name).f32")
                #expect(x.count == input.rows * input.rowLength)
                let want = [UInt8](try QuantizeFixtures.data("\(input.name).\(type.rawValue).bin"))

                let got = try Codecs.quantize(type, x, rowLength: input.rowLength)
                let diff = byteMismatches(got, want, blockBytes: type.bytesPerBlock)
                #expect(diff.count == 0, "\(type.rawValue) on \(input.name) (\(input.source)): \(diff.detail)")

                // The pointer entry point, on the calling thread, gives the same bytes.
                var viaPointer = [UInt8](repeating: 0xAA, count: want.count)
                try x.withUnsafeBufferPointer { src in
                    try viaPointer.withUnsafeMutableBytes { dst in
                        try Codecs.quantize(type, from: src.baseAddress!, count: x.count, into: dst.baseAddress!,
                                            rowLength: input.rowLength)
                    }
                }
                #expect(viaPointer == want, "\(type.rawValue) on \(input.name) via the pointer API")
            }
        }

        /// The edge rows of the random input, one by one, so a failure names the row.
        @Test(arguments: [DType.q4_0, .q4_1, .q5_0, .q5_1, .q8_0])
        func edgeRows(_ type: DType) throws {
            let idx = try QuantizeFixtures.index()
            let input = try #require(idx.inputs.first { $0.name == "random" })
            let x = try QuantizeFixtures.floats("random.f32")
            let want = [UInt8](try QuantizeFixtures.data("random.\(type.rawValue).bin"))
            let rowBytes = input.rowLength / type.blockSize * type.bytesPerBlock
            for r in 0..<11 {
                let row = Array(x[r * input.rowLength..<(r + 1) * input.rowLength])
                let got = try Codecs.quantize(type, row)
                #expect(got == Array(want[r * rowBytes..<(r + 1) * rowBytes]), "\(type.rawValue): edge row \(r)")
            }
        }
    }
}

/// Blocks whose bytes differ, with the first few described.
func byteMismatches(_ got: [UInt8], _ want: [UInt8], blockBytes: Int, limit: Int = 4) -> (count: Int, detail: String) {
    guard got.count == want.count else { return (1, "lengths \(got.count) vs \(want.count)") }
    var count = 0, detail: [String] = []
    for b in 0..<got.count / blockBytes {
        let range = b * blockBytes..<(b + 1) * blockBytes
        if got[range] != want[range] {
            count += 1
            if detail.count < limit { detail.append("block \(b): \(Array(got[range])) vs \(Array(want[range]))") }
        }
    }
    return (count, count == 0 ? "" : "\(count) blocks differ; " + detail.joined(separator: "; "))
}
