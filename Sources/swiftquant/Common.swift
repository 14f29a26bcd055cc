import ArgumentParser
import Foundation
import Models
import Tensors

/// Options every compute-heavy subcommand takes.
struct ComputeOptions: ParsableArguments {
    @Option(name: [.short, .long], help: "Worker threads (default: all cores).")
    var threads: Int?

    @Flag(name: .long, help: "No progress output on stderr.")
    var quiet = false

    /// Applies the thread count to the library and to BLAS.
    func apply() {
        let n = max(1, threads ?? Threads.defaultCount)
        Threads.count = n
        BLAS.setThreads(n)
    }
}

/// How subcommands that run a model keep its weights.
struct WeightOptions: ParsableArguments {
    @Flag(name: .customLong("f32"),
          help: "Decode every weight to f32 (the reference path) instead of computing on the file's quantized blocks.")
    var f32 = false

    /// The loader mode these options ask for.
    var mode: WeightMode { f32 ? .f32 : .native }
}

/// Prints `value` as pretty, key-sorted JSON on stdout.
func printJSON<T: Encodable>(_ value: T) throws {
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try enc.encode(value), as: UTF8.self))
}

/// Formats a byte count as MiB/GiB text.
func formatBytes(_ n: Int) -> String {
    let d = Double(n)
    if n >= 1 << 30 { return String(format: "%.2f GiB", d / Double(1 << 30)) }
    if n >= 1 << 20 { return String(format: "%.2f MiB", d / Double(1 << 20)) }
    if n >= 1 << 10 { return String(format: "%.1f KiB", d / 1024) }
    return "\(n) B"
}

/// A plain text table with right-aligned numeric columns.
func renderTable(_ header: [String], _ rows: [[String]], rightAligned: Set<Int> = []) -> String {
    var widths = header.map(\.count)
    for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in
            let pad = String(repeating: " ", count: widths[i] - c.count)
            return rightAligned.contains(i) ? pad + c : c + pad
        }.joined(separator: "  ")
    }
    return ([line(header), widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")] + rows.map(line))
        .joined(separator: "\n")
}

/// Reads a whole text file, with an error naming it.
func readText(_ path: String) throws -> String {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw ValidationError("\(path): cannot read the file")
    }
    return String(decoding: data, as: UTF8.self)
}
