import ArgumentParser

/// The `swiftquant` command: one subcommand per job.
@main
struct SwiftQuantCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swiftquant",
        abstract: "Quantize, inspect, run and evaluate LLMs on the CPU.",
        subcommands: [Inspect.self, Quantize.self, ExportHF.self, IMatrix.self, Generate.self, Chat.self, Perplexity.self,
                      Bench.self, Compare.self, Report.self, FakeQuant.self, Observers.self, RepeatBlocks.self]
    )
}
