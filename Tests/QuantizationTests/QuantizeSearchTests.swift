import Testing
@testable import Quantization

extension QuantizeTests {
    /// The eight-lane searches against their scalar references (the readable transcriptions
    /// of ggml's), bit for bit, on real weights and on degenerate groups.
    @Suite struct Searches {
        /// Groups of `n`: MiniLM rows cut into groups, plus all-zero, constant, all-positive,
        /// all-negative and single-spike groups.
        static func groups(_ n: Int) throws -> [[Float]] {
            let (inputs, _) = try QuantizeFixtures.roundTrip()
            let x = try #require(inputs.first { $0.0.name == "minilm_output" }).1
            var out = (0..<200).map { Array(x[($0 * 997 * n) % (x.count - n)..<($0 * 997 * n) % (x.count - n) + n]) }
            out.append([Float](repeating: 0, count: n))
            out.append([Float](repeating: 0.25, count: n))
            out.append([Float](repeating: -0.25, count: n))
            out.append((0..<n).map { Float($0 + 1) * 0.01 })
            out.append((0..<n).map { -Float($0 + 1) * 0.01 })
            var spike = [Float](repeating: 0, count: n)
            spike[n / 3] = 2
            out.append(spike)
            while out.count % 8 != 0 { out.append(out[out.count % 7]) }
            return out
        }

        static func weights(_ g: [Float], _ k: Int) -> [Float] {
            g.enumerated().map { i, v in Float(1 + (i * 7 + k) % 5) * (0.01 + abs(v)) }
        }

        /// Runs `lanes` on eight groups at a time, `scalar` on each; compares.
        private func compare(
            n: Int, weights: ([Float], Int) -> [Float] = QuantizeTests.Searches.weights,
            lanes: (UnsafePointer<Lanes>, UnsafePointer<Lanes>, UnsafeMutablePointer<Lanes>, UnsafeMutablePointer<Lanes>) -> (Lanes, Lanes),
            scalar: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> (Float, Float)
        ) throws {
            let groups = try Self.groups(n)
            var mismatches: [String] = []
            for b in stride(from: 0, to: groups.count, by: 8) {
                let batch = Array(groups[b..<b + 8]).joined().map { $0 }
                let w = (0..<8).flatMap { weights(groups[b + $0], b + $0) }
                var vx = [Lanes](repeating: .zero, count: n), vw = vx, vL = vx, vaux = vx
                batch.withUnsafeBufferPointer { loadLanes($0.baseAddress!, stride: n, lanes: 8, n: n, into: &vx) }
                w.withUnsafeBufferPointer { loadLanes($0.baseAddress!, stride: n, lanes: 8, n: n, into: &vw) }
                let (a, c) = lanes(vx, vw, &vL, &vaux)
                for g in 0..<8 {
                    var L = [Float](repeating: -1, count: n)
                    let (sa, sc) = batch.withUnsafeBufferPointer { xb in
                        w.withUnsafeBufferPointer { wb in scalar(xb.baseAddress! + n * g, wb.baseAddress! + n * g, &L) }
                    }
                    let laneL = L.allSatisfy({ $0 == 0 }) ? L : (0..<n).map { vL[$0][g] }
                    if sa.bitPattern != a[g].bitPattern || sc.bitPattern != c[g].bitPattern || L != laneL {
                        mismatches.append("group \(b + g): (\(sa), \(sc)) vs lanes (\(a[g]), \(c[g])); L \(L) vs \(laneL)")
                    }
                }
            }
            #expect(mismatches.isEmpty, "\(mismatches.count) groups differ: \(mismatches.prefix(2))")
        }

        @Test(arguments: [(16, 3, -0.5, 0.1, 15, true), (16, 3, -0.9, 0.05, 36, false),
                          (32, 15, -1, 0.1, 20, false), (32, 31, -0.5, 0.1, 15, false),
                          (32, 15, -0.9, 0.05, 36, false), (32, 31, -0.9, 0.05, 36, false)] as [(Int, Int32, Float, Float, Int, Bool)])
        func withMinimum(_ n: Int, _ nmax: Int32, _ rmin: Float, _ rdelta: Float, _ steps: Int, _ mad: Bool) throws {
            try compare(n: n, lanes: { x, w, L, aux in
                let r = LaneSearch.withMinimum(n, nmax: nmax, x, weights: w, L, aux, rmin: rmin, rdelta: rdelta, steps: steps, useMAD: mad)
                return (r.scale, r.theMin)
            }, scalar: { x, w, Lf in
                var L = [UInt8](repeating: 0, count: n), aux = L
                let r = ScaleSearch.withMinimum(n, nmax: nmax, x, weights: w, &L, &aux, rmin: rmin, rdelta: rdelta, steps: steps, useMAD: mad)
                for i in 0..<n { Lf[i] = Float(L[i]) }
                return (r.scale, r.theMin)
            })
        }

        @Test(arguments: [(16, 32, false), (16, 32, true), (16, 4, true), (32, 8, true), (32, 16, true)] as [(Int, Int32, Bool)])
        func symmetric(_ n: Int, _ nmax: Int32, _ weighted: Bool) throws {
            try compare(n: n, lanes: { x, w, L, aux in
                (LaneSearch.symmetric(n, nmax: nmax, x, weights: weighted ? w : nil, L, aux), .zero)
            }, scalar: { x, w, Lf in
                var L = [Int8](repeating: 0, count: n)
                let s = ScaleSearch.symmetric(n, nmax: nmax, x, &L, weights: weighted ? w : nil)
                for i in 0..<n { Lf[i] = Float(L[i]) }
                return (s, 0)
            })
        }

        @Test(arguments: [false, true])
        func iq4Scale(_ squares: Bool) throws {
            try Codecs.iq4FloatValues.withUnsafeBufferPointer { kv in
                try compare(n: 32, weights: squares ? { g, _ in g.map { $0 * $0 } } : Self.weights, lanes: { x, w, _, _ in
                    (LaneSearch.iq4Scale(x, weights: w, kv.baseAddress!), .zero)
                }, scalar: { x, w, Lf in
                    var L = [UInt8](repeating: 0, count: 32)
                    let d = IQ4.groupScale(x, weights: w, &L, kv.baseAddress!)
                    for j in 0..<32 { Lf[j] = 0 }  // the lane search returns no indices
                    return (d, 0)
                })
            }
        }

        /// Every input to the codebook lookup maps where ggml's binary search does, NaN
        /// included: around every midpoint (where the tie-break is decided), across the range,
        /// and for tiny, huge and non-finite values.
        @Test func nearestValueMatchesBinarySearch() {
            let kv = Codecs.iq4FloatValues, mid = IQ4.laneMidpoints, steps = IQ4.laneSteps
            var probes: [Float] = [.nan, -.nan, -.infinity, .infinity, 0, -0.0, 1e-30, -1e-30,
                                   .greatestFiniteMagnitude, -.greatestFiniteMagnitude]
            for v in kv + IQ4.midpoints {
                var up = v, down = v
                for _ in 0..<2000 { probes += [up, down]; up = up.nextUp; down = down.nextDown }
            }
            var g = SplitMix64(seed: 3)
            for _ in 0..<200_000 {
                probes.append(Float(Double(g.next() % 2_800_001) / 10_000 - 140))
                probes.append(Float(bitPattern: UInt32(truncatingIfNeeded: g.next())))
            }
            var bad: [Float] = []
            kv.withUnsafeBufferPointer { kv in
                mid.withUnsafeBufferPointer { mid in
                    steps.withUnsafeBufferPointer { steps in
                        for p in probes {
                            let wantIndex = IQ4.bestIndex(p, kv.baseAddress!)
                            let want = kv[Int(wantIndex)]
                            let got = LaneSearch.nearestValue(Lanes(repeating: p), kv.baseAddress!, mid.baseAddress!,
                                                              steps.baseAddress!)[3]
                            var index = [UInt8](repeating: 99, count: 8)
                            withUnsafePointer(to: Lanes(repeating: p)) {
                                $0.withMemoryRebound(to: Float.self, capacity: 8) {
                                    IQ4.nearestIndices($0, scale: 1, n: 8, into: &index)
                                }
                            }
                            if want.bitPattern != got.bitPattern || index != [UInt8](repeating: wantIndex, count: 8) {
                                bad.append(p)
                            }
                        }
                    }
                }
            }
            #expect(bad.isEmpty, "\(bad.count) of \(probes.count) differ: \(bad.prefix(5))")
        }
    }
}
