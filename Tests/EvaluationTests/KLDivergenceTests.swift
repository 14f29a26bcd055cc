import Foundation
import Testing
@testable import Evaluation
import Models

/// Random log-softmax rows over a small vocabulary.
private func randomLogProbs(rows: Int, vocab: Int, seed: UInt64, sharpness: Float) -> [Float] {
    var rng = SplitMix64(seed: seed)
    var x = (0..<rows * vocab).map { _ in Float(rng.nextDouble() * 2 - 1) * sharpness }
    logSoftmaxRows(&x, rows: rows, width: vocab)
    return x
}

private func withLogitsFile(vocab: Int, topK: Int, ref: [Float], targets: [Int32], _ body: (LogitsFile) throws -> Void) throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sq-kl-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let path = dir.appendingPathComponent("ref.logits").path
    let w = try LogitsFileWriter(path: path, vocab: vocab, context: 2 * targets.count + 2, topK: topK,
                                 scoredPerChunk: targets.count)
    try w.append(logProbs: ref, targets: targets)
    try w.finish()
    try body(try LogitsFile(path: path))
}

@Test func klAgainstItselfIsZeroWithFullAgreement() throws {
    let vocab = 40, rows = 30
    let ref = randomLogProbs(rows: rows, vocab: vocab, seed: 3, sharpness: 4)
    let targets = (0..<rows).map { Int32($0 % vocab) }
    try withLogitsFile(vocab: vocab, topK: 8, ref: ref, targets: targets) { file in
        var acc = KLDivergenceAccumulator()
        ref.withUnsafeBufferPointer { b in
            for j in 0..<rows {
                acc.add(logProbs: UnsafeBufferPointer(rebasing: b[(j * vocab)..<((j + 1) * vocab)]),
                        reference: file.position(chunk: 0, index: j))
            }
        }
        let r = acc.result
        #expect(r.meanKLD < 1e-6)
        #expect(r.maxKLD < 1e-5)
        #expect(r.sameTopFraction == 1)
        #expect(abs(r.perplexityRatio - 1) < 1e-6)
        #expect(r.rmsDeltaP < 1e-6)
    }
}

@Test func klMatchesDirectComputationWhenTopKCoversVocabulary() throws {
    let vocab = 24, rows = 50
    let ref = randomLogProbs(rows: rows, vocab: vocab, seed: 5, sharpness: 3)
    let model = randomLogProbs(rows: rows, vocab: vocab, seed: 9, sharpness: 3)
    let targets = (0..<rows).map { Int32(($0 * 7) % vocab) }
    try withLogitsFile(vocab: vocab, topK: vocab, ref: ref, targets: targets) { file in
        var acc = KLDivergenceAccumulator()
        var direct: [Double] = [], same = 0, dp2 = 0.0, nllQ = 0.0, nllP = 0.0
        for j in 0..<rows {
            let p = ref[(j * vocab)..<((j + 1) * vocab)].map(Double.init)
            let q = model[(j * vocab)..<((j + 1) * vocab)].map(Double.init)
            direct.append(zip(p, q).map { exp($0) * ($0 - $1) }.reduce(0, +))
            if p.firstIndex(of: p.max()!) == q.firstIndex(of: q.max()!) { same += 1 }
            let t = Int(targets[j])
            dp2 += pow(exp(q[t]) - exp(p[t]), 2)
            nllQ -= q[t]
            nllP -= p[t]
            model.withUnsafeBufferPointer { b in
                acc.add(logProbs: UnsafeBufferPointer(rebasing: b[(j * vocab)..<((j + 1) * vocab)]),
                        reference: file.position(chunk: 0, index: j))
            }
        }
        let r = acc.result
        let mean = direct.reduce(0, +) / Double(rows)
        #expect(abs(r.meanKLD - mean) < 1e-5 * max(1, mean))
        #expect(abs(r.maxKLD - direct.max()!) < 1e-5)
        #expect(r.sameTopFraction == Double(same) / Double(rows))
        #expect(abs(r.rmsDeltaP - (dp2 / Double(rows)).squareRoot()) < 1e-6)
        #expect(abs(r.perplexityRatio - exp((nllQ - nllP) / Double(rows))) < 1e-6)
        #expect(r.meanKLD > 0.01)
    }
}

@Test func truncatedTopKGivesALowerBoundCloseToTheFullKL() throws {
    let vocab = 64, rows = 40
    let ref = randomLogProbs(rows: rows, vocab: vocab, seed: 11, sharpness: 8)
    let model = randomLogProbs(rows: rows, vocab: vocab, seed: 12, sharpness: 8)
    let targets = (0..<rows).map { Int32($0 % vocab) }
    var full = KLDivergenceAccumulator(), top = KLDivergenceAccumulator()
    try withLogitsFile(vocab: vocab, topK: vocab, ref: ref, targets: targets) { f in
        try withLogitsFile(vocab: vocab, topK: 16, ref: ref, targets: targets) { t in
            model.withUnsafeBufferPointer { b in
                for j in 0..<rows {
                    let row = UnsafeBufferPointer(rebasing: b[(j * vocab)..<((j + 1) * vocab)])
                    full.add(logProbs: row, reference: f.position(chunk: 0, index: j))
                    top.add(logProbs: row, reference: t.position(chunk: 0, index: j))
                }
            }
        }
    }
    #expect(top.result.meanKLD <= full.result.meanKLD + 1e-9)
    #expect(top.result.meanKLD > 0.5 * full.result.meanKLD)
}

@Test func corruptLogitsFilesAreRejected() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sq-klbad-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let path = dir.appendingPathComponent("bad.logits").path
    FileManager.default.createFile(atPath: path, contents: Data("SQLP\u{1}\0\0\0junk".utf8))
    #expect(throws: EvaluationError.self) { _ = try LogitsFile(path: path) }
    FileManager.default.createFile(atPath: path, contents: Data(repeating: 7, count: 100))
    #expect(throws: EvaluationError.self) { _ = try LogitsFile(path: path) }
}
