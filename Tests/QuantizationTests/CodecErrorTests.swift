import Testing
import Tensors
@testable import Quantization

@Suite struct CodecErrorTests {
    @Test func supportedTypes() {
        for t in Codecs.dequantizableTypes {
            #expect(Codecs.canDequantize(t), "\(t.rawValue)")
        }
        for t in [DType.iq2_xxs, .iq2_xs, .iq3_xxs, .iq3_s, .iq2_s, .iq1_s, .iq1_m, .i8, .f64, .f8_e4m3] {
            #expect(!Codecs.canDequantize(t), "\(t.rawValue)")
        }
    }

    @Test func unsupportedTypeThrows() {
        let bytes = [UInt8](repeating: 0, count: DType.iq2_xxs.bytesPerBlock)
        #expect(throws: CodecError.unsupportedType(.iq2_xxs)) {
            _ = try bytes.withUnsafeBytes { try Codecs.dequantize(.iq2_xxs, bytes: $0, count: 256) }
        }
    }

    @Test func countNotWholeBlocksThrows() {
        let bytes = [UInt8](repeating: 0, count: 18)
        #expect(throws: CodecError.invalidCount(.q4_0, count: 33)) {
            _ = try bytes.withUnsafeBytes { try Codecs.dequantize(.q4_0, bytes: $0, count: 33) }
        }
        #expect(throws: CodecError.invalidCount(.q4_0, count: -32)) {
            _ = try bytes.withUnsafeBytes { try Codecs.dequantize(.q4_0, bytes: $0, count: -32) }
        }
        // A count whose byte size overflows Int.
        let huge = Int.max / 256 * 256
        #expect(throws: CodecError.invalidCount(.q8_K, count: huge)) {
            _ = try bytes.withUnsafeBytes { try Codecs.dequantize(.q8_K, bytes: $0, count: huge) }
        }
    }

    @Test(arguments: [17, 19, 0, 36])
    func wrongByteCountThrows(_ size: Int) {
        let bytes = [UInt8](repeating: 0, count: size)
        var out = [Float](repeating: 42, count: 32)
        #expect(throws: CodecError.byteCountMismatch(.q4_0, count: 32, expected: 18, actual: size)) {
            try bytes.withUnsafeBytes { src in
                try out.withUnsafeMutableBufferPointer {
                    try Codecs.dequantize(.q4_0, from: src, count: 32, into: $0.baseAddress!)
                }
            }
        }
        #expect(out.allSatisfy { $0 == 42 }, "destination written despite the error")
    }

    @Test func messagesAreOneLine() {
        let errors: [CodecError] = [
            .unsupportedType(.iq1_m), .invalidCount(.q6_K, count: 100),
            .byteCountMismatch(.q8_0, count: 64, expected: 68, actual: 67),
        ]
        for e in errors {
            #expect(!e.description.contains("\n"))
        }
        #expect(CodecError.byteCountMismatch(.q8_0, count: 64, expected: 68, actual: 67).description
                == "Q8_0: 64 weights need 68 bytes, got 67")
        #expect(CodecError.unsupportedType(.iq1_m).description.contains("IQ1_M"))
        #expect(CodecError.invalidCount(.q6_K, count: 100).description.contains("256"))
        #expect(CodecError.invalidCount(.q8_K, count: Int.max / 256 * 256).description.contains("too many"))
    }

    @Test func emptyInput() throws {
        let empty = try [UInt8]().withUnsafeBytes { try Codecs.dequantize(.q4_K, bytes: $0, count: 0) }
        #expect(empty.isEmpty)
    }
}
