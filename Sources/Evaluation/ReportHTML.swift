import Foundation

extension Comparison.Result {
    /// A self-contained HTML page: the comparison table, inline SVG charts (KLD and
    /// perplexity vs bits per weight with Pareto fronts, speed vs size, weight error by
    /// layer), the detailed figures and how they were measured. Inline CSS only: no
    /// scripts, fonts, images or links to fetch.
    public func htmlReport() -> String {
        let charts = ComparisonCharts(self)
        var h = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>SwiftQuant comparison — \(esc(reference.name))</title>
        <style>\(Self.css)</style>
        </head>
        <body>
        <main>
        <h1>Quantization comparison</h1>
        <p class="meta">Reference <b>\(esc(reference.name))</b> (\(esc(reference.path))) against \(models.count) model\(models.count == 1 ? "" : "s") ·
        text <code>\(esc(text))</code>: \(tokens) tokens, \(chunks) chunk\(chunks == 1 ? "" : "s") of \(context) tokens,
        \(reference.perplexity.scoredTokens) scored per model · KL divergence over the reference's top \(topK) tokens ·
        \(threads) thread\(threads == 1 ? "" : "s")</p>

        """
        h += "<h2>Summary</h2>\n" + summaryTable()
        h += "<p class=\"note\">ΔPPL is relative to the reference's perplexity on the same tokens; "
        h += "same-top is how often the model's most likely next token is the reference's. Lower-left is better in the first two charts.</p>\n"

        h += "<h2>Quality vs size</h2>\n<div class=\"row\">\n"
        h += charts.klDivergenceVsBits().render() + "\n" + charts.perplexityVsBits().render() + "\n</div>\n"

        h += "<h2>Speed</h2>\n"
        if let speed = charts.speedVsSize() {
            h += "<div class=\"row\">\n" + speed.render() + "\n" + speedNote() + "</div>\n"
        } else {
            h += "<p class=\"note\">Speed was not measured (<code>--no-bench</code>).</p>\n"
        }

        h += "<h2>Weight error by layer</h2>\n"
        if let pooled = charts.layerErrors() {
            h += "<p class=\"note\">‖W−Ŵ‖/‖W‖ of each model's dequantized 2-D weights against the reference's tensor of the same name and shape.</p>\n"
            h += pooled.render() + "\n<div class=\"row three\">\n"
            for role in layerRoles {
                if var c = charts.layerErrors(role: role, width: 370, height: 250) {
                    c.showsLegend = false
                    h += c.render() + "\n"
                }
            }
            h += "</div>\n" + outsideLayersTable()
        } else {
            h += "<p class=\"note\">No per-layer profile: the models share no 2-D tensor name and shape with the reference (or it was turned off).</p>\n"
        }
        h += "<h2>Details</h2>\n" + detailsTable()
        h += "<h2>How this was measured</h2>\n" + methodNotes()
        return h + "</main>\n</body>\n</html>\n"
    }

    private func swatch(_ color: String) -> String { "<span class=\"sw\" style=\"background:\(color)\"></span>" }

    private func summaryTable() -> String {
        var s = "<table class=\"cmp\">\n<thead><tr>"
        for (i, t) in Self.tableHeader.enumerated() { s += "<th\(Self.numericColumns.contains(i) ? " class=\"num\"" : "")>\(esc(t))</th>" }
        s += "</tr></thead>\n<tbody>\n"
        for (k, row) in tableRows.enumerated() {
            let color = k == 0 ? ComparisonCharts.referenceColor : ComparisonCharts.color(k - 1)
            s += "<tr class=\"\(k == 0 ? "reference" : "model")\">"
            for (i, cell) in row.enumerated() {
                let body = i == 0 ? swatch(color) + esc(cell) : esc(cell)
                s += "<td\(Self.numericColumns.contains(i) ? " class=\"num\"" : "")>\(body)</td>"
            }
            s += "</tr>\n"
        }
        return s + "</tbody>\n</table>\n"
    }

    private func detailsTable() -> String {
        let head = ["model", "load s", "baseline RSS", "peak RSS", "Δ RSS", "pp t/s (min–max)", "tg t/s (min–max)",
                    "median KLD", "99% KLD", "max KLD", "RMS Δp %", "PPL ratio ± err"]
        var s = "<table class=\"cmp details\">\n<thead><tr>"
        for (i, t) in head.enumerated() { s += "<th\(i > 0 ? " class=\"num\"" : "")>\(esc(t))</th>" }
        s += "</tr></thead>\n<tbody>\n"
        for (k, m) in ([reference] + models).enumerated() {
            let kl = m.klDivergence
            let cells: [String] = [
                k == 0 ? m.name + " (reference)" : m.name,
                String(format: "%.2f", m.loadSeconds),
                m.memory.map { formatByteCount($0.baselineBytes) } ?? "—",
                m.memory.map { formatByteCount($0.peakBytes) } ?? "—",
                m.memory.map { formatByteCount($0.deltaBytes) } ?? "—",
                m.bench.map { String(format: "%.1f–%.1f", $0.pp.min, $0.pp.max) } ?? "—",
                m.bench.map { String(format: "%.2f–%.2f", $0.tg.min, $0.tg.max) } ?? "—",
                kl.map { String(format: "%.6f", $0.medianKLD) } ?? "—",
                kl.map { String(format: "%.6f", $0.p99KLD) } ?? "—",
                kl.map { String(format: "%.6f", $0.maxKLD) } ?? "—",
                kl.map { String(format: "%.3f", 100 * $0.rmsDeltaP) } ?? "—",
                kl.map { String(format: "%.5f ± %.5f", $0.perplexityRatio, $0.perplexityRatioError) } ?? "—",
            ]
            s += "<tr class=\"\(k == 0 ? "reference" : "model")\">"
            for (i, c) in cells.enumerated() { s += "<td\(i > 0 ? " class=\"num\"" : "")>\(esc(c))</td>" }
            s += "</tr>\n"
        }
        return s + "</tbody>\n</table>\n"
    }

    /// Embedding, output head and other tensors without a layer index.
    private func outsideLayersTable() -> String {
        var names: [String] = []
        for m in models { for t in m.tensorErrors ?? [] where t.layer == nil && !names.contains(t.name) { names.append(t.name) } }
        guard !names.isEmpty else { return "" }
        var s = "<h3>Tensors outside the layers</h3>\n<table class=\"cmp narrow\">\n<thead><tr><th>model</th>"
        for n in names { s += "<th class=\"num\">\(esc(n))</th>" }
        s += "</tr></thead>\n<tbody>\n"
        for (i, m) in models.enumerated() {
            s += "<tr class=\"model\"><td>\(swatch(ComparisonCharts.color(i)))\(esc(m.name))</td>"
            for n in names {
                let t = m.tensorErrors?.first { $0.name == n }
                s += "<td class=\"num\">\(t.map { esc(String(format: "%.5f", $0.relativeRMSE) + " (" + $0.type + ")") } ?? "—")</td>"
            }
            s += "</tr>\n"
        }
        return s + "</tbody>\n</table>\n"
    }

    private func speedNote() -> String {
        guard let b = ([reference] + models).compactMap(\.bench).first else { return "" }
        var s = "<div class=\"side\"><p class=\"note\">Median of \(benchRepetitions) repetition\(benchRepetitions == 1 ? "" : "s"): "
        s += "pp\(b.promptTokens) processes a \(b.promptTokens)-token prompt in one batch; tg\(b.generatedTokens) generates "
        s += "\(b.generatedTokens) tokens one at a time. The machine is shared, so compare rows with each other rather than with other runs.</p>"
        s += "<table class=\"cmp narrow\"><thead><tr><th>model</th><th class=\"num\">size</th><th class=\"num\">pp t/s</th><th class=\"num\">tg t/s</th></tr></thead><tbody>\n"
        for (k, m) in ([reference] + models).enumerated() {
            guard let mb = m.bench else { continue }
            let color = k == 0 ? ComparisonCharts.referenceColor : ComparisonCharts.color(k - 1)
            s += "<tr><td>\(swatch(color))\(esc(k == 0 ? m.name + " (reference)" : m.name))</td><td class=\"num\">\(formatByteCount(m.file.fileSize))</td>"
            s += "<td class=\"num\">\(String(format: "%.1f", mb.pp.median))</td><td class=\"num\">\(String(format: "%.2f", mb.tg.median))</td></tr>\n"
        }
        return s + "</tbody></table></div>\n"
    }

    private func methodNotes() -> String {
        let method = ([reference] + models).compactMap(\.memory).first?.method
        var items = [
            "Perplexity follows llama.cpp: the text is cut into chunks of \(context) tokens, each evaluated from an empty cache, and only the second half of each chunk is scored.",
            "KL divergence is KL(reference ‖ model) per scored position over the reference's top \(topK) tokens plus one bucket for the rest of the vocabulary — a tight lower bound of the full KL.",
            "Bits per weight is the tensor data of the whole file × 8 / its parameters (embedding, head and norms included); size is the file on disk; the type is GGUF <code>general.file_type</code> when present, else the tensor type holding the most bytes.",
            "Weight error decodes each 2-D tensor of the model and the reference's tensor of the same name and shape to f32, one pair at a time, and pools per layer as √(Σ‖W−Ŵ‖² / Σ‖W‖²).",
        ]
        if let method {
            items.append("Peak memory is the process's peak resident size while the model was loaded, evaluated and benchmarked (\(esc(method.rawValue))). Models run one at a time in one process; the details give the resident size just before each model (baseline) and what the model added (Δ).")
        }
        return "<ul class=\"notes\">\n" + items.map { "<li>\($0)</li>" }.joined(separator: "\n") + "\n</ul>\n"
    }

    static let css = """

    body { margin: 0; background: #fff; color: #1d1d1f; font: 14px/1.45 -apple-system, "Segoe UI", "DejaVu Sans", Helvetica, Arial, sans-serif; }
    main { max-width: 1160px; margin: 0 auto; padding: 20px 20px 40px; }
    h1 { font-size: 24px; margin: 8px 0 4px; }
    h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #e3e3e3; padding-bottom: 4px; }
    h3 { font-size: 15px; margin: 18px 0 6px; }
    p.meta { color: #555; margin: 0 0 8px; }
    p.note { color: #555; font-size: 13px; margin: 6px 0; }
    code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12.5px; background: #f4f4f6; padding: 0 3px; border-radius: 3px; }
    table.cmp { border-collapse: collapse; width: 100%; font-size: 12.5px; margin: 6px 0; }
    table.cmp.narrow { width: auto; }
    table.cmp th, table.cmp td { padding: 4px 7px; border-bottom: 1px solid #e6e6e6; text-align: left; white-space: nowrap; }
    table.cmp th { background: #f4f4f6; font-weight: 600; border-bottom: 1px solid #ccc; }
    table.cmp.details th { white-space: normal; }
    table.cmp .num { text-align: right; font-variant-numeric: tabular-nums; }
    table.cmp tr.reference td { background: #fafaf2; }
    .sw { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 6px; vertical-align: -1px; }
    .row { display: flex; flex-wrap: wrap; gap: 20px; align-items: flex-start; }
    .row .side { flex: 1; min-width: 300px; }
    .row.three { gap: 10px; margin-top: 10px; }
    ul.notes { color: #444; font-size: 13px; padding-left: 20px; }
    svg.chart { display: block; background: #fff; max-width: 100%; height: auto; }
    svg.chart text { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; fill: #333; }
    svg.chart .title { font-size: 13.5px; font-weight: 600; }
    svg.chart .tl { font-size: 11px; fill: #555; }
    svg.chart .al { font-size: 12px; }
    svg.chart .pl { font-size: 11px; fill: #222; paint-order: stroke; stroke: #fff; stroke-width: 3px; }
    svg.chart .lg { font-size: 12px; }
    svg.chart .area { fill: #fcfcfd; stroke: #d0d0d0; }
    svg.chart .grid { stroke: #e8e8e8; }
    svg.chart .grid.minor { stroke: #f3f3f3; }
    svg.chart .tick, svg.chart .axis { stroke: #666; }
    svg.chart .front { fill: none; stroke: #888; stroke-width: 1.5; stroke-dasharray: 5 4; }
    svg.chart .ring { fill: none; stroke: #222; stroke-width: 1.3; }
    svg.chart .series { fill: none; stroke-width: 2; }
    svg.chart .pt { stroke-width: 1.6; }
    svg.chart .lgl { stroke-width: 2.5; }

    """
}
