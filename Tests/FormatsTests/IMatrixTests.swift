import Foundation
import Testing
@testable import Formats

private func tempPath(_ name: String) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sq-imatrix-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent(name).path
}

private let sample = ImportanceMatrix(
    entries: ["blk.0.attn_q.weight": .init(sumSquares: [1024, 2048, 512, 0], count: 1024),
              "blk.0.ffn_down.weight": .init(sumSquares: (0..<8).map { Float($0) * 256 }, count: 1024)],
    datasets: ["valid.txt"], chunkCount: 2, chunkSize: 512)

@Test func imatrixRoundTripsThroughGGUF() throws {
    let path = try tempPath("m.gguf")
    try sample.write(to: path, format: .gguf)
    let back = try ImportanceMatrix(path: path)
    #expect(back == sample)
    #expect(back.importance(for: "blk.0.attn_q.weight") == [1, 2, 0.5, 0])
    let file = try GGUFFile(path: path)
    #expect(file.string("general.type") == "imatrix")
    #expect(file.tensors.map(\.name) == ["blk.0.attn_q.weight.in_sum2", "blk.0.attn_q.weight.counts",
                                         "blk.0.ffn_down.weight.in_sum2", "blk.0.ffn_down.weight.counts"])
}

@Test func imatrixRoundTripsThroughLegacyDat() throws {
    let path = try tempPath("m.dat")
    try sample.write(to: path, format: .dat)
    let back = try ImportanceMatrix(path: path)
    #expect(back.datasets == ["valid.txt"])
    #expect(back.chunkCount == 2)
    for (name, _) in sample.entries {
        let a = sample.importance(for: name)!, b = back.importance(for: name)!
        #expect(a.count == b.count)
        for (x, y) in zip(a, b) { #expect(abs(x - y) <= 1e-6 * max(1, abs(x))) }
    }
}

@Test func brokenImatrixFilesGiveTypedErrors() throws {
    let path = try tempPath("bad.dat")
    try sample.write(to: path, format: .dat)
    let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
    for cut in [0, 3, 4, 10, 30, 60] where cut < bytes.count {
        try bytes.prefix(cut).write(to: URL(fileURLWithPath: path))
        #expect(throws: (any Error).self) { _ = try ImportanceMatrix(path: path) }
    }
    try Data([0xFF, 0xFF, 0xFF, 0x7F] + [UInt8](repeating: 1, count: 64)).write(to: URL(fileURLWithPath: path))
    #expect(throws: IMatrixError.self) { _ = try ImportanceMatrix(path: path) }
}
