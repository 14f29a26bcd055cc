import CKernels
import Foundation
import Models
import Tensors
import Testing

// The int8 × int8 GEMM kernels (CKernels_s8.h): every SIMD level on this CPU against the
// scalar reference bit for bit, the scalar reference against an independent Int64
// computation, the packing and the activation quantizers.

/// An int8 problem: A [m, k], W [n, k], scales, bias, packed W.
struct S8Problem {
    var m: Int, n: Int, k: Int
    var a: [Int8], w: [Int8]
    var sa: [Float], sw: [Float]
    var bias: [Float]?
    var lda: Int
    let packed: UnsafeMutableRawPointer

    init(m: Int, n: Int, k: Int, a: [Int8], w: [Int8], sa: [Float], sw: [Float], bias: [Float]?, lda: Int? = nil) {
        (self.m, self.n, self.k) = (m, n, k)
        self.lda = lda ?? k
        // Rows at stride lda, the gap filled with a value that must not matter.
        var strided = [Int8](repeating: 99, count: max(1, m * self.lda))
        for i in 0..<m { for c in 0..<k { strided[i * self.lda + c] = a[i * k + c] } }
        (self.a, self.w, self.sa, self.sw, self.bias) = (strided, w, sa, sw, bias)
        packed = .allocate(byteCount: sq_s8_packed_bytes(n, k), alignment: 64)
        sq_s8_pack(w, k, n, k, sw, bias, packed)
    }

    /// Random values in `range`, scales in 2⁻¹⁰…1, a bias half the time.
    static func random(m: Int, n: Int, k: Int, range: ClosedRange<Int8> = -127...127, rng: inout SplitMix64,
                       lda: Int? = nil) -> S8Problem {
        let a = (0..<m * k).map { _ in Int8.random(in: range, using: &rng) }
        let w = (0..<n * k).map { _ in Int8.random(in: range, using: &rng) }
        let sa = (0..<m).map { _ in Float.random(in: 0.0009...1, using: &rng) }
        let sw = (0..<n).map { _ in Float.random(in: 0.0009...1, using: &rng) }
        let bias = Bool.random(using: &rng) ? (0..<n).map { _ in Float.random(in: -4...4, using: &rng) } : nil
        return S8Problem(m: m, n: n, k: k, a: a, w: w, sa: sa, sw: sw, bias: bias, lda: lda)
    }

    func free() { packed.deallocate() }

    /// Outputs j0..<j1 at `level` into a `m × ldy` buffer pre-filled with NaN (so unwritten
    /// entries show); returns the level used and the buffer.
    func run(level: Int32, j0: Int = 0, j1: Int? = nil, ldy: Int? = nil) -> (Int32, [Float]) {
        let ldy = ldy ?? n
        var y = [Float](repeating: .nan, count: max(1, m * ldy))
        let used = sq_s8_gemm_level(level, a, lda, sa, m, packed, n, k, j0, j1 ?? n, &y, ldy)
        return (used, y)
    }

    /// Σ_k A[i, k] · W[j, k] in Int64.
    func exactSum(_ i: Int, _ j: Int) -> Int64 {
        var s: Int64 = 0
        for c in 0..<k { s += Int64(a[i * lda + c]) * Int64(w[j * k + c]) }
        return s
    }

    /// The defined output: (f32) acc · (sa · sw) + bias, each step rounded in f32.
    func expected(_ i: Int, _ j: Int) -> Float {
        Float(exactSum(i, j)) * (sa[i] * sw[j]) + (bias?[j] ?? 0)
    }
}

/// The SIMD levels this CPU has for the int8 GEMM (a level answers −1 when absent).
var s8SIMDLevels: [Int32] {
    (Int32(1)...4).filter { (level: Int32) -> Bool in
        var y: Float = 0
        let a: [Int8] = [0], s: [Float] = [1]
        return sq_s8_gemm_level(level, a, 1, s, 0, nil, 0, 0, 0, 0, &y, 0) == level
    }
}

/// Bit patterns, so −0 and +0 (and NaN payloads) count as different.
func bits(_ v: [Float]) -> [UInt32] { v.map(\.bitPattern) }

@Test func s8LevelsIncludeWhatThisCPUHas() {
    let levels = s8SIMDLevels
    let cpu = sq_cpu_level()
    print("int8 GEMM levels on this CPU: \(levels), default \(sq_s8_level())")
    if cpu == 2 { #expect(levels.contains(1) && levels.contains(2)) }
    if cpu == 1 { #expect(levels == [1]) }
    if cpu == 3 { #expect(levels.contains(3)) }
    #expect(sq_s8_level() == (levels.last ?? 0))
}

/// Shapes around every blocking boundary: m around the row tiles (4, 6, 8), n around the
/// 16-channel panels and the 48-channel slices, k around the 4-byte groups and the 16-byte
/// loads (a tail of 1–3 values included).
@Test func s8SimdKernelsEqualScalarBitForBit() {
    var rng = SplitMix64(seed: 801)
    let levels = s8SIMDLevels
    #expect(!levels.isEmpty || sq_cpu_level() == 0)
    for m in [1, 2, 3, 5, 7, 8, 9, 13, 17] {
        for n in [1, 15, 16, 17, 33, 48, 50, 97] {
            for k in [1, 3, 4, 5, 15, 16, 17, 63, 64, 67, 130, 577] {
                let p = S8Problem.random(m: m, n: n, k: k, rng: &rng)
                defer { p.free() }
                let (used, reference) = p.run(level: 0)
                #expect(used == 0)
                for level in levels {
                    let (l, got) = p.run(level: level)
                    #expect(l == level)
                    #expect(bits(got) == bits(reference), "level \(level) m=\(m) n=\(n) k=\(k)")
                }
            }
        }
    }
}

/// The scalar reference is the defined formula: against Int64 sums and the f32 epilogue
/// computed in Swift, bit for bit; and with unit scales and sums below 2²⁴ it is the
/// exact integer.
@Test func s8ScalarReferenceIsTheExactIntegerProduct() {
    var rng = SplitMix64(seed: 802)
    for (m, n, k) in [(3, 20, 1000), (9, 35, 67), (1, 1, 1)] {
        let p = S8Problem.random(m: m, n: n, k: k, rng: &rng)
        defer { p.free() }
        let (_, y) = p.run(level: 0)
        for i in 0..<m { for j in 0..<n { #expect(y[i * n + j].bitPattern == p.expected(i, j).bitPattern) } }
        let unit = S8Problem(m: m, n: n, k: k, a: p.a, w: p.w, sa: .init(repeating: 1, count: m), sw: .init(repeating: 1, count: n), bias: nil)
        defer { unit.free() }
        let (_, yi) = unit.run(level: 0)
        for i in 0..<m { for j in 0..<n { #expect(Int64(yi[i * n + j]) == unit.exactSum(i, j)) } }
    }
}

/// Extremes: every product ±127·127 with all signs, at k up to 65536 (|acc| ≈ 1.06·10⁹,
/// the largest the contract allows); zeros (output = bias, +0 without one); a weight with
/// all-zero rows; every level equal to the scalar reference and to the Int64 sum.
@Test(arguments: [
    ("a=+127 w=+127", Int8(127), Int8(127)), ("a=-127 w=+127", -127, 127), ("a=+127 w=-127", 127, -127),
    ("a=-127 w=-127", -127, -127), ("zeros", 0, 0), ("a=0 w=-127", 0, -127),
])
func s8ExtremeValuesStayExact(_ name: String, _ av: Int8, _ wv: Int8) {
    for (m, n, k) in [(9, 49, 65536), (2, 17, 1023), (1, 3, 4)] {
        let p = S8Problem(m: m, n: n, k: k, a: .init(repeating: av, count: m * k), w: .init(repeating: wv, count: n * k),
                          sa: .init(repeating: 1, count: m), sw: .init(repeating: 1, count: n), bias: nil)
        defer { p.free() }
        let (_, reference) = p.run(level: 0)
        let acc = Int64(av) * Int64(wv) * Int64(k)
        #expect(reference.allSatisfy { $0 == Float(acc) }, "\(name) k=\(k)")
        if av == 0 || wv == 0 { #expect(reference.allSatisfy { $0.bitPattern == 0 }) }
        for level in s8SIMDLevels {
            #expect(bits(p.run(level: level).1) == bits(reference), "\(name) k=\(k) level \(level)")
        }
    }
    // Alternating signs along k and across rows: partial sums swing but must end exact.
    var rng = SplitMix64(seed: 803)
    let m = 11, n = 37, k = 4099
    let a = (0..<m * k).map { i in (i / k + i % k) % 2 == 0 ? Int8(127) : -127 }
    let w = (0..<n * k).map { _ in Bool.random(using: &rng) ? Int8(127) : -127 }
    let p = S8Problem(m: m, n: n, k: k, a: a, w: w, sa: .init(repeating: 1, count: m), sw: .init(repeating: 1, count: n),
                      bias: nil)
    defer { p.free() }
    let (_, reference) = p.run(level: 0)
    for i in 0..<m { for j in 0..<n { #expect(Int64(reference[i * n + j]) == p.exactSum(i, j)) } }
    for level in s8SIMDLevels { #expect(bits(p.run(level: level).1) == bits(reference)) }
}

/// Column ranges (as threads split the work), output and activation strides wider than
/// the data: only j0..<j1 of each output row is written, and the values equal the full run.
@Test func s8ColumnRangesAndStridesWriteOnlyTheirOutputs() {
    var rng = SplitMix64(seed: 804)
    let (m, n, k) = (10, 83, 131)
    let p = S8Problem.random(m: m, n: n, k: k, rng: &rng, lda: 160)
    defer { p.free() }
    let (_, full) = p.run(level: 0)
    for level in [Int32(0)] + s8SIMDLevels {
        for (j0, j1) in [(0, 16), (16, 48), (32, 83), (80, 83), (48, 48), (0, 83)] {
            let ldy = 91
            let (used, y) = p.run(level: level, j0: j0, j1: j1, ldy: ldy)
            #expect(used == level)
            for i in 0..<m {
                for j in 0..<ldy {
                    let v = y[i * ldy + j]
                    if j >= j0 && j < j1 {
                        #expect(v.bitPattern == full[i * n + j].bitPattern, "level \(level) [\(i), \(j)]")
                    } else {
                        #expect(v.isNaN, "level \(level) wrote [\(i), \(j)] outside \(j0)..<\(j1)")
                    }
                }
            }
        }
    }
    // Ranges that are not panel-aligned, or past n, are refused.
    var y = [Float](repeating: 0, count: m * n)
    #expect(sq_s8_gemm_level(0, p.a, p.lda, p.sa, m, p.packed, n, k, 8, 16, &y, n) == -1)
    #expect(sq_s8_gemm_level(0, p.a, p.lda, p.sa, m, p.packed, n, k, 0, 84, &y, n) == -1)
    #expect(sq_s8_gemm_level(0, p.a, p.lda, p.sa, m, p.packed, n, k, 0, 40, &y, n) == -1)
}

/// Packing keeps every weight (unpack gives the rows back) and pads with zeros.
@Test func s8PackingRoundTrips() {
    var rng = SplitMix64(seed: 805)
    for (n, k) in [(1, 1), (17, 5), (48, 64), (50, 131)] {
        let p = S8Problem.random(m: 1, n: n, k: k, rng: &rng)
        defer { p.free() }
        for j in 0..<n {
            var row = [Int8](repeating: 0, count: k)
            sq_s8_unpack_row(p.packed, n, k, j, &row)
            #expect(row == Array(p.w[j * k..<(j + 1) * k]))
        }
        let panels = (n + 15) / 16, groups = (k + 3) / 4
        #expect(sq_s8_packed_bytes(n, k) == 64 * groups * panels + 192 * panels)
        // Padding channels (n..<16·panels) hold zero weights, scales and bias.
        let raw = UnsafeRawBufferPointer(start: p.packed, count: sq_s8_packed_bytes(n, k))
        for j in n..<16 * panels {
            for c in 0..<k {
                let offset: Int = (j / 16) * 64 * groups + 64 * (c / 4) + 4 * (j % 16) + c % 4
                #expect(raw[offset] == 0)
            }
        }
    }
}

/// Dynamic quantization: scale = max|x| / 127, q = x · (127 / max|x|) rounded half to
/// even (2.5 → 2, 3.5 → 4, −2.5 → −2), the max maps to ±127, −128 never appears, an
/// all-zero row gives scale 0.
@Test func s8DynamicQuantizationRoundsHalfToEvenPerRow() {
    let k = 8
    let x: [Float] = [127, 2.5, 3.5, -2.5, -127, 0.49, -0.5, 1.5,  // max 127: q = x rounded
                      0, 0, 0, 0, 0, 0, 0, 0,
                      -127 / 128, 2.5 / 128, 3.5 / 128, -2.5 / 128, 0.5, 0, 0, 0]  // max 127/128: q = 128·x
    let m = x.count / k
    var q = [Int8](repeating: 55, count: m * k), s = [Float](repeating: -1, count: m)
    sq_s8_quantize_rows(x, k, m, k, &q, k, &s)
    #expect(Array(q[0..<8]) == [127, 2, 4, -2, -127, 0, 0, 2])
    #expect(s[0] == 1)
    #expect(Array(q[8..<16]) == [Int8](repeating: 0, count: 8) && s[1] == 0)
    #expect(Array(q[16..<24]) == [-127, 2, 4, -2, 64, 0, 0, 0])
    #expect(s[2] == Float(1) / 128)

    var rng = SplitMix64(seed: 806)
    let big = (0..<37 * 301).map { _ in Float.random(in: -3...3, using: &rng) * (Bool.random(using: &rng) ? 1 : 40) }
    var qb = [Int8](repeating: 0, count: 37 * 320), sb = [Float](repeating: 0, count: 37)
    sq_s8_quantize_rows(big, 301, 37, 301, &qb, 320, &sb)
    for r in 0..<37 {
        let row = big[r * 301..<(r + 1) * 301]
        let amax = row.map(abs).max()!
        #expect(sb[r] == amax / 127)
        let inv = 127 / amax
        for (c, v) in row.enumerated() {
            let scaled: Float = (v * inv).rounded(.toNearestOrEven)
            let want = Int8(Swift.min(Float(127), Swift.max(Float(-127), scaled)))
            #expect(qb[r * 320 + c] == want)
        }
        #expect(qb[r * 320..<r * 320 + 301].contains { $0 == 127 || $0 == -127 })
    }
}

/// Static quantization: q = x / scale rounded half to even, saturating at ±127 (never −128).
@Test func s8StaticQuantizationSaturates() {
    let x: [Float] = [0.25, -0.25, 0.75, 1000, -1000, 31.75, -31.75, .infinity, -.infinity, 0]
    var q = [Int8](repeating: 9, count: x.count)
    sq_s8_quantize_rows_static(x, x.count, 1, x.count, 0.5, &q, x.count)
    #expect(q == [0, 0, 2, 127, -127, 64, -64, 127, -127, 0])
}

/// The quantizers give the same bits at every level (each vectorises one C source), on
/// rows of odd lengths with ties, huge values, zeros, infinities and NaN; a row with a NaN
/// gets a NaN scale.
@Test func s8QuantizersAgreeAcrossLevels() {
    var rng = SplitMix64(seed: 807)
    let special: [Float] = [0, -0.0, .infinity, -.infinity, .nan, 1e30, -1e-30, 0.5, -1.5, 2.5]
    for k in [1, 7, 31, 64, 577] {
        let m = 9
        var x = (0..<m * k).map { _ in Float.random(in: -8...8, using: &rng) }
        for i in stride(from: 0, to: m * k, by: 13) { x[i] = special[(i / 13) % special.count] }
        for r in 0..<m where r % 4 == 3 { for c in 0..<k { x[r * k + c] = 0 } }
        for scale: Float in [-1, 0.03, 1] {
            var q0 = [Int8](repeating: 0, count: m * k), s0 = [Float](repeating: 0, count: m)
            #expect(sq_s8_quantize_rows_level(0, x, k, m, k, scale, &q0, k, &s0) == 0)
            #expect(!q0.contains(-128))
            for level in s8SIMDLevels {
                var q = [Int8](repeating: 1, count: m * k), s = [Float](repeating: 1, count: m)
                #expect(sq_s8_quantize_rows_level(level, x, k, m, k, scale, &q, k, &s) == level)
                #expect(q == q0, "level \(level) k=\(k) scale \(scale)")
                if scale < 0 { #expect(bits(s) == bits(s0)) }
            }
            if scale < 0 {
                for r in 0..<m {
                    let row = x[r * k..<(r + 1) * k]
                    #expect(row.contains { $0.isNaN } ? s0[r].isNaN : s0[r] == row.map(abs).max()! / 127)
                }
            }
        }
    }
}
