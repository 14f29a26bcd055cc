import Foundation

/// Progress of long work on stderr: a bar with rate and ETA when stderr is a terminal,
/// plain periodic lines otherwise, nothing when quiet.
public final class Progress {
    private let label: String
    private let total: Int
    private let quiet: Bool
    private let tty: Bool
    private let start = Date()
    private var lastPrint = Date.distantPast
    private var done = 0

    /// Progress over `total` units of work called `label`.
    public init(_ label: String, total: Int, quiet: Bool = false) {
        self.label = label
        self.total = max(total, 1)
        self.quiet = quiet
        tty = isatty(STDERR_FILENO) != 0
    }

    /// Marks `units` more done, with an optional note (e.g. a running value).
    public func advance(_ units: Int = 1, note: String = "") {
        done += units
        guard !quiet else { return }
        let now = Date()
        let finished = done >= total
        guard finished || now.timeIntervalSince(lastPrint) >= (tty ? 0.1 : 5) else { return }
        lastPrint = now
        let elapsed = now.timeIntervalSince(start)
        let rate = Double(done) / max(elapsed, 1e-9)
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let frac = Double(done) / Double(total)
        if tty {
            let width = 24, filled = Int(frac * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            let line = "\r\(label) [\(bar)] \(done)/\(total) \(Self.format(rate))/s ETA \(Self.time(eta)) \(note)"
            FileHandle.standardError.write(Data((line + "\u{1B}[K" + (finished ? "\n" : "")).utf8))
        } else {
            let line = "\(label): \(done)/\(total) (\(Int(frac * 100))%) \(Self.format(rate))/s ETA \(Self.time(eta)) \(note)\n"
            FileHandle.standardError.write(Data(line.utf8))
        }
    }

    /// Writes a plain message line to stderr unless quiet.
    public static func log(_ message: String, quiet: Bool = false) {
        if !quiet { FileHandle.standardError.write(Data((message + "\n").utf8)) }
    }

    static func format(_ v: Double) -> String { v >= 100 ? String(format: "%.0f", v) : String(format: "%.2f", v) }
    static func time(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? "\(t / 3600)h\(t % 3600 / 60)m" : t >= 60 ? "\(t / 60)m\(t % 60)s" : "\(t)s"
    }
}
