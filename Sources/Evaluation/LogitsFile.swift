import Foundation
import Tensors

/// A compact record of a reference model's predictions on a perplexity run, for
/// KL-divergence comparisons (`perplexity --save-logits`, `--reference-logits`).
///
/// Full distributions (vocab × tokens floats) would take gigabytes, so each scored position
/// keeps the reference's `topK` most likely tokens with their log-probabilities, and the
/// log-probability of the token that actually came next. Layout, little-endian:
///
/// ```
/// header (32 bytes): "SQLP" | version u32 = 1 | vocab u32 | context u32 | topK u32
///                    | chunks u32 | scoredPerChunk u32 | reserved u32 = 0
/// per chunk:         targets u32[scoredPerChunk]
///                    per scored position: targetLogProb f32 | ids u32[topK] | logProbs f32[topK]
/// ```
public struct LogitsFileHeader: Equatable, Sendable {
    /// Vocabulary size of the model that wrote it.
    public var vocab: Int
    /// Tokens per chunk of the run.
    public var context: Int
    /// Tokens kept per position.
    public var topK: Int
    /// Chunks in the file.
    public var chunks: Int
    /// Scored positions per chunk.
    public var scoredPerChunk: Int

    static let magic: [UInt8] = Array("SQLP".utf8)
    static let size = 32
    var positionBytes: Int { 4 + 8 * topK }
    var chunkBytes: Int { scoredPerChunk * (4 + positionBytes) }
}

/// Writes a logits file chunk by chunk; the file appears (renamed from a temporary) only
/// when `finish()` succeeds.
public final class LogitsFileWriter {
    private let path: String, tmp: String
    private let handle: FileHandle
    private var header: LogitsFileHeader

    /// Starts a file for a run with the given shape; `chunks` is filled in by `finish()`.
    public init(path: String, vocab: Int, context: Int, topK: Int, scoredPerChunk: Int) throws {
        self.path = path
        tmp = path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: tmp, contents: nil), let h = FileHandle(forWritingAtPath: tmp) else {
            throw EvaluationError.badLogitsFile(path: path, reason: "cannot create the file")
        }
        handle = h
        header = LogitsFileHeader(vocab: vocab, context: context, topK: min(topK, vocab), chunks: 0,
                                  scoredPerChunk: scoredPerChunk)
        try handle.write(contentsOf: [UInt8](repeating: 0, count: LogitsFileHeader.size))
    }

    /// Appends one chunk: `logProbs` is `[scoredPerChunk, vocab]` log-softmax rows.
    public func append(logProbs: [Float], targets: [Int32]) throws {
        let h = header
        precondition(targets.count == h.scoredPerChunk && logProbs.count == h.scoredPerChunk * h.vocab)
        var out = Data(capacity: h.chunkBytes)
        for t in targets { out.appendLE(UInt32(bitPattern: t)) }
        for j in 0..<h.scoredPerChunk {
            let row = logProbs[(j * h.vocab)..<((j + 1) * h.vocab)]
            let top = topIndices(row, k: h.topK, offset: j * h.vocab)
            out.appendLE(row[row.startIndex + Int(targets[j])].bitPattern)
            for i in top { out.appendLE(UInt32(i)) }
            for i in top { out.appendLE(row[row.startIndex + i].bitPattern) }
        }
        try handle.write(contentsOf: out)
        header.chunks += 1
    }

    /// Writes the header and moves the file into place.
    public func finish() throws {
        var head = Data(LogitsFileHeader.magic)
        for v in [1, header.vocab, header.context, header.topK, header.chunks, header.scoredPerChunk, 0] {
            head.appendLE(UInt32(v))
        }
        try handle.seek(toOffset: 0)
        try handle.write(contentsOf: head)
        try handle.close()
        if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
        try FileManager.default.moveItem(atPath: tmp, toPath: path)
    }

    deinit { try? FileManager.default.removeItem(atPath: tmp) }

    private func topIndices(_ row: ArraySlice<Float>, k: Int, offset: Int) -> [Int] {
        // Partial selection: keep a sorted list of the k best seen so far.
        var best: [(Float, Int)] = []
        best.reserveCapacity(k + 1)
        for (i, v) in row.enumerated() where best.count < k || v > best[best.count - 1].0 {
            var lo = 0, hi = best.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if best[mid].0 >= v { lo = mid + 1 } else { hi = mid }
            }
            best.insert((v, i), at: lo)
            if best.count > k { best.removeLast() }
        }
        return best.map(\.1)
    }
}

/// A logits file opened for reading (memory-mapped, validated against its size).
public struct LogitsFile {
    /// The file's shape.
    public let header: LogitsFileHeader
    private let file: MappedFile

    /// Opens and validates `path`.
    public init(path: String) throws {
        file = try MappedFile(path: path)
        let b = file.bytes
        func bad(_ r: String) -> EvaluationError { .badLogitsFile(path: path, reason: r) }
        guard b.count >= LogitsFileHeader.size else { throw bad("too short for a SwiftQuant logits file") }
        guard Array(b[0..<4]) == LogitsFileHeader.magic else { throw bad("not a SwiftQuant logits file (bad magic)") }
        func u32(_ o: Int) -> Int { Int(b.loadUnaligned(fromByteOffset: o, as: UInt32.self).littleEndian) }
        guard u32(4) == 1 else { throw bad("unsupported version \(u32(4))") }
        let h = LogitsFileHeader(vocab: u32(8), context: u32(12), topK: u32(16), chunks: u32(20), scoredPerChunk: u32(24))
        guard h.vocab > 0, h.topK > 0, h.topK <= h.vocab, h.scoredPerChunk > 0, h.scoredPerChunk < h.context else {
            throw bad("inconsistent header")
        }
        let (body, overflow) = h.chunks.multipliedReportingOverflow(by: h.chunkBytes)
        guard !overflow, LogitsFileHeader.size + body == b.count else {
            throw bad("size \(b.count) does not match its header (\(h.chunks) chunks)")
        }
        header = h
    }

    /// One scored position of the reference.
    public struct Position {
        /// The token that came next.
        public var target: Int32
        /// Reference log-probability of `target`.
        public var targetLogProb: Float
        /// The reference's most likely tokens, most likely first.
        public var ids: [Int32]
        /// Their log-probabilities.
        public var logProbs: [Float]
    }

    /// Position `j` of chunk `c`.
    public func position(chunk c: Int, index j: Int) -> Position {
        let h = header, b = file.bytes
        let chunkStart = LogitsFileHeader.size + c * h.chunkBytes
        let target = b.loadUnaligned(fromByteOffset: chunkStart + 4 * j, as: Int32.self).littleEndian
        var o = chunkStart + 4 * h.scoredPerChunk + j * h.positionBytes
        let tl = Float(bitPattern: b.loadUnaligned(fromByteOffset: o, as: UInt32.self).littleEndian)
        o += 4
        let ids = (0..<h.topK).map { b.loadUnaligned(fromByteOffset: o + 4 * $0, as: Int32.self).littleEndian }
        o += 4 * h.topK
        let lps = (0..<h.topK).map { Float(bitPattern: b.loadUnaligned(fromByteOffset: o + 4 * $0, as: UInt32.self).littleEndian) }
        return Position(target: target, targetLogProb: tl, ids: ids, logProbs: lps)
    }

    /// The target tokens of chunk `c`.
    public func targets(chunk c: Int) -> [Int32] {
        (0..<header.scoredPerChunk).map { position(chunk: c, index: $0).target }
    }
}

extension Data {
    mutating func appendLE<T: FixedWidthInteger>(_ v: T) {
        Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) }
    }
}
