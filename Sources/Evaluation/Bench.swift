import CKernels
import Foundation
import Models
import Tensors

/// The machine's own limits, measured in the same run as a benchmark so figures can be
/// quoted as ratios: single-precision matrix-product throughput and memory read bandwidth.
public struct MachineLimits: Codable, Sendable {
    /// Best sgemm throughput seen, in GFLOP/s (BLAS, all threads).
    public var sgemmGFLOPS: Double
    /// Best read bandwidth over a buffer much larger than the caches, in GB/s (all threads).
    public var memoryBandwidthGBs: Double
    /// Threads used.
    public var threads: Int
    /// The BLAS kernel family (OpenBLAS's core name, e.g. `Haswell` or `SkylakeX`; nil on Accelerate).
    public var blasKernels: String? = BLAS.coreName

    /// `machine: sgemm … GFLOP/s (OpenBLAS SkylakeX kernels), memory read … GB/s, N threads`.
    public var summary: String {
        String(format: "machine: sgemm %.1f GFLOP/s", sgemmGFLOPS) + (blasKernels.map { " (OpenBLAS \($0) kernels)" } ?? "")
            + String(format: ", memory read %.1f GB/s, %d threads", memoryBandwidthGBs, threads)
    }

    /// Measures both limits (about a second).
    public static func measure(threads: Int = Threads.count) -> MachineLimits {
        let n = 1024
        let a = [Float](repeating: 0.5, count: n * n), b = [Float](repeating: 0.25, count: n * n)
        var c = [Float](repeating: 0, count: n * n)
        var best = 0.0
        for _ in 0..<5 {
            let t = Date()
            BLAS.matmul(a, b, &c, m: n, n: n, k: n)
            best = max(best, 2 * Double(n * n * n) / Date().timeIntervalSince(t) / 1e9)
        }
        let count = 64 << 20  // 256 MiB of floats
        let buf = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { buf.deallocate() }
        buf.initialize(repeating: 1, count: count)
        var bw = 0.0
        var sink: UInt64 = 0
        // Five passes, each thread reading its contiguous share with wide loads (the first
        // pass also warms the page tables); the best pass counts.
        for _ in 0..<5 {
            let t = Date()
            let partial = UnsafeMutablePointer<UInt64>.allocate(capacity: threads)
            parallelFor(threads, threads: threads) { k in
                let lo = count * k / threads / 16 * 16, hi = count * (k + 1) / threads / 16 * 16
                partial[k] = sq_read_bytes(buf + lo, 4 * (hi - lo))
            }
            for k in 0..<threads { sink ^= partial[k] }
            partial.deallocate()
            bw = max(bw, Double(count * 4) / Date().timeIntervalSince(t) / 1e9)
        }
        if sink == 1 { print(sink) }  // keeps the reads from being optimised away
        return MachineLimits(sgemmGFLOPS: best, memoryBandwidthGBs: bw, threads: threads)
    }
}

/// Prompt-processing and generation speed of a model, llama-bench style.
public struct BenchResult: Codable, Sendable, Equatable {
    /// Summary of repeated timings of one test.
    public struct Stat: Codable, Sendable, Equatable {
        /// Tokens per second: median, min and max over the repetitions.
        public var median: Double, min: Double, max: Double
        init(_ v: [Double]) {
            let s = v.sorted()
            median = s[s.count / 2]
            min = s.first ?? 0
            max = s.last ?? 0
        }
    }
    /// Tokens in the prompt-processing test.
    public var promptTokens: Int
    /// Tokens in the generation test.
    public var generatedTokens: Int
    /// Prompt processing tokens/s.
    public var pp: Stat
    /// Generation tokens/s.
    public var tg: Stat
    /// Floating-point operations per token of a forward pass (2 × parameters in linear layers).
    public var flopsPerToken: Double
    /// Bytes of weights read per generated token.
    public var weightBytesPerToken: Double
}

/// Runs `model` through `pp` and `tg` tests `repetitions` times.
/// pp: one batch of `promptTokens` from an empty cache; tg: `generatedTokens` single-token steps.
public func benchmark(_ model: LlamaModel, promptTokens: Int = 512, generatedTokens: Int = 128, repetitions: Int = 3,
                      weightBytesPerToken: Double, flopsPerToken: Double) -> BenchResult {
    var rng = SplitMix64(seed: 1)
    let prompt = (0..<promptTokens).map { _ in Int32(rng.next() % UInt64(model.hp.vocabSize)) }
    let cache = model.makeCache(capacity: max(promptTokens, generatedTokens + 1))
    var pp: [Double] = [], tg: [Double] = []
    _ = model.forward(Array(prompt.prefix(8)), cache: cache)  // warm up page-ins
    for _ in 0..<repetitions {
        cache.reset()
        var t = Date()
        _ = model.forward(prompt, cache: cache)
        pp.append(Double(promptTokens) / Date().timeIntervalSince(t))
        cache.reset()
        var tok: Int32 = prompt[0]
        t = Date()
        for _ in 0..<generatedTokens {
            let logits = model.forward([tok], cache: cache)
            tok = Int32(logits.indices.max { logits[$0] < logits[$1] }!)
        }
        tg.append(Double(generatedTokens) / Date().timeIntervalSince(t))
    }
    return BenchResult(promptTokens: promptTokens, generatedTokens: generatedTokens, pp: .init(pp), tg: .init(tg),
                       flopsPerToken: flopsPerToken, weightBytesPerToken: weightBytesPerToken)
}

/// Peak resident memory of this process in bytes (Linux: VmHWM), or nil where unknown.
public func peakResidentBytes() -> Int? {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
    for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let parts = line.split(separator: " ")
        if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
    }
    return nil
}
