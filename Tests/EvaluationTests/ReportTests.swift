import Foundation
import Testing
@testable import Evaluation

/// A comparison with made-up numbers: a reference and four models, one identical to it
/// (KLD 0), names that need escaping, speed figures and per-layer errors for two roles.
func syntheticComparison(bench: Bool = true) -> Comparison.Result {
    func file(_ bpw: Double, _ label: String) -> ModelFileSummary {
        var f = ModelFileSummary.placeholder
        f.bitsPerWeight = bpw
        f.parameters = 1_000_000
        f.tensorBytes = Int(bpw * 1_000_000 / 8)
        f.fileSize = f.tensorBytes + 4096
        f.typeLabel = label
        return f
    }
    func ppl(_ p: Double) -> PerplexityResult {
        PerplexityResult(context: 128, chunks: 2, scoredTokens: 126, perplexity: p, perplexityError: p * 0.05,
                         meanNLL: log(p), seconds: 1)
    }
    func kl(_ mean: Double, _ top: Double) -> KLDivergenceResult {
        KLDivergenceResult(positions: 126, meanKLD: mean, meanKLDError: mean / 10, medianKLD: mean / 2, p90KLD: mean * 2,
                           p99KLD: mean * 5, p999KLD: mean * 8, maxKLD: mean * 10, sameTopFraction: top,
                           sameTopError: 0.01, rmsDeltaP: mean, rmsDeltaPError: 0, meanDeltaP: 0, perplexity: 1,
                           referencePerplexity: 1, perplexityRatio: 1, perplexityRatioError: 0)
    }
    func speed(_ pp: Double, _ tg: Double) -> BenchResult? {
        guard bench else { return nil }
        return BenchResult(promptTokens: 64, generatedTokens: 16, pp: .init([pp, pp * 1.1]), tg: .init([tg, tg * 0.9]),
                           flopsPerToken: 1, weightBytesPerToken: 1)
    }
    func errors(_ scale: Double) -> [TensorError] {
        var out = [TensorError(name: "token_embd.weight", layer: nil, role: "token_embd", type: "Q8_0", elements: 100,
                               errorSquaredNorm: scale * scale * 0.25, referenceSquaredNorm: 1)]
        for l in 0..<4 {
            for (role, k) in [("attn_q", 1.0), ("ffn_down", 2.0)] {
                let rel = scale * k * (1 + 0.1 * Double(l))
                out.append(TensorError(name: "blk.\(l).\(role).weight", layer: l, role: role, type: "Q4_0",
                                       elements: 64, errorSquaredNorm: rel * rel * 4, referenceSquaredNorm: 4))
            }
        }
        return out
    }
    let memory = PeakMemory(baselineBytes: 30 << 20, peakBytes: 700 << 20, method: .resetHighWaterMark)
    let reference = ModelEvaluation(name: "tiny-F16", path: "/m/tiny-F16.gguf", file: file(16, "F16"), perplexity: ppl(10),
                                    bench: speed(400, 20), loadSeconds: 0.5, memory: memory)
    let models = [
        ModelEvaluation(name: "tiny-F16 #2", path: "/m/x/tiny-F16.gguf", file: file(16, "F16"), perplexity: ppl(10),
                        klDivergence: kl(0, 1), bench: speed(410, 21), memory: memory, tensorErrors: errors(0)),
        ModelEvaluation(name: "tiny-Q8_0", path: "/m/tiny-Q8_0.gguf", file: file(8.5, "Q8_0"), perplexity: ppl(10.02),
                        klDivergence: kl(0.0005, 0.99), bench: speed(500, 35), memory: memory, tensorErrors: errors(0.004)),
        ModelEvaluation(name: "tiny-Q4_K_M <b>&\"|", path: "/m/q4.gguf", file: file(4.9, "Q4_K_M"), perplexity: ppl(10.5),
                        klDivergence: kl(0.03, 0.9), bench: speed(520, 55), memory: memory, tensorErrors: errors(0.05)),
        ModelEvaluation(name: "tiny-Q5_0", path: "/m/tiny-Q5_0.gguf", file: file(5.5, "Q5_0"), perplexity: ppl(10.6),
                        klDivergence: kl(0.04, 0.88), bench: speed(480, 45), memory: memory, tensorErrors: errors(0.03)),
    ]
    return Comparison.Result(text: "test.txt", tokens: 1000, context: 128, chunks: 2, topK: 32, threads: 2,
                             benchRepetitions: bench ? 2 : 0, reference: reference, models: models)
}

extension ModelFileSummary {
    static var placeholder: ModelFileSummary {
        try! JSONDecoder().decode(ModelFileSummary.self, from: Data("""
        {"fileSize":0,"parameters":0,"tensorBytes":0,"bitsPerWeight":0,"typeLabel":"F32","labelSource":"general.file_type"}
        """.utf8))
    }
}

@Suite struct ReportTests {
    @Test func paretoFrontKeepsTheUndominatedPointsSortedByX() {
        let pts: [(x: Double, y: Double)] = [(4, 0.1), (5, 0.05), (6, 0.2), (8, 0.001), (5, 0.05), (.nan, 0), (9, 0.001)]
        // (6, 0.2) is beaten by (5, 0.05); (9, 0.001) by (8, 0.001); equal points do not beat each other.
        #expect(Pareto.front(pts) == [0, 1, 4, 3])
        #expect(Pareto.front([]) == [])
        #expect(Pareto.front([(1, 1)]) == [0])
    }

    @Test func deltaPerplexityAndTableRows() {
        let r = syntheticComparison()
        #expect(abs(r.deltaPerplexityPercent(r.models[2]) - 5) < 1e-9)
        let rows = r.tableRows
        #expect(rows.count == 5)
        #expect(rows.allSatisfy { $0.count == Comparison.Result.tableHeader.count })
        #expect(rows[0][0] == "tiny-F16 (reference)" && rows[0][5] == "—" && rows[0][6] == "—")
        #expect(rows[1][5] == "+0.000" && rows[1][7] == "100.00")
        #expect(rows[3][5] == "+5.000" && rows[3][6] == "0.030000 ± 0.003000")
        #expect(syntheticComparison(bench: false).tableRows[2][8] == "—")
    }

    @Test func layerProfilePoolsSquaredNorms() {
        var m = syntheticComparison().models[2]
        m.tensorErrors = [
            TensorError(name: "blk.0.a.weight", layer: 0, role: "a", type: "Q4_0", elements: 4, errorSquaredNorm: 1, referenceSquaredNorm: 4),
            TensorError(name: "blk.0.b.weight", layer: 0, role: "b", type: "Q4_0", elements: 4, errorSquaredNorm: 3, referenceSquaredNorm: 12),
            TensorError(name: "blk.1.a.weight", layer: 1, role: "a", type: "Q4_0", elements: 4, errorSquaredNorm: 0, referenceSquaredNorm: 9),
            TensorError(name: "output.weight", layer: nil, role: "output", type: "Q6_K", elements: 4, errorSquaredNorm: 9, referenceSquaredNorm: 1),
        ]
        let all = m.layerProfile()
        #expect(all.map(\.layer) == [0, 1])
        #expect(abs(all[0].relativeRMSE - 0.5) < 1e-12 && all[1].relativeRMSE == 0)
        #expect(m.layerProfile(role: "b").map(\.layer) == [0])
        #expect(abs(m.tensorErrors![0].relativeRMSE - 0.5) < 1e-12)
    }

    @Test func markdownIsOneTableRowPerModelWithEscapedCells() {
        let r = syntheticComparison()
        let lines = r.markdownReport().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let table = lines.prefix { $0.hasPrefix("|") }
        #expect(table.count == 2 + 1 + r.models.count)
        #expect(table[1].hasPrefix("| --- | --- | ---: |"))
        func columns(_ line: String) -> Int {  // unescaped pipes minus one
            var n = 0, prev: Character = " "
            for c in line { if c == "|" && prev != "\\" { n += 1 }; prev = c }
            return n - 1
        }
        #expect(table.allSatisfy { columns($0) == Comparison.Result.tableHeader.count })
        #expect(table.contains { $0.contains("tiny-Q4_K_M <b>&\"\\|") })
        #expect(lines.contains { $0.hasPrefix("*test.txt: 2 chunks of 128 tokens") && $0.hasSuffix(".*") })
    }

    @Test func jsonRoundTripsTheWholeComparison() throws {
        var r = syntheticComparison()
        r.models[2].tensorErrors![0] = TensorError(name: "x", layer: nil, role: "x", type: "F32", elements: 1,
                                                    errorSquaredNorm: 1, referenceSquaredNorm: 0)
        #expect(r.models[2].tensorErrors![0].relativeRMSE == .infinity)
        let data = try r.jsonReport()
        #expect(try Comparison.Result.decode(json: data) == r)
        #expect(String(decoding: data, as: UTF8.self).contains("\"inf\""))
        #expect(try r.jsonReport() == data, "the same comparison gives the same bytes")
    }

    @Test func reportsAreWrittenAtomicallyByExtension() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sq-report-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = syntheticComparison()
        for name in ["r.html", "r.md", "r.JSON"] { try r.writeReport(to: dir.appendingPathComponent(name).path) }
        try r.writeReport(to: dir.appendingPathComponent("r.html").path)  // replaces
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["r.JSON", "r.html", "r.md"])
        let html = try String(contentsOf: dir.appendingPathComponent("r.html"), encoding: .utf8)
        #expect(html == r.htmlReport())
        #expect(throws: ReportError.unknownFormat(path: dir.appendingPathComponent("r.txt").path)) {
            try r.writeReport(to: dir.appendingPathComponent("r.txt").path)
        }
        #expect(throws: ReportError.self) { try r.writeReport(to: dir.appendingPathComponent("missing/r.md").path) }
        #expect(ReportFormat(path: "a/b.markdown") == .markdown && ReportFormat(path: "x.htm") == .html)
    }

    @Test func htmlIsSelfContainedAndWellFormed() throws {
        for r in [syntheticComparison(), syntheticComparison(bench: false)] {
            let html = r.htmlReport()
            #expect(html.hasPrefix("<!DOCTYPE html>"))
            for banned in ["http://", "https://", "src=", "href=", "url(", "@import", "<script", "<link", "<img", "<iframe"] {
                #expect(!html.contains(banned), "the page must not load anything: found \(banned)")
            }
            try checkTagsBalance(html)
            // The summary table: one row per model plus the reference.
            let summary = try #require(html.range(of: "<table class=\"cmp\">"))
            let tableEnd = try #require(html.range(of: "</table>", range: summary.upperBound..<html.endIndex))
            let table = String(html[summary.upperBound..<tableEnd.lowerBound])
            #expect(table.components(separatedBy: "<tr class=\"model\">").count - 1 == r.models.count)
            #expect(table.components(separatedBy: "<tr class=\"reference\">").count - 1 == 1)
            #expect(table.contains("tiny-Q4_K_M &lt;b&gt;&amp;&quot;|"))
            #expect(!html.contains("<b>&\""), "names are escaped")
            #expect(html.contains("--no-bench") == (r.benchRepetitions == 0))
        }
    }

    @Test func everyDataPointLiesInsideItsPlotArea() throws {
        let html = syntheticComparison().htmlReport()
        let svgs = html.components(separatedBy: "<svg ").dropFirst().map { "<svg " + $0.components(separatedBy: "</svg>")[0] }
        // KLD, PPL, speed, pooled layers, and one per role.
        #expect(svgs.count == 4 + 2)
        var markers = 0
        for svg in svgs {
            let area = try #require(attribute("data-plot-area", in: svg)).split(separator: " ").compactMap { Double($0) }
            try #require(area.count == 4)
            func inside(_ x: Double, _ y: Double) -> Bool {
                x >= area[0] - 0.05 && x <= area[2] + 0.05 && y >= area[1] - 0.05 && y <= area[3] + 0.05
            }
            for tag in tags("circle", in: svg) where tag.contains("class=\"pt\"") {
                let x = try #require(attribute("cx", in: tag).flatMap(Double.init)), y = try #require(attribute("cy", in: tag).flatMap(Double.init))
                #expect(inside(x, y), "marker at \(x),\(y) outside \(area)")
                markers += 1
            }
            for tag in tags("polyline", in: svg) {
                let pts = try #require(attribute("points", in: tag)).split(separator: " ").map { $0.split(separator: ",").compactMap { Double($0) } }
                for p in pts { #expect(p.count == 2 && inside(p[0], p[1]), "line point \(p) outside \(area)") }
            }
        }
        // 4 (KLD) + 5 (PPL) + 10 (speed: pp and tg) + 4 × 4 (pooled) + 2 × 4 × 4 (roles)
        #expect(markers == 4 + 5 + 10 + 16 + 32)
    }

    @Test func logAxisPlacesDecadesEvenlyAndZeroOnTheFloor() throws {
        var c = SVGChart(title: "t", xLabel: "x", yLabel: "y")
        c.yLog = true
        c.series = [.init(name: "a", color: "#000", points: [.init(x: 1, y: 1e-3), .init(x: 2, y: 1e-2), .init(x: 3, y: 1e-1), .init(x: 4, y: 0)])]
        let svg = c.render()
        let ys = tags("circle", in: svg).filter { $0.contains("class=\"pt\"") }.compactMap { attribute("cy", in: $0).flatMap(Double.init) }
        try #require(ys.count == 4)
        #expect(abs((ys[0] - ys[1]) - (ys[1] - ys[2])) < 0.2, "equal steps per decade: \(ys)")
        #expect(ys[0] > ys[1] && ys[1] > ys[2])
        #expect(ys[3] == c.plotArea.y1, "a zero on a log axis sits on the floor")
        let scale = AxisScale(values: [1e-3, 0.1], log: true, fromZero: false, integer: false)
        #expect(scale.lo <= 1e-3 && scale.hi >= 0.1)
        #expect(scale.ticks.filter(\.major).map(\.value).allSatisfy { abs(log10($0) - log10($0).rounded()) < 1e-9 })
        #expect(scale.ticks.contains { $0.label == "0.01" })
    }

    @Test func linearAxisTicksAreRoundAndCoverTheData() {
        let s = AxisScale(values: [4.9, 5.5, 8.5, 16], log: false, fromZero: false, integer: false)
        #expect(s.lo < 4.9 && s.hi > 16)
        let steps = zip(s.ticks.dropFirst(), s.ticks).map { $0.value - $1.value }
        #expect(steps.allSatisfy { abs($0 - steps[0]) < 1e-9 } && [1, 2, 2.5, 5].contains(steps[0]))
        let zeros = AxisScale(values: [0, 0], log: false, fromZero: true, integer: false)
        #expect(zeros.lo == 0 && zeros.hi > 0)
        let layers = AxisScale(values: [0, 29], log: false, fromZero: false, integer: true)
        #expect(layers.lo < 0 && layers.lo > -1 && layers.hi > 29 && layers.hi < 30)
        #expect(layers.ticks.allSatisfy { $0.value == $0.value.rounded() })
    }

    @Test func namesAreUniqueAndShortLabelsDropTheSharedPrefix() {
        #expect(Comparison.displayNames(reference: "/r/x.gguf", models: ["/a/x.gguf", "/b/x.gguf", "y.gguf"])
            == ["x", "x", "x #2", "y"])
        #expect(ComparisonCharts(syntheticComparison()).shortNames
            == ["F16", "F16 #2", "Q8_0", "Q4_K_M <b>&\"|", "Q5_0"])
    }

    @Test func fileTypeNamesFollowLlamaCpp() {
        #expect(ModelFileSummary.fileTypeName(15) == "Q4_K_M")
        #expect(ModelFileSummary.fileTypeName(3) == "Q4_1")
        #expect(ModelFileSummary.fileTypeName(7 | 1024) == "Q8_0")
        #expect(ModelFileSummary.fileTypeName(23) == "IQ3_XXS")
        #expect(ModelFileSummary.fileTypeName(999) == nil)
    }

    @Test func tensorNamesGiveLayerAndRole() {
        #expect(LayerErrorProfile.layerIndex(of: "blk.12.attn_q.weight") == 12)
        #expect(LayerErrorProfile.role(of: "blk.12.attn_q.weight") == "attn_q")
        #expect(LayerErrorProfile.layerIndex(of: "model.layers.3.self_attn.q_proj.weight") == 3)
        #expect(LayerErrorProfile.role(of: "model.layers.3.self_attn.q_proj.weight") == "self_attn.q_proj")
        #expect(LayerErrorProfile.layerIndex(of: "token_embd.weight") == nil)
        #expect(LayerErrorProfile.role(of: "token_embd.weight") == "token_embd")
        let a: [Float] = (0..<10_000).map { Float($0 % 7) - 3 }, b = a.map { $0 + 0.5 }
        let (err, ref) = LayerErrorProfile.squaredNorms(a, b)
        #expect(abs(err - 2500) < 1e-6)
        #expect(abs(ref - Double(a.reduce(0) { $0 + $1 * $1 })) < 1e-6)
    }
}

/// The value of `name="…"` in `text` (first occurrence).
func attribute(_ name: String, in text: String) -> String? {
    guard let r = text.range(of: " \(name)=\"") else { return nil }
    let rest = text[r.upperBound...]
    guard let end = rest.firstIndex(of: "\"") else { return nil }
    return String(rest[..<end])
}

/// Every `<tag …>` opening tag text in `text`.
func tags(_ tag: String, in text: String) -> [String] {
    text.components(separatedBy: "<\(tag) ").dropFirst().map { "<\(tag) " + ($0.components(separatedBy: ">").first ?? "") + ">" }
}

/// Checks that every element is closed in order (void and self-closing elements aside) and
/// that no raw `<` or `>` is left in text.
func checkTagsBalance(_ html: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let void: Set<String> = ["meta", "br", "hr", "img", "input", "link", "!DOCTYPE"]
    var stack: [String] = []
    var i = html.startIndex
    while let open = html[i...].firstIndex(of: "<") {
        #expect(!html[i..<open].contains(">"), "stray '>' in text", sourceLocation: sourceLocation)
        guard let close = html[open...].firstIndex(of: ">") else { Issue.record("unclosed tag", sourceLocation: sourceLocation); return }
        let inner = html[html.index(after: open)..<close]
        #expect(!inner.contains("<"), "'<' inside a tag", sourceLocation: sourceLocation)
        let name = String((inner.hasPrefix("/") ? inner.dropFirst() : inner).prefix { !$0.isWhitespace && $0 != "/" })
        if inner.hasPrefix("/") {
            let n = String(inner.dropFirst())
            guard stack.last == n else {
                Issue.record("</\(n)> closes <\(stack.last ?? "nothing")>", sourceLocation: sourceLocation)
                return
            }
            stack.removeLast()
        } else if !inner.hasSuffix("/") && !void.contains(name) {
            stack.append(name)
        }
        i = html.index(after: close)
        if name == "style" && !inner.hasPrefix("/") {  // CSS is text up to </style>
            guard let end = html[i...].range(of: "</style>") else { Issue.record("unclosed style"); return }
            i = end.lowerBound
        }
    }
    #expect(stack.isEmpty, "unclosed: \(stack)", sourceLocation: sourceLocation)
}
