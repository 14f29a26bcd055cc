import Foundation

/// The charts of a comparison report, built from its result.
public struct ComparisonCharts {
    /// The comparison drawn.
    public let result: Comparison.Result

    /// Charts for `result`.
    public init(_ result: Comparison.Result) { self.result = result }

    /// Colours for models, in order (Tableau 10); the reference is drawn in `referenceColor`.
    public static let palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                 "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]
    /// Colour of the reference.
    public static let referenceColor = "#222222"

    /// The colour of model `i` (in `result.models`).
    public static func color(_ i: Int) -> String { palette[i % palette.count] }

    var referenceName: String { result.reference.name + " (reference)" }

    /// Point labels: the names without the prefix they all share (`SmolLM2-135M-Instruct.`),
    /// cut at a `.`, `-` or `_`; the reference's first, then the models'.
    public var shortNames: [String] {
        let names = [result.reference.name] + result.models.map(\.name)
        var prefix = names[0]
        for n in names.dropFirst() { prefix = String(prefix.commonPrefix(with: n)) }
        if let cut = prefix.lastIndex(where: { ".-_ ".contains($0) }) { prefix = String(prefix[...cut]) } else { prefix = "" }
        guard !prefix.isEmpty, names.allSatisfy({ $0.count > prefix.count }) else { return names }
        return names.map { String($0.dropFirst(prefix.count)) }
    }
    var shortReferenceName: String { shortNames[0] + " (reference)" }
    func shortName(_ i: Int) -> String { shortNames[i + 1] }

    /// Mean KL divergence against bits per weight, log y, with the Pareto front.
    public func klDivergenceVsBits(width: Double = 560, height: Double = 360) -> SVGChart {
        var c = SVGChart(title: "Mean KL divergence vs bits per weight", xLabel: "bits per weight",
                         yLabel: "mean KLD (nats)")
        c.width = width
        c.height = height
        c.yLog = true
        let models = result.models.enumerated().filter { $0.element.klDivergence != nil }
        let pts = models.map { (x: $0.element.file.bitsPerWeight, y: $0.element.klDivergence!.meanKLD) }
        let front = Set(Pareto.front(pts))
        var zeros = false
        for (k, (i, m)) in models.enumerated() {
            let kld = m.klDivergence!.meanKLD
            zeros = zeros || kld <= 0
            c.series.append(.init(name: m.name, color: Self.color(i), points: [
                .init(x: m.file.bitsPerWeight, y: kld, label: shortName(i) + (kld <= 0 ? " (KLD 0)" : ""),
                      emphasized: front.contains(k)),
            ]))
        }
        c.front = Pareto.front(pts).map { pts[$0] }
        c.notes = paretoNotes
        if zeros { c.notes.append(.init("KLD 0 (identical to the reference) sits on the axis floor", symbol: .none)) }
        return c
    }

    /// Perplexity against bits per weight (reference included), with the Pareto front.
    public func perplexityVsBits(width: Double = 560, height: Double = 360) -> SVGChart {
        var c = SVGChart(title: "Perplexity vs bits per weight", xLabel: "bits per weight", yLabel: "perplexity")
        c.width = width
        c.height = height
        let all = entries
        let pts = all.map { (x: $0.model.file.bitsPerWeight, y: $0.model.perplexity.perplexity) }
        let front = Set(Pareto.front(pts))
        for (k, e) in all.enumerated() {
            c.series.append(.init(name: e.name, color: e.color, points: [
                .init(x: e.model.file.bitsPerWeight, y: e.model.perplexity.perplexity, label: e.label,
                      emphasized: front.contains(k)),
            ]))
        }
        c.front = Pareto.front(pts).map { pts[$0] }
        c.notes = paretoNotes
        return c
    }

    /// The reference then the models, with legend name, point label and colour.
    var entries: [(model: ModelEvaluation, name: String, label: String, color: String)] {
        [(result.reference, referenceName, shortReferenceName, Self.referenceColor)]
            + result.models.enumerated().map { ($0.element, $0.element.name, shortName($0.offset), Self.color($0.offset)) }
    }

    private var paretoNotes: [SVGChart.LegendNote] {
        [.init("Pareto front (lower-left is better)", symbol: .dashedLine), .init("on the front", symbol: .ring)]
    }

    /// Generation and prompt-processing tokens/s against file size; nil without speed figures.
    public func speedVsSize(width: Double = 560, height: Double = 360) -> SVGChart? {
        let all = entries
        guard all.contains(where: { $0.model.bench != nil }) else { return nil }
        var c = SVGChart(title: "Speed vs file size", xLabel: "file size (MiB)", yLabel: "tokens/s")
        c.width = width
        c.height = height
        c.yLog = true
        for e in all {
            guard let b = e.model.bench else { continue }
            let mib = Double(e.model.file.fileSize) / Double(1 << 20)
            c.series.append(.init(name: e.name, color: e.color, points: [.init(x: mib, y: b.tg.median, label: e.label)]))
            c.series.append(.init(name: nil, color: e.color, points: [.init(x: mib, y: b.pp.median)], hollow: true))
        }
        let b = all.compactMap(\.model.bench).first!
        c.notes = [.init("tg\(b.generatedTokens) (generation, median)", symbol: .filled),
                   .init("pp\(b.promptTokens) (prompt processing, median)", symbol: .hollow)]
        return c
    }

    /// Relative weight error by layer, one line per model; `role` nil pools all the layer's tensors.
    /// Nil when no model has tensor errors for it.
    public func layerErrors(role: String? = nil, width: Double = 1120, height: Double = 380) -> SVGChart? {
        var c = SVGChart(title: role.map { "Relative RMSE of \($0) by layer" }
                            ?? "Relative weight error by layer (all tensors of the layer, pooled)",
                         xLabel: "layer", yLabel: "‖W−Ŵ‖ / ‖W‖")
        c.width = width
        c.height = height
        c.xIntegerTicks = true
        for (i, m) in result.models.enumerated() {
            let profile = m.layerProfile(role: role)
            guard !profile.isEmpty else { continue }
            c.series.append(.init(name: m.name, color: Self.color(i),
                                  points: profile.map { .init(x: Double($0.layer), y: $0.relativeRMSE) }, connected: true))
        }
        guard !c.series.isEmpty else { return nil }
        let ys = c.series.flatMap(\.points).map(\.y)
        // Log scale when every value is positive and they span a wide range; else linear from 0
        // (an identical model's zeros stay visible).
        let positive = ys.allSatisfy { $0 > 0 }
        c.yLog = positive && (ys.max()! / ys.min()!) > 8
        c.yFromZero = !c.yLog
        return c
    }
}
