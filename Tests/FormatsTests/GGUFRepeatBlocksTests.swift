import Foundation
import Testing
@testable import Formats

/// `GGUFWriter(repeatingBlocksOf:times:)` on the real SmolLM2 file: block N's tensors
/// reappear byte for byte as block N + 30k, block_count is multiplied, the rest is copied.
@Test func repeatedBlocksCopyEveryBlockTensorByteForByte() throws {
    let file = try GGUFTestSupport.smolLM2()
    let blocks = try #require(file.int("llama.block_count"))
    try GGUFTestSupport.withTemporaryFolder { folder in
        let path = folder.appendingPathComponent("deep.gguf").path
        try GGUFWriter(repeatingBlocksOf: file, times: 3).write(to: path)
        let deep = try GGUFFile(path: path)
        #expect(deep.int("llama.block_count") == 3 * blocks)
        let blockTensors = file.tensors.filter { $0.name.hasPrefix("blk.") }
        #expect(deep.tensors.count == file.tensors.count + 2 * blockTensors.count)
        for t in file.tensors where !t.name.hasPrefix("blk.") {
            let copy = try #require(deep.tensor(named: t.name))
            #expect(Array(deep.data(for: copy)) == Array(file.data(for: t)), "\(t.name)")
        }
        for t in blockTensors {
            let parts = t.name.split(separator: ".", maxSplits: 2)
            let n = Int(parts[1])!
            for k in 0..<3 {
                let copy = try #require(deep.tensor(named: "blk.\(n + k * blocks).\(parts[2])"))
                #expect(copy.type == t.type && copy.dims == t.dims)
                #expect(Array(deep.data(for: copy)) == Array(file.data(for: t)), "\(copy.name)")
            }
        }
        // Everything but block_count is unchanged.
        let changed = deep.metadata.filter { kv in file.metadata.first(where: { $0.key == kv.key })?.value != kv.value }
        #expect(changed.map(\.key) == ["llama.block_count"])
    }
    #expect(throws: RepeatBlocksError.invalidTimes(0)) { _ = try GGUFWriter(repeatingBlocksOf: file, times: 0) }
}
