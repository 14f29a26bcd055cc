import Testing
@testable import Quantization

/// `QuantScheme`: the short strings parse to the intended parts, print back unchanged, and
/// invalid ones are refused with a message that lists what is valid.
@Suite struct ToolkitSchemeTests {
    static let canonical = [
        "int4-asym-g128", "int4-sym-g128", "int3-asym-g128", "int8-sym-channel", "int4-sym-channel",
        "int8-sym-tensor", "nf4-b64-dq", "nf4-b64", "fp4-b64", "kmeans4-channel", "fp8e4m3-channel",
        "fp8e5m2-tensor", "w8a8-dynamic", "w8a8-static", "int4-asym-g128-f16", "nf4-b64-bf16",
        "w8a8-dynamic-f16", "int2-asym-g32", "int5-sym-g1", "int4-sym-g65536", "kmeans3-g64",
        "fp8e4m3-g32-bf16", "int4-sym-g128-a8-dynamic", "fp4-b32-dq",
    ]

    @Test(arguments: canonical)
    func printsBack(_ text: String) throws {
        let scheme = try QuantScheme(parsing: text)
        #expect(scheme.description == text)
        #expect(try QuantScheme(parsing: scheme.description) == scheme)
    }

    @Test func partsAreTheIntendedOnes() throws {
        #expect(try QuantScheme(parsing: "int4-asym-g128")
            == QuantScheme(codebook: .integer(bits: 4, symmetric: false), granularity: .group(128)))
        #expect(try QuantScheme(parsing: "nf4-b64-dq")
            == QuantScheme(codebook: .nf4, granularity: .group(64), doubleQuant: true))
        #expect(try QuantScheme(parsing: "w8a8-dynamic")
            == QuantScheme(codebook: .integer(bits: 8, symmetric: true), granularity: .channel, activations: .dynamic))
        #expect(try QuantScheme(parsing: "w8a8-static").activations == .static)
        #expect(try QuantScheme(parsing: "fp8e5m2-tensor") == QuantScheme(codebook: .fp8E5M2, granularity: .tensor))
        #expect(try QuantScheme(parsing: "kmeans4-channel") == QuantScheme(codebook: .kmeans(bits: 4), granularity: .channel))
        #expect(try QuantScheme(parsing: "int8-sym-channel-f16").scaleType == .f16)
    }

    @Test func aliasesParseToCanonicalForms() throws {
        #expect(try QuantScheme(parsing: "INT4-ASYM-G128").description == "int4-asym-g128")
        #expect(try QuantScheme(parsing: "nf4-g64").description == "nf4-b64")
        #expect(try QuantScheme(parsing: "int4-sym-b32").description == "int4-sym-g32")
        #expect(try QuantScheme(parsing: "int8-sym-channel-a8-dynamic").description == "w8a8-dynamic")
        #expect(try QuantScheme(parsing: "int8-sym-channel-f32").description == "int8-sym-channel")
    }

    @Test(arguments: [
        ("int9-sym-g128", "integer bits must be 2-8, got 9"),
        ("int1-asym-g128", "integer bits must be 2-8, got 1"),
        ("int4-asym-g0", "group size must be 1-65536, got 0"),
        ("int4-asym-g65537", "group size must be 1-65536, got 65537"),
        ("nf3-b64", "unknown codebook 'nf3'"),
        ("q4-sym-g128", "unknown codebook 'q4'"),
        ("int4-g128", "integer schemes need -sym or -asym"),
        ("int4-sym", "missing granularity"),
        ("int4-sym-row", "unknown granularity 'row'"),
        ("int4-sym-g128-extra", "unexpected 'extra'"),
        ("int-sym-g128", "needs a bit width"),
        ("int4-sym-g128-dq", "-dq (double quantization) applies to nf4 and fp4 only"),
        ("nf4-channel-dq", "-dq needs block granularity"),
        ("nf4-b64-dq-f16", "-dq stores its own 8-bit scales"),
        ("w8a8", "w8a8 needs -dynamic or -static"),
        ("w8a8-lazy", "w8a8 needs -dynamic or -static, got 'lazy'"),
        ("kmeans9-channel", "k-means bits must be 2-8, got 9"),
        ("", "empty"),
    ])
    func refusesInvalid(_ text: String, _ why: String) {
        do {
            let s = try QuantScheme(parsing: text)
            Issue.record("'\(text)' parsed as \(s)")
        } catch {
            #expect(error.message.contains(why), "\(error.message)")
            #expect(error.message.contains("'\(text)'"))
            // The message lists what is valid, with examples.
            for word in ["int<2-8>-<sym|asym>", "nf4-b<N>[-dq]", "kmeans<2-8>", "fp8e4m3", "w8a8-<dynamic|static>",
                         "1-65536", "-f16", "examples: int4-asym-g128"] {
                #expect(error.message.contains(word), "missing \(word)")
            }
        }
    }

    @Test func validateCatchesMemberwiseMistakes() {
        #expect(throws: QuantSchemeError.self) {
            try QuantScheme(codebook: .integer(bits: 9, symmetric: true), granularity: .channel).validate()
        }
        #expect(throws: QuantSchemeError.self) {
            try QuantScheme(codebook: .nf4, granularity: .group(0)).validate()
        }
        #expect(throws: Never.self) {
            try QuantScheme(codebook: .fp4, granularity: .group(64), doubleQuant: true).validate()
        }
    }

    @Test func granularityGroups() {
        #expect(QuantScheme.Granularity.group(128).groupsPerRow(columns: 576) == 5)
        #expect(QuantScheme.Granularity.group(128).groupLength(columns: 576) == 128)
        #expect(QuantScheme.Granularity.group(1024).groupsPerRow(columns: 576) == 1)
        #expect(QuantScheme.Granularity.group(1024).groupLength(columns: 576) == 576)
        #expect(QuantScheme.Granularity.channel.groupsPerRow(columns: 576) == 1)
        #expect(QuantScheme.Granularity.tensor.groupLength(columns: 576) == 576)
    }

    /// Every scheme fake-quantizes: finite output of the right size, errors ordered by bits.
    @Test func fakeQuantizeRunsEveryScheme() throws {
        let rows = 12, columns = 576
        let w = ToolkitData.gaussian(rows * columns, seed: 31, scale: 0.05)
        var error: [String: Double] = [:]
        for text in Self.canonical {
            let x = try fakeQuantize(w, rows: rows, columns: columns, scheme: QuantScheme(parsing: text))
            #expect(x.count == w.count && x.allSatisfy(\.isFinite), "\(text)")
            let e = QuantizationError(reference: w, approximation: x)
            #expect(e.sqnrDB > 5 && e.cosine > 0.9, "\(text): \(e)")
            error[text] = e.mse
        }
        #expect(error["int8-sym-channel"]! < error["int4-sym-channel"]!)
        #expect(error["int4-asym-g128"]! < error["int3-asym-g128"]!)
        #expect(error["int3-asym-g128"]! < error["int2-asym-g32"]!)
        #expect(error["fp8e4m3-channel"]! < error["int4-sym-channel"]!)
        #expect(error["nf4-b64"]! < error["int4-sym-channel"]!)
        #expect(error["int5-sym-g1"]! < 1e-15)  // one weight per group: exact up to float rounding
    }

    @Test func storedScaleRoundsUp() {
        let s: Float = 0.1  // not representable in f16 or bf16
        let f16 = QuantScheme.ScaleType.f16.stored(s), bf16 = QuantScheme.ScaleType.bf16.stored(s)
        #expect(f16 >= s && f16 == Half16.f16(f16))
        #expect(bf16 >= s && bf16 == Half16.bf16(bf16))
        #expect(f16 - s < s / 1024 && bf16 - s < s / 128)
        #expect(QuantScheme.ScaleType.f16.stored(0.5) == 0.5)
        #expect(QuantScheme.ScaleType.f16.stored(1e6) == 65504)
        #expect(QuantScheme.ScaleType.f16.stored(1e-9) == 5.9604645e-8)  // smallest subnormal
        #expect(QuantScheme.ScaleType.f32.stored(0.1) == 0.1)
        #expect(QuantScheme.ScaleType.bf16.stored(0) == 0)
    }
}

/// Round trips through the 16-bit formats, for checking representability.
enum Half16 {
    static func f16(_ x: Float) -> Float { Half.f16ToFloat(Half.floatToF16(x)) }
    static func bf16(_ x: Float) -> Float { Half.bf16ToFloat(Half.floatToBF16(x)) }
}

import Tensors
