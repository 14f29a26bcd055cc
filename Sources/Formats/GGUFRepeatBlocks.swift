import Foundation

/// Why `GGUFWriter(repeatingBlocksOf:times:)` refused a file.
public enum RepeatBlocksError: Error, Equatable, CustomStringConvertible {
    /// `times` was below 1.
    case invalidTimes(Int)
    /// The file has no `general.architecture` or no `<arch>.block_count`.
    case missingBlockCount(path: String)
    /// A tensor named `blk.N.…` has N outside `0..<block_count`.
    case blockOutOfRange(path: String, tensor: String, blocks: Int)

    public var description: String {
        switch self {
        case let .invalidTimes(n): return "--times must be at least 1 (got \(n))"
        case let .missingBlockCount(path): return "\(path): no general.architecture / <arch>.block_count metadata to repeat blocks by"
        case let .blockOutOfRange(path, tensor, blocks): return "\(path): tensor \(tensor) names a block outside 0..<\(blocks)"
        }
    }
}

extension GGUFWriter {
    /// A deeper synthetic model: the file's `blk.N.*` tensors written `times` times, copy `k`
    /// as blocks `N + k·L` (L = the file's block count), with `<arch>.block_count` set to
    /// `L·times`; every other tensor and metadata entry as in the file. The model computes a
    /// different function (each block applied `times` times over) but has the original's block
    /// shapes and types, which is what memory- and time-scaling measurements need.
    public init(repeatingBlocksOf file: GGUFFile, times: Int) throws {
        guard times >= 1 else { throw RepeatBlocksError.invalidTimes(times) }
        guard let arch = file.architecture, let blocks = file.int(arch + ".block_count"), blocks > 0 else {
            throw RepeatBlocksError.missingBlockCount(path: file.path)
        }
        self.init(copying: file)
        setValue(.uint32(UInt32(blocks * times)), forKey: arch + ".block_count")
        var global: [TensorEntry] = [], byBlock = [[TensorEntry]](repeating: [], count: blocks)
        for entry in tensors {
            let parts = entry.name.split(separator: ".", maxSplits: 2)
            guard parts.count == 3, parts[0] == "blk", let n = Int(parts[1]) else { global.append(entry); continue }
            guard (0..<blocks).contains(n) else {
                throw RepeatBlocksError.blockOutOfRange(path: file.path, tensor: entry.name, blocks: blocks)
            }
            byBlock[n].append(entry)
        }
        var out = global
        for k in 0..<times {
            for n in 0..<blocks {
                for var entry in byBlock[n] {
                    entry.name = "blk.\(n + k * blocks).\(entry.name.split(separator: ".", maxSplits: 2)[2])"
                    out.append(entry)
                }
            }
        }
        tensors = out
    }
}
