import Testing
import Tensors
@testable import Quantization

extension QuantizeTests {
    /// Argument checking and the entry points' agreement with each other.
    @Suite struct Errors {
        @Test func supportedTypes() {
            for t in Codecs.quantizableTypes {
                #expect(Codecs.canQuantize(t), "\(t.rawValue)")
                #expect(Codecs.canDequantize(t), "\(t.rawValue): quantizable but not decodable")
            }
            for t in [DType.q8_1, .tq1_0, .tq2_0, .mxfp4, .iq2_xxs, .iq3_s, .iq1_m, .i8, .f64] {
                #expect(!Codecs.canQuantize(t), "\(t.rawValue)")
            }
        }

        @Test func unsupportedTypeThrows() {
            #expect(throws: CodecError.unsupportedQuantization(.tq1_0)) {
                _ = try Codecs.quantize(.tq1_0, [Float](repeating: 1, count: 256))
            }
            #expect(throws: CodecError.unsupportedQuantization(.i8)) {
                _ = try Codecs.quantize(.i8, [Float](repeating: 1, count: 4))
            }
        }

        @Test func countNotWholeBlocksThrows() {
            #expect(throws: CodecError.invalidCount(.q4_K, count: 300)) {
                _ = try Codecs.quantize(.q4_K, [Float](repeating: 1, count: 300))
            }
            #expect(throws: CodecError.invalidCount(.q8_0, count: 33)) {
                _ = try Codecs.quantize(.q8_0, [Float](repeating: 1, count: 33), rowLength: 33)
            }
            var out = [UInt8](repeating: 7, count: 64)
            let src = [Float](repeating: 1, count: 64)
            #expect(throws: CodecError.invalidCount(.q4_0, count: -32)) {
                try src.withUnsafeBufferPointer { s in
                    try out.withUnsafeMutableBytes {
                        try Codecs.quantize(.q4_0, from: s.baseAddress!, count: -32, into: $0.baseAddress!)
                    }
                }
            }
            #expect(out.allSatisfy { $0 == 7 }, "destination written despite the error")
        }

        @Test(arguments: [(512, 100), (512, 384), (768, 512), (512, 0), (512, -256), (256, 128)])
        func badRowLengthThrows(_ count: Int, _ rowLength: Int) {
            #expect(throws: CodecError.invalidRowLength(.q6_K, rowLength: rowLength, count: count)) {
                _ = try Codecs.quantize(.q6_K, [Float](repeating: 1, count: count), rowLength: rowLength)
            }
        }

        @Test func importanceOfWrongLengthThrows() {
            let x = [Float](repeating: 0.5, count: 1024)
            #expect(throws: CodecError.importanceCountMismatch(expected: 512, actual: 256)) {
                _ = try Codecs.quantize(.q4_K, x, rowLength: 512, importance: [Float](repeating: 1, count: 256))
            }
            #expect(throws: CodecError.importanceCountMismatch(expected: 1024, actual: 512)) {
                _ = try Codecs.quantize(.iq4_xs, x, importance: [Float](repeating: 1, count: 512))
            }
        }

        @Test func messagesAreOneLine() {
            let errors: [CodecError] = [
                .unsupportedQuantization(.tq1_0), .invalidRowLength(.q4_K, rowLength: 100, count: 512),
                .importanceCountMismatch(expected: 1536, actual: 576),
            ]
            for e in errors {
                #expect(!e.description.contains("\n"))
            }
            #expect(CodecError.unsupportedQuantization(.tq1_0).description == "no quantizer for TQ1_0")
            #expect(CodecError.invalidRowLength(.q4_K, rowLength: 100, count: 512).description.contains("256"))
            #expect(CodecError.importanceCountMismatch(expected: 1536, actual: 576).description.contains("1536"))
        }

        @Test func emptyInput() throws {
            for t in Codecs.quantizableTypes {
                #expect(try Codecs.quantize(t, []).isEmpty)
            }
        }

        /// The array entry point splits the work over threads (by blocks, or by rows with
        /// importance); the pointer one runs on the calling thread. Same bytes either way.
        @Test(arguments: Codecs.quantizableTypes)
        func threadedMatchesSerial(_ type: DType) throws {
            var g = SplitMix64(seed: 11)
            let rowLength = 1024, rows = 80  // > parallelThreshold weights, rows not a multiple of 3
            let x = (0..<rows * rowLength).map { _ in Float(Double(g.next() % 20001) / 10000 - 1) }
            let importance = (0..<rowLength).map { _ in Float(Double(g.next() % 1000) / 100 + 0.01) }
            #expect(x.count > Codecs.parallelThreshold)
            let bytes = try #require(type.byteCount(elements: x.count))
            for imp in [nil, importance] {
                let threaded = try Codecs.quantize(type, x, rowLength: rowLength, importance: imp, threads: 3)
                var serial = [UInt8](repeating: 0, count: bytes)
                try x.withUnsafeBufferPointer { s in
                    try serial.withUnsafeMutableBytes { d in
                        try (imp ?? []).withUnsafeBufferPointer { q in
                            try Codecs.quantize(type, from: s.baseAddress!, count: x.count, into: d.baseAddress!,
                                                importance: imp == nil ? nil : q.baseAddress!, rowLength: rowLength)
                        }
                    }
                }
                #expect(threaded == serial, "\(type.rawValue)\(imp == nil ? "" : " with importance")")
            }
        }

        /// Zeros, constants, NaN and infinities neither trap nor hang, and all-zero input
        /// decodes to zeros.
        @Test(arguments: Codecs.quantizableTypes)
        func degenerateInputs(_ type: DType) throws {
            let zeros = [Float](repeating: 0, count: 512)
            let bytes = try Codecs.quantize(type, zeros, importance: [Float](repeating: 1, count: 512))
            let back = try bytes.withUnsafeBytes { try Codecs.dequantize(type, bytes: $0, count: 512) }
            #expect(back.allSatisfy { $0 == 0 }, "\(type.rawValue): zeros")
            var hostile = [Float](repeating: 3, count: 512)
            hostile[5] = .nan; hostile[300] = .infinity; hostile[301] = -.infinity
            hostile[400] = .greatestFiniteMagnitude; hostile[401] = -.leastNonzeroMagnitude
            _ = try Codecs.quantize(type, hostile)
            _ = try Codecs.quantize(type, hostile, importance: [Float](repeating: 1, count: 512))
        }
    }
}
