import Foundation

/// Everything a comparison measured about one model file.
public struct ModelEvaluation: Codable, Sendable, Equatable {
    /// Short display name (the file name without `.gguf`, made unique within the comparison).
    public var name: String
    /// The path given.
    public var path: String
    /// Size, bits per weight and type label of the file.
    public var file: ModelFileSummary
    /// Perplexity on the comparison's token stream.
    public var perplexity: PerplexityResult
    /// KL divergence and agreement with the reference; nil for the reference itself.
    public var klDivergence: KLDivergenceResult?
    /// Prompt-processing and generation speed; nil when benchmarking was off.
    public var bench: BenchResult?
    /// Seconds to open the file and build the runnable model.
    public var loadSeconds: Double
    /// Peak memory while the model was loaded and run; nil where the system does not report it.
    public var memory: PeakMemory?
    /// Weight error of each 2-D tensor against the reference's tensor of the same name and
    /// shape; nil for the reference, or when turned off, or when no tensor matched.
    public var tensorErrors: [TensorError]?

    /// A record of the given measurements.
    public init(name: String, path: String, file: ModelFileSummary, perplexity: PerplexityResult,
                klDivergence: KLDivergenceResult? = nil, bench: BenchResult? = nil, loadSeconds: Double = 0,
                memory: PeakMemory? = nil, tensorErrors: [TensorError]? = nil) {
        self.name = name
        self.path = path
        self.file = file
        self.perplexity = perplexity
        self.klDivergence = klDivergence
        self.bench = bench
        self.loadSeconds = loadSeconds
        self.memory = memory
        self.tensorErrors = tensorErrors
    }

    /// Relative weight error per layer: √(Σ‖W−Ŵ‖² / Σ‖W‖²) over the layer's tensors with
    /// the given role (all roles when nil), in layer order. Empty without tensor errors.
    public func layerProfile(role: String? = nil) -> [(layer: Int, relativeRMSE: Double)] {
        var sums: [Int: (err: Double, ref: Double)] = [:]
        for t in tensorErrors ?? [] where role == nil || t.role == role {
            guard let l = t.layer else { continue }
            let s = sums[l] ?? (0, 0)
            sums[l] = (s.err + t.errorSquaredNorm, s.ref + t.referenceSquaredNorm)
        }
        return sums.keys.sorted().map { l in
            let s = sums[l]!
            return (l, s.ref > 0 ? (s.err / s.ref).squareRoot() : 0)
        }
    }
}

extension Comparison {
    /// A reference model and several models evaluated on the same token stream.
    public struct Result: Codable, Sendable, Equatable {
        /// The evaluation text (a path or a label).
        public var text: String
        /// Tokens in the text.
        public var tokens: Int
        /// Tokens per chunk.
        public var context: Int
        /// Chunks evaluated.
        public var chunks: Int
        /// Reference tokens kept per position for the KL divergence.
        public var topK: Int
        /// Worker threads.
        public var threads: Int
        /// Repetitions of each speed test (0: not measured).
        public var benchRepetitions: Int
        /// The reference (its perplexity, speed, memory).
        public var reference: ModelEvaluation
        /// The compared models, in the order given.
        public var models: [ModelEvaluation]

        /// A comparison record.
        public init(text: String, tokens: Int, context: Int, chunks: Int, topK: Int, threads: Int, benchRepetitions: Int,
                    reference: ModelEvaluation, models: [ModelEvaluation]) {
            self.text = text
            self.tokens = tokens
            self.context = context
            self.chunks = chunks
            self.topK = topK
            self.threads = threads
            self.benchRepetitions = benchRepetitions
            self.reference = reference
            self.models = models
        }

        /// Perplexity change of `model` relative to the reference, in percent.
        public func deltaPerplexityPercent(_ model: ModelEvaluation) -> Double {
            (model.perplexity.perplexity / reference.perplexity.perplexity - 1) * 100
        }

        /// Tensor roles that have per-layer errors in any model, in first-seen order.
        public var layerRoles: [String] {
            var seen: [String] = []
            for m in models { for t in m.tensorErrors ?? [] where t.layer != nil && !seen.contains(t.role) { seen.append(t.role) } }
            return seen
        }

        /// Column titles of the comparison table (`tableRows`).
        public static let tableHeader = ["model", "type", "bits/weight", "size", "PPL ± err", "ΔPPL %",
                                         "mean KLD ± err", "same-top %", "pp t/s", "tg t/s", "peak memory"]
        /// Columns of `tableHeader` holding numbers (right-aligned).
        public static let numericColumns: Set<Int> = [2, 3, 4, 5, 6, 7, 8, 9, 10]

        /// The comparison table as text cells: the reference first, then each model.
        public var tableRows: [[String]] {
            ([reference] + models).enumerated().map { i, m in
                let kl = m.klDivergence
                return [
                    i == 0 ? m.name + " (reference)" : m.name,
                    m.file.typeLabel,
                    String(format: "%.3f", m.file.bitsPerWeight),
                    formatByteCount(m.file.fileSize),
                    String(format: "%.4f ± %.4f", m.perplexity.perplexity, m.perplexity.perplexityError),
                    i == 0 ? "—" : String(format: "%+.3f", deltaPerplexityPercent(m)),
                    kl.map { String(format: "%.6f ± %.6f", $0.meanKLD, $0.meanKLDError) } ?? "—",
                    kl.map { String(format: "%.2f", 100 * $0.sameTopFraction) } ?? "—",
                    m.bench.map { String(format: "%.1f", $0.pp.median) } ?? "—",
                    m.bench.map { String(format: "%.2f", $0.tg.median) } ?? "—",
                    m.memory.map { formatByteCount($0.peakBytes) } ?? "—",
                ]
            }
        }
    }
}

/// Pareto fronts of two costs where lower is better on both.
public enum Pareto {
    /// Indices of the points no other point beats: a point is dominated when another is no
    /// worse in both coordinates and better in one. Points with a non-finite coordinate are
    /// never on the front. Indices come back sorted by x (then y).
    public static func front(_ points: [(x: Double, y: Double)]) -> [Int] {
        let ok = points.indices.filter { points[$0].x.isFinite && points[$0].y.isFinite }
        let onFront = ok.filter { i in
            !ok.contains { j in
                j != i && points[j].x <= points[i].x && points[j].y <= points[i].y
                    && (points[j].x < points[i].x || points[j].y < points[i].y)
            }
        }
        return onFront.sorted { (points[$0].x, points[$0].y, $0) < (points[$1].x, points[$1].y, $1) }
    }
}

/// A byte count as B / KiB / MiB / GiB text.
public func formatByteCount(_ n: Int) -> String {
    let d = Double(n)
    if n >= 1 << 30 { return String(format: "%.2f GiB", d / Double(1 << 30)) }
    if n >= 1 << 20 { return String(format: "%.2f MiB", d / Double(1 << 20)) }
    if n >= 1 << 10 { return String(format: "%.1f KiB", d / 1024) }
    return "\(n) B"
}
