import Foundation

/// A hand-written SVG chart: axes with ticks and labels (linear or log), markers, lines, an
/// optional Pareto staircase, and a legend below the plot. Used by the HTML report.
///
/// Every marker is a `<circle class="pt">` and every data line a `<polyline class="series">`,
/// drawn inside the rectangle named by the root's `data-plot-area="x0 y0 x1 y1"`, so tests
/// can check the geometry without a browser.
public struct SVGChart {
    /// One point of a series.
    public struct Point {
        /// Data coordinates.
        public var x: Double, y: Double
        /// Text written beside the marker (nil: none).
        public var label: String?
        /// Draw a ring around the marker (e.g. a Pareto-front member).
        public var emphasized = false
        /// A point.
        public init(x: Double, y: Double, label: String? = nil, emphasized: Bool = false) {
            self.x = x
            self.y = y
            self.label = label
            self.emphasized = emphasized
        }
    }
    /// Points of one colour and marker style.
    public struct Series {
        /// Name for the legend (nil: not in the legend).
        public var name: String?
        /// CSS colour.
        public var color: String
        /// Its points.
        public var points: [Point]
        /// Join the points with a line.
        public var connected = false
        /// Hollow markers (e.g. prompt processing beside generation's filled ones).
        public var hollow = false
        /// A series.
        public init(name: String?, color: String, points: [Point], connected: Bool = false, hollow: Bool = false) {
            self.name = name
            self.color = color
            self.points = points
            self.connected = connected
            self.hollow = hollow
        }
    }
    /// A legend entry that is not a series (marker meanings).
    public struct LegendNote {
        /// The text.
        public var text: String
        /// The symbol drawn before it.
        public var symbol: Symbol
        /// Legend symbols.
        public enum Symbol {
            /// A filled marker.
            case filled
            /// A hollow marker.
            case hollow
            /// The ring drawn around emphasized points.
            case ring
            /// The dashed Pareto staircase.
            case dashedLine
            /// A short solid line (a connected series).
            case line
            /// No symbol.
            case none
        }
        /// A legend note.
        public init(_ text: String, symbol: Symbol) {
            self.text = text
            self.symbol = symbol
        }
    }

    /// Title above the plot.
    public var title: String
    /// Axis labels.
    public var xLabel: String, yLabel: String
    /// Logarithmic axes (non-positive values are drawn at the axis floor).
    public var xLog = false, yLog = false
    /// Include zero in the y range (linear axis only).
    public var yFromZero = false
    /// Only whole-number ticks on x (e.g. layer indices).
    public var xIntegerTicks = false
    /// Overall size in pixels (the legend adds height below).
    public var width = 560.0, height = 360.0
    /// The data.
    public var series: [Series] = []
    /// Points of a Pareto front (lower-left better), joined by a dashed staircase.
    public var front: [(x: Double, y: Double)] = []
    /// Extra legend entries after the series.
    public var notes: [LegendNote] = []
    /// Draw the legend (small multiples leave it to a larger chart beside them).
    public var showsLegend = true

    /// An empty chart with a title and axis labels.
    public init(title: String, xLabel: String, yLabel: String) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
    }

    static let margin = (left: 70.0, right: 18.0, top: 34.0, bottom: 50.0)

    /// The plot rectangle `(x0, y0, x1, y1)` in pixels.
    public var plotArea: (x0: Double, y0: Double, x1: Double, y1: Double) {
        (Self.margin.left, Self.margin.top, width - Self.margin.right, height - Self.margin.bottom)
    }

    /// The chart as an `<svg>` element.
    public func render() -> String {
        let a = plotArea
        let all = series.flatMap(\.points)
        let xs = AxisScale(values: all.map(\.x), log: xLog, fromZero: false, integer: xIntegerTicks)
        let ys = AxisScale(values: all.map(\.y), log: yLog, fromZero: yFromZero, integer: false)
        func px(_ x: Double) -> Double { xs.position(x, from: a.x0, to: a.x1) }
        func py(_ y: Double) -> Double { ys.position(y, from: a.y1, to: a.y0) }

        let legend = showsLegend ? legendItems() : []
        let legendRows = Self.layoutLegend(legend, width: width - 24)
        let totalHeight = height + Double(legendRows.count) * 20 + (legendRows.isEmpty ? 0 : 6)
        var s = "<svg class=\"chart\" viewBox=\"0 0 \(num(width)) \(num(totalHeight))\" width=\"\(num(width))\" height=\"\(num(totalHeight))\""
        s += " role=\"img\" aria-label=\"\(esc(title))\" data-plot-area=\"\(num(a.x0)) \(num(a.y0)) \(num(a.x1)) \(num(a.y1))\">\n"
        s += "<title>\(esc(title))</title>\n"
        s += "<text class=\"title\" x=\"\(num(a.x0))\" y=\"20\">\(esc(title))</text>\n"
        s += "<rect class=\"area\" x=\"\(num(a.x0))\" y=\"\(num(a.y0))\" width=\"\(num(a.x1 - a.x0))\" height=\"\(num(a.y1 - a.y0))\"/>\n"
        // Grid and ticks.
        for t in xs.ticks {
            let x = px(t.value)
            s += "<line class=\"grid\(t.major ? "" : " minor")\" x1=\"\(num(x))\" y1=\"\(num(a.y0))\" x2=\"\(num(x))\" y2=\"\(num(a.y1))\"/>"
            s += "<line class=\"tick\" x1=\"\(num(x))\" y1=\"\(num(a.y1))\" x2=\"\(num(x))\" y2=\"\(num(a.y1 + 5))\"/>"
            if let l = t.label { s += "<text class=\"tl\" x=\"\(num(x))\" y=\"\(num(a.y1 + 18))\" text-anchor=\"middle\">\(l)</text>" }
            s += "\n"
        }
        for t in ys.ticks {
            let y = py(t.value)
            s += "<line class=\"grid\(t.major ? "" : " minor")\" x1=\"\(num(a.x0))\" y1=\"\(num(y))\" x2=\"\(num(a.x1))\" y2=\"\(num(y))\"/>"
            s += "<line class=\"tick\" x1=\"\(num(a.x0 - 5))\" y1=\"\(num(y))\" x2=\"\(num(a.x0))\" y2=\"\(num(y))\"/>"
            if let l = t.label { s += "<text class=\"tl\" x=\"\(num(a.x0 - 8))\" y=\"\(num(y + 4))\" text-anchor=\"end\">\(l)</text>" }
            s += "\n"
        }
        s += "<line class=\"axis\" x1=\"\(num(a.x0))\" y1=\"\(num(a.y1))\" x2=\"\(num(a.x1))\" y2=\"\(num(a.y1))\"/>"
        s += "<line class=\"axis\" x1=\"\(num(a.x0))\" y1=\"\(num(a.y0))\" x2=\"\(num(a.x0))\" y2=\"\(num(a.y1))\"/>\n"
        s += "<text class=\"al\" x=\"\(num((a.x0 + a.x1) / 2))\" y=\"\(num(a.y1 + 38))\" text-anchor=\"middle\">\(esc(xLabel))\(xLog ? " (log scale)" : "")</text>\n"
        s += "<text class=\"al\" transform=\"translate(16 \(num((a.y0 + a.y1) / 2))) rotate(-90)\" text-anchor=\"middle\">\(esc(yLabel))\(yLog ? " (log scale)" : "")</text>\n"

        // Pareto staircase: right along y_i, then down to the next point.
        if front.count >= 1 {
            var pts: [(Double, Double)] = []
            for (i, p) in front.enumerated() {
                if i > 0 { pts.append((px(p.x), py(front[i - 1].y))) }
                pts.append((px(p.x), py(p.y)))
            }
            s += "<polyline class=\"front\" points=\"\(pts.map { "\(num($0.0)),\(num($0.1))" }.joined(separator: " "))\"/>\n"
        }
        // Lines, then markers, then labels on top.
        for se in series where se.connected && se.points.count > 1 {
            let pts = se.points.map { "\(num(px($0.x))),\(num(py($0.y)))" }.joined(separator: " ")
            s += "<polyline class=\"series\" stroke=\"\(se.color)\" points=\"\(pts)\"/>\n"
        }
        var labels: [(x: Double, y: Double, lines: [String])] = []
        for se in series {
            let r = se.connected ? 2.6 : 5.0
            for p in se.points {
                let (x, y) = (px(p.x), py(p.y))
                if p.emphasized {
                    s += "<circle class=\"ring\" cx=\"\(num(x))\" cy=\"\(num(y))\" r=\"\(num(r + 4))\"/>"
                }
                s += "<circle class=\"pt\" cx=\"\(num(x))\" cy=\"\(num(y))\" r=\"\(num(r))\" "
                s += se.hollow ? "fill=\"#fff\" stroke=\"\(se.color)\"" : "fill=\"\(se.color)\""
                s += "><title>\(esc(pointTitle(se, p)))</title></circle>\n"
                if let l = p.label {
                    if let i = labels.firstIndex(where: { abs($0.x - x) < 4 && abs($0.y - y) < 4 }) {
                        if !labels[i].lines.contains(l) { labels[i].lines.append(l) }
                    } else {
                        labels.append((x, y, [l]))
                    }
                }
            }
        }
        // One name per line, to the right of the marker (left when it would run past the
        // plot), moved up or down by whole lines until it overlaps no label placed before it.
        var placed: [(x0: Double, y0: Double, x1: Double, y1: Double)] = series.filter { !$0.connected }
            .flatMap(\.points).map { p in (px(p.x) - 6, py(p.y) - 6, px(p.x) + 6, py(p.y) + 6) }
        for l in labels {
            let textWidth = Double(l.lines.map(\.count).max() ?? 0) * 6.3
            let height = 13 * Double(l.lines.count)
            let start = l.y - 7 - 13 * Double(l.lines.count - 1)
            let rightFits = l.x + 9 + textWidth <= a.x1 || l.x - 9 - textWidth < 0
            let leftFits = l.x - 9 - textWidth >= a.x0 - 60
            func box(_ left: Bool, _ top: Double) -> (x0: Double, y0: Double, x1: Double, y1: Double) {
                left ? (l.x - 9 - textWidth, top - 10, l.x - 9, top - 10 + height)
                    : (l.x + 9, top - 10, l.x + 9 + textWidth, top - 10 + height)
            }
            func fits(_ left: Bool, _ top: Double) -> Bool {
                let b = box(left, top)
                guard b.y0 >= a.y0, b.y1 <= a.y1 + 4 else { return false }
                return !placed.contains { p in p.x0 < b.x1 && b.x0 < p.x1 && p.y0 < b.y1 && b.y0 < p.y1 }
            }
            // Beside the marker on either side first, then moved up or down by whole lines.
            let sides = rightFits && leftFits ? [false, true] : [!rightFits]
            var choice = (left: !rightFits, top: max(a.y0 + 10, start))
            search: for k in 0..<17 {
                let shift: Double = Double((k + 1) / 2) * (k % 2 == 1 ? 13.0 : -13.0)
                for left in sides where fits(left, start + shift) {
                    choice = (left, start + shift)
                    break search
                }
            }
            placed.append(box(choice.left, choice.top))
            let x = choice.left ? l.x - 9 : l.x + 9
            s += "<text class=\"pl\" x=\"\(num(x))\" y=\"\(num(choice.top))\" text-anchor=\"\(choice.left ? "end" : "start")\">"
            for (i, line) in l.lines.enumerated() {
                s += "<tspan x=\"\(num(x))\" dy=\"\(i == 0 ? 0 : 13)\">\(esc(line))</tspan>"
            }
            s += "</text>\n"
        }
        // Legend rows below the axis label.
        var y = height + 10
        for row in legendRows {
            var x = 12.0
            for item in row {
                s += legendSymbol(item, x: x, y: y)
                s += "<text class=\"lg\" x=\"\(num(x + 20))\" y=\"\(num(y + 4))\">\(esc(item.text))</text>"
                x += item.width
            }
            s += "\n"
            y += 20
        }
        return s + "</svg>"
    }

    struct LegendItem { var text: String; var color: String; var symbol: LegendNote.Symbol; var width: Double }

    private func legendItems() -> [LegendItem] {
        var out: [LegendItem] = []
        for se in series {
            guard let n = se.name, !out.contains(where: { $0.text == n }) else { continue }
            out.append(LegendItem(text: n, color: se.color, symbol: se.connected ? .line : (se.hollow ? .hollow : .filled),
                                  width: 0))
        }
        out += notes.map { LegendItem(text: $0.text, color: "#555", symbol: $0.symbol, width: 0) }
        // Widths from an average glyph width of 6.6 px at 12 px.
        return out.map { var i = $0; i.width = 34 + Double(i.text.count) * 6.6; return i }
    }

    static func layoutLegend(_ items: [LegendItem], width: Double) -> [[LegendItem]] {
        var rows: [[LegendItem]] = [], row: [LegendItem] = [], used = 0.0
        for i in items {
            if !row.isEmpty && used + i.width > width { rows.append(row); row = []; used = 0 }
            row.append(i)
            used += i.width
        }
        if !row.isEmpty { rows.append(row) }
        return rows
    }

    private func legendSymbol(_ i: LegendItem, x: Double, y: Double) -> String {
        switch i.symbol {
        case .filled: return "<circle class=\"lgm\" cx=\"\(num(x + 8))\" cy=\"\(num(y))\" r=\"5\" fill=\"\(i.color)\"/>"
        case .hollow: return "<circle class=\"lgm\" cx=\"\(num(x + 8))\" cy=\"\(num(y))\" r=\"5\" fill=\"#fff\" stroke=\"\(i.color)\"/>"
        case .ring: return "<circle class=\"ring\" cx=\"\(num(x + 8))\" cy=\"\(num(y))\" r=\"7\"/>"
        case .dashedLine: return "<line class=\"front\" x1=\"\(num(x))\" y1=\"\(num(y))\" x2=\"\(num(x + 16))\" y2=\"\(num(y))\"/>"
        case .none: return ""
        case .line: return "<line class=\"lgl\" stroke=\"\(i.color)\" x1=\"\(num(x))\" y1=\"\(num(y))\" x2=\"\(num(x + 16))\" y2=\"\(num(y))\"/>"
        }
    }

    private func pointTitle(_ se: Series, _ p: Point) -> String {
        let name = [se.name, p.label].compactMap { $0 }.joined(separator: " — ")
        return "\(name): \(xLabel) \(fmtValue(p.x)), \(yLabel) \(fmtValue(p.y))"
    }
}

/// The mapping of one axis from data to pixels, with its ticks.
struct AxisScale {
    struct Tick { var value: Double; var label: String?; var major: Bool }
    var lo: Double, hi: Double, log: Bool
    var ticks: [Tick] = []

    init(values: [Double], log: Bool, fromZero: Bool, integer: Bool) {
        self.log = log
        let finite = values.filter { $0.isFinite && (!log || $0 > 0) }
        if log {
            var mn = finite.min() ?? 1e-3, mx = finite.max() ?? 1
            if mx / mn < 3 { mn /= 1.8; mx *= 1.8 }  // keep at least a few ticks in view
            lo = pow(10, floor(log10(mn / 1.15)))
            hi = pow(10, ceil(log10(mx * 1.15)))
            let decades = Int((log10(hi) - log10(lo)).rounded())
            let steps: [Double] = decades <= 2 ? [1, 2, 5] : [1]
            let labelEvery = max(1, decades / 6)
            for k in 0...decades {
                let base = lo * pow(10, Double(k))
                for (j, m) in steps.enumerated() where base * m <= hi * 1.0001 {
                    let v = base * m
                    ticks.append(Tick(value: v, label: j == 0 && k % labelEvery == 0 || decades <= 1 ? fmtTick(v) : nil,
                                      major: j == 0))
                }
            }
        } else {
            var mn = finite.min() ?? 0, mx = finite.max() ?? 1
            if fromZero { mn = min(mn, 0); mx = max(mx, 0) }
            if mx - mn < 1e-12 * max(1, abs(mx)) {
                if fromZero && mn == 0 { mx = 1 } else { mn -= max(0.5, abs(mn) * 0.1); mx += max(0.5, abs(mx) * 0.1) }
            }
            let pad = (mx - mn) * 0.07
            let padLo = fromZero && mn == 0 ? 0 : pad
            var step = Self.niceStep((mx - mn + pad + padLo) / 5)
            if integer {
                // Whole-number data (layer indices): just past the first and last value.
                step = max(1, step.rounded())
                lo = mn - max(0.6, (mx - mn) * 0.02)
                hi = mx + max(0.6, (mx - mn) * 0.02)
            } else {
                lo = floor((mn - padLo) / step) * step
                hi = ceil((mx + pad) / step) * step
            }
            let decimals = integer ? 0
                : max(0, Int(-floor(log10(step) + 1e-9)) + (step / pow(10, floor(log10(step))) == 2.5 ? 1 : 0))
            var v = ceil(lo / step - 1e-9) * step
            while v <= hi + step * 1e-6 {
                ticks.append(Tick(value: v, label: String(format: "%.\(decimals)f", abs(v) < step * 1e-6 ? 0 : v), major: true))
                v += step
            }
        }
    }

    static func niceStep(_ raw: Double) -> Double {
        guard raw > 0, raw.isFinite else { return 1 }
        let mag = pow(10, floor(log10(raw)))
        for m in [1.0, 2, 2.5, 5, 10] where m * mag >= raw * 0.999 { return m * mag }
        return 10 * mag
    }

    /// Pixel position of `v` between `a` (at `lo`) and `b` (at `hi`); values outside the
    /// range (or non-positive on a log axis) are clamped to it.
    func position(_ v: Double, from a: Double, to b: Double) -> Double {
        var t: Double
        if log {
            t = v > 0 ? (log10(v) - log10(lo)) / (log10(hi) - log10(lo)) : 0
        } else {
            t = (v - lo) / (hi - lo)
        }
        if !t.isFinite { t = 0 }
        t = min(1, max(0, t))
        return a + (b - a) * t
    }
}

/// Tick text for a log axis: plain decimals for 1e-3…1e4, else `1e-5` style.
func fmtTick(_ v: Double) -> String {
    let e = log10(v)
    if e >= -3 && e < 4.5 {
        var s = String(format: "%.4f", v)
        while s.contains(".") && (s.hasSuffix("0") || s.hasSuffix(".")) { s.removeLast() }
        return s
    }
    let k = Int(floor(e + 1e-9)), m = v / pow(10, Double(k))
    return abs(m - 1) < 1e-6 ? "1e\(k)" : String(format: "%.0fe%d", m, k)
}

/// A value for a tooltip.
func fmtValue(_ v: Double) -> String {
    if v == 0 { return "0" }
    if abs(v) >= 1000 || abs(v) < 0.01 { return String(format: "%.3g", v) }
    return String(format: "%.4g", v)
}

/// A pixel coordinate with at most one decimal.
func num(_ v: Double) -> String {
    let r = (v * 10).rounded() / 10
    return r == r.rounded() ? String(Int(r)) : String(format: "%.1f", r)
}

/// Escapes text for HTML and SVG content and attributes.
func esc(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.count)
    for c in s {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.append(c)
        }
    }
    return out
}
