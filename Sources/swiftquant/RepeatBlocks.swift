import ArgumentParser
import Formats
import Foundation

/// `swiftquant repeat-blocks`: a deeper synthetic model for scaling measurements.
struct RepeatBlocks: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repeat-blocks",
        abstract: "Write a synthetic GGUF whose transformer blocks are the input's, repeated N times (for memory and time scaling benchmarks).",
        discussion: """
        Block tensors blk.N.* are written TIMES times (copy k as block N + k·L), block_count is
        multiplied, everything else is copied. The result has the input's block shapes and
        types at TIMES × the depth; it is not a trained model.

        Example:
          swiftquant repeat-blocks f32.gguf deep4x.gguf --times 4
        """)

    @Argument(help: "Input GGUF file.") var input: String
    @Argument(help: "Output GGUF file (written to a temporary file, renamed at the end).") var output: String
    @Option(name: .long, help: "How many copies of the blocks.") var times: Int = 4

    func run() throws {
        let file = try GGUFFile(path: input)
        let writer = try GGUFWriter(repeatingBlocksOf: file, times: times)
        try writer.write(to: output)
        let blocks = writer.tensors.filter { $0.name.hasPrefix("blk.") }.count
        print("\(output): \(writer.tensors.count) tensors (\(blocks) in blocks), block_count × \(times)")
    }
}
