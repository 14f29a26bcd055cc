import Foundation

/// The forms a comparison report takes.
public enum ReportFormat: String, CaseIterable, Codable, Sendable {
    /// A self-contained HTML page with SVG charts.
    case html
    /// The comparison table in Markdown, for a README.
    case markdown
    /// The whole `Comparison.Result` as JSON.
    case json

    /// The format a file name asks for by its extension (`.html`/`.htm`, `.md`/`.markdown`,
    /// `.json`), or nil for any other.
    public init?(path: String) {
        switch (path as NSString).pathExtension.lowercased() {
        case "html", "htm": self = .html
        case "md", "markdown": self = .markdown
        case "json": self = .json
        default: return nil
        }
    }
}

extension Comparison.Result {
    /// The comparison table in GitHub-flavoured Markdown, with a one-line caption of the setup.
    public func markdownReport() -> String {
        func cell(_ s: String) -> String { s.replacingOccurrences(of: "|", with: "\\|") }
        var s = "| " + Self.tableHeader.map(cell).joined(separator: " | ") + " |\n"
        s += "|" + Self.tableHeader.indices.map { Self.numericColumns.contains($0) ? " ---: |" : " --- |" }.joined() + "\n"
        for row in tableRows { s += "| " + row.map(cell).joined(separator: " | ") + " |\n" }
        var caption = "\(text): \(chunks) chunk\(chunks == 1 ? "" : "s") of \(context) tokens "
        caption += "(\(reference.perplexity.scoredTokens) scored); KLD against the reference's top \(topK) tokens"
        if benchRepetitions > 0, let b = ([reference] + models).compactMap(\.bench).first {
            caption += "; speed: median of \(benchRepetitions), pp\(b.promptTokens) / tg\(b.generatedTokens), \(threads) thread\(threads == 1 ? "" : "s")"
        }
        if let m = ([reference] + models).compactMap(\.memory).first {
            caption += "; peak memory: \(m.method == .resetHighWaterMark ? "per-model process peak RSS" : "process peak RSS (upper bound)")"
        }
        return s + "\n*" + cell(caption).replacingOccurrences(of: "*", with: "\\*") + ".*\n"
    }

    /// The whole comparison as pretty, key-sorted JSON (non-finite numbers as `"inf"`, `"-inf"`, `"nan"`).
    public func jsonReport() throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        var data = try enc.encode(self)
        data.append(0x0A)
        return data
    }

    /// Reads a comparison written by `jsonReport()`.
    public static func decode(json data: Data) throws -> Comparison.Result {
        let dec = JSONDecoder()
        dec.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try dec.decode(Comparison.Result.self, from: data)
    }

    /// The report in `format`, as bytes.
    public func report(_ format: ReportFormat) throws -> Data {
        switch format {
        case .html: return Data(htmlReport().utf8)
        case .markdown: return Data(markdownReport().utf8)
        case .json: return try jsonReport()
        }
    }

    /// Writes the report to `path`, in `format` or the one its extension names, atomically.
    /// Throws `ReportError.unknownFormat` for an extension that names none.
    public func writeReport(to path: String, format: ReportFormat? = nil) throws {
        guard let fmt = format ?? ReportFormat(path: path) else { throw ReportError.unknownFormat(path: path) }
        try writeAtomically(try report(fmt), to: path)
    }
}

/// Errors of the report writers.
public enum ReportError: Error, CustomStringConvertible, Equatable {
    /// The file name does not end in .html, .md or .json.
    case unknownFormat(path: String)
    /// The file could not be written.
    case cannotWrite(path: String, reason: String)

    /// A one-line message naming the file.
    public var description: String {
        switch self {
        case let .unknownFormat(path): return "\(path): unknown report format (use .html, .md or .json)"
        case let .cannotWrite(path, reason): return "\(path): cannot write the report: \(reason)"
        }
    }
}

/// Writes `data` to a temporary file beside `path` and renames it into place, so readers
/// see the old file or the whole new one, never a part.
public func writeAtomically(_ data: Data, to path: String) throws {
    let url = URL(fileURLWithPath: path)
    let tmp = url.deletingLastPathComponent()
        .appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    do {
        try data.write(to: tmp)
    } catch {
        throw ReportError.cannotWrite(path: path, reason: "\(error.localizedDescription)")
    }
    guard rename(tmp.path, url.path) == 0 else {
        let reason = String(cString: strerror(errno))
        try? FileManager.default.removeItem(at: tmp)
        throw ReportError.cannotWrite(path: path, reason: reason)
    }
}
