import Testing
import Tensors
@testable import Quantization

extension QuantizeTests {
    /// dequantize(quantize(x)) on real weights, compared with llama.cpp itself.
    ///
    /// Inputs (from scripts/fixtures/quantize.py): SmolLM2's blk.0.ffn_down.weight (576 × 1536,
    /// already Q4_1 in the checkpoint, dequantized) and all-MiniLM-L6-v2's
    /// encoder.layer.0.output.dense.weight (384 × 1536, genuine f32), with a log-normal
    /// per-column importance vector standing in for an imatrix.
    @Suite struct RoundTrip {
        struct Measured {
            let rmse: Double
            /// Σ importance[column] · (x − x̂)².
            let weightedError: Double
            /// FNV-1a 64 of the quantized bytes.
            let fnv: UInt64
            init(_ rmse: Double, _ weightedError: Double, _ fnv: UInt64) {
                self.rmse = rmse; self.weightedError = weightedError; self.fnv = fnv
            }
        }

        /// llama.cpp's numbers on the same inputs, measured with a throwaway C harness linking
        /// ggml/src/ggml-quants.c (ggml-org/ggml d99724f, synced from llama.cpp; gcc 12 -O2,
        /// x86-64 baseline, so no fused multiply-add) that called quantize_<type>(src, dst, rows,
        /// 1536, imatrix) — NULL (which runs quantize_row_<type>_ref) or the importance vector
        /// — then dequantize_row_<type>, and computed the RMSE and weighted error in double.
        /// Q8_K, which ggml_quantize_chunk does not offer, is quantize_row_q8_K_ref; it and
        /// Q8_0 ignore the imatrix.
        static let llamaCpp: [String: [DType: (plain: Measured, imatrix: Measured)]] = [
            "ffn_down": [
                .q2_K: (plain: .init(0.0592175, 8954.4, 0x2dd8_5e65_768a_9373), imatrix: .init(0.0584262, 4322.64, 0x746a_d3d2_91fd_29df)),
                .q3_K: (plain: .init(0.029921, 2275.51, 0x1f64_149c_265e_f4cb), imatrix: .init(0.0307492, 1568.59, 0x6729_3adf_1138_c5cd)),
                .q4_K: (plain: .init(0.00359338, 32.8934, 0x1dde_5b59_9bde_0977), imatrix: .init(0.00312319, 23.4948, 0xa981_7bd5_3f28_48c3)),
                .q5_K: (plain: .init(0.00376817, 36.192, 0x9d2e_3563_e78e_49f0), imatrix: .init(0.0031181, 23.4123, 0x3148_af13_9016_463b)),
                .q6_K: (plain: .init(0.00347496, 30.8098, 0xe4ba_66d1_2565_2c11), imatrix: .init(0.00361236, 21.7828, 0xdc94_b66b_c50d_e502)),
                .q8_K: (plain: .init(0.00145904, 5.41128, 0x8d4a_5558_0505_83a7), imatrix: .init(0.00145904, 5.41128, 0x8d4a_5558_0505_83a7)),
                .iq4_nl: (plain: .init(0.0146583, 544.443, 0x385d_5238_c4e8_9cad), imatrix: .init(0.0144327, 356.223, 0x0053_43d2_b117_2ffa)),
                .iq4_xs: (plain: .init(0.0148058, 554.803, 0x0396_a52e_cb6b_1900), imatrix: .init(0.0145577, 369.12, 0x38fc_13a0_71af_2bf0)),
                .q4_0: (plain: .init(0.0169068, 723.867, 0x7d37_865f_6ef3_27d7), imatrix: .init(0.0159044, 472.283, 0x78c9_91d6_5621_c089)),
                .q4_1: (plain: .init(0, 0, 0x19d5_3849_8bf8_45a4), imatrix: .init(0, 0, 0x19d5_3849_8bf8_45a4)),
                .q5_0: (plain: .init(0.00857009, 186.272, 0xd0f0_602b_7389_d54f), imatrix: .init(0.00802058, 122.134, 0xbfb0_fc83_9aaa_95e3)),
                .q5_1: (plain: .init(0.00898397, 206.321, 0x9347_3fe6_0dd2_213a), imatrix: .init(0, 0, 0x704a_63a2_1ab2_0b86)),
                .q8_0: (plain: .init(0.00107474, 2.92195, 0x8910_4af1_d073_b5c6), imatrix: .init(0.00107474, 2.92195, 0x8910_4af1_d073_b5c6)),
            ],
            "minilm_output": [
                .q2_K: (plain: .init(0.0136764, 316.799, 0xccbb_2558_6010_0108), imatrix: .init(0.0135437, 155.15, 0xd65e_66e8_68ca_2857)),
                .q3_K: (plain: .init(0.00706369, 83.684, 0xd6b0_2928_1345_385e), imatrix: .init(0.00727097, 57.8164, 0xb4ab_1788_3771_67e4)),
                .q4_K: (plain: .init(0.00333513, 18.8919, 0x44ec_0f70_64e4_a97b), imatrix: .init(0.00356277, 12.6967, 0xc88a_f534_c96b_8023)),
                .q5_K: (plain: .init(0.00169159, 4.82548, 0x355a_4e18_5d17_0f8e), imatrix: .init(0.00175416, 3.44339, 0x282d_0358_d45d_c6df)),
                .q6_K: (plain: .init(0.000853488, 1.22289, 0x0b98_80f5_04c1_427e), imatrix: .init(0.000904324, 0.905721, 0x5c3a_60fe_36b3_aef2)),
                .q8_K: (plain: .init(0.000506705, 0.415893, 0x9577_12b5_0731_4861), imatrix: .init(0.000506705, 0.415893, 0x9577_12b5_0731_4861)),
                .iq4_nl: (plain: .init(0.0035891, 21.7659, 0x0405_38df_20d7_f0d3), imatrix: .init(0.00372915, 16.009, 0xdeff_7f31_ddc7_31fa)),
                .iq4_xs: (plain: .init(0.00365136, 22.3912, 0x7c76_debf_be38_276a), imatrix: .init(0.00378192, 16.7692, 0x09a5_796f_8713_b786)),
                .q4_0: (plain: .init(0.00414087, 28.9391, 0x8832_28b6_08f1_6dc6), imatrix: .init(0.00415066, 21.4723, 0x040b_c9ba_06ac_1c83)),
                .q4_1: (plain: .init(0.00365621, 22.7402, 0xf3f0_4cf4_017e_f3db), imatrix: .init(0.00354061, 12.1385, 0xc729_4be6_535e_11c6)),
                .q5_0: (plain: .init(0.0020643, 7.26577, 0x5404_9068_2c48_1192), imatrix: .init(0.00206848, 5.37684, 0x4f66_3408_87bd_1354)),
                .q5_1: (plain: .init(0.00180011, 5.39423, 0x494b_95c0_b29d_79cf), imatrix: .init(0.00170998, 2.86083, 0xe5ec_0cd2_ce8e_1ef1)),
                .q8_0: (plain: .init(0.000281216, 0.128735, 0x4968_c6ea_00cd_1df9), imatrix: .init(0.000281216, 0.128735, 0x4968_c6ea_00cd_1df9)),
            ],
        ]

        /// Upper bounds on RMSE ÷ the tensor's RMS (ffn_down 0.194, MiniLM 0.0453) without
        /// importance, for both inputs: what each type must at least achieve.
        static let relativeBounds: [DType: Double] = [
            .q2_K: 0.31, .q3_K: 0.16, .q4_K: 0.075, .q5_K: 0.038, .q6_K: 0.019, .q8_K: 0.012,
            .iq4_nl: 0.08, .iq4_xs: 0.081,
        ]

        static let types: [DType] = [.q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_K, .iq4_nl, .iq4_xs,
                                     .q4_0, .q4_1, .q5_0, .q5_1, .q8_0]
        static let kAndIQ4: [DType] = [.q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_nl, .iq4_xs]

        /// Quantizes and decodes `x`; returns the measurements.
        static func measure(_ type: DType, _ x: [Float], importance: [Float]?, weights: [Float]) throws -> Measured {
            let bytes = try Codecs.quantize(type, x, rowLength: 1536, importance: importance)
            let y = try bytes.withUnsafeBytes { try Codecs.dequantize(type, bytes: $0, count: x.count) }
            var se = 0.0, we = 0.0
            for i in x.indices {
                let d = Double(x[i]) - Double(y[i])
                se += d * d
                we += Double(weights[i % 1536]) * d * d
            }
            return Measured((se / Double(x.count)).squareRoot(), we, fnv1a64(bytes))
        }

        @Test func matchesLlamaCpp() throws {
            let (inputs, importance) = try QuantizeFixtures.roundTrip()
            for (input, x) in inputs {
                let reference = try #require(Self.llamaCpp[input.name])
                var rms = 0.0
                for v in x { rms += Double(v) * Double(v) }
                rms = (rms / Double(x.count)).squareRoot()
                for type in Self.types {
                    let llama = try #require(reference[type])
                    for (imp, want) in [(nil, llama.plain), (importance, llama.imatrix)] as [([Float]?, Measured)] {
                        let label = "\(type.rawValue) on \(input.name)\(imp == nil ? "" : " with importance")"
                        let got = try Self.measure(type, x, importance: imp, weights: importance)
                        #expect(got.rmse <= want.rmse * 1.01 + 1e-12,
                                "\(label): RMSE \(got.rmse) vs llama.cpp \(want.rmse)")
                        // Stronger: the very bytes llama.cpp writes.
                        #expect(got.fnv == want.fnv, "\(label): bytes differ from llama.cpp's")
                        if imp == nil, let bound = Self.relativeBounds[type] {
                            #expect(got.rmse / rms <= bound, "\(label): relative RMSE \(got.rmse / rms) > \(bound)")
                        }
                    }
                }
            }
        }

        /// More bits, less error. Checked on MiniLM's genuine f32 weights; on SmolLM2's, which
        /// were Q4_1 already (blocks of 32 on a 16-level grid), the 4-, 5- and 6-bit k-quants
        /// all sit at the floor their 6-bit sub-scales leave (llama.cpp measures Q5_K 0.00377 >
        /// Q4_K 0.00359 > Q6_K 0.00347 there), so only the coarse order holds.
        @Test func errorFallsWithBits() throws {
            let (inputs, importance) = try QuantizeFixtures.roundTrip()
            for (input, x) in inputs {
                var rmse: [DType: Double] = [:]
                for type: DType in [.q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_0] {
                    rmse[type] = try Self.measure(type, x, importance: nil, weights: importance).rmse
                }
                let r = { rmse[$0]! }
                if input.name == "minilm_output" {
                    #expect(r(.q2_K) > r(.q3_K) && r(.q3_K) > r(.q4_K) && r(.q4_K) > r(.q5_K)
                            && r(.q5_K) > r(.q6_K) && r(.q6_K) > r(.q8_0), "\(input.name): \(rmse)")
                } else {
                    let mid = [r(.q4_K), r(.q5_K), r(.q6_K)]
                    #expect(r(.q2_K) > r(.q3_K) && r(.q3_K) > mid.max()! && mid.min()! > r(.q8_0),
                            "\(input.name): \(rmse)")
                }
            }
        }

        /// Importance steers the error to where it is cheap: the importance-weighted error is
        /// lower with the importance vector than without, for every type that uses it.
        @Test(arguments: kAndIQ4 + [.q4_0, .q4_1, .q5_0, .q5_1])
        func importanceLowersWeightedError(_ type: DType) throws {
            let (inputs, importance) = try QuantizeFixtures.roundTrip()
            for (input, x) in inputs {
                let plain = try Self.measure(type, x, importance: nil, weights: importance)
                let weighted = try Self.measure(type, x, importance: importance, weights: importance)
                if type == .q4_1 && input.name == "ffn_down" {
                    // Q4_1 weights re-quantized to Q4_1: both ways exact.
                    #expect(plain.weightedError == 0 && weighted.weightedError == 0)
                    continue
                }
                #expect(weighted.weightedError < plain.weightedError,
                        "\(type.rawValue) on \(input.name): \(weighted.weightedError) with importance, \(plain.weightedError) without")
            }
        }
    }
}
