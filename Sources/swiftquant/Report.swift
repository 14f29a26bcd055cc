import ArgumentParser
import Evaluation
import Foundation

/// `swiftquant report`: renders a saved comparison (`compare --report X.json`) again, in any report format.
struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write HTML, Markdown or JSON reports from a comparison saved as JSON, without running the models again.",
        discussion: """
        Example:
          swiftquant compare REF.gguf Q4_0.gguf -f test.txt --chunks 8 --report run.json
          swiftquant report run.json run.html README-table.md
        """)

    @Argument(help: "A comparison written by `compare --report FILE.json`.") var input: String
    @Argument(help: "Reports to write: .html, .md or .json.") var outputs: [String] = []

    func validate() throws {
        guard !outputs.isEmpty else { throw ValidationError("give at least one report to write") }
        for o in outputs where ReportFormat(path: o) == nil {
            throw ValidationError("\(o): unknown report format (use .html, .md or .json)")
        }
    }

    func run() throws {
        guard let data = FileManager.default.contents(atPath: input) else {
            throw ValidationError("\(input): cannot read the file")
        }
        let result: Comparison.Result
        do { result = try Comparison.Result.decode(json: data) } catch {
            throw ValidationError("\(input): not a comparison written by `swiftquant compare` (\(error))")
        }
        for o in outputs {
            try result.writeReport(to: o)
            print("wrote \(o)")
        }
    }
}
