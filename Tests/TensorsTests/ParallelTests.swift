import Dispatch
import Tensors
import Testing

/// `parallelForSpinning` runs every index exactly once: loops back to back, of one index,
/// from inside a loop body (which runs serially) and from several threads at once (one gets
/// the pool, the others run alone).
@Test func spinningParallelForRunsEveryIndexOnce() {
    for n in [0, 1, 2, 3, 64, 1000] {
        for _ in 0..<50 {
            let hits = UnsafeMutablePointer<Int>.allocate(capacity: max(n, 1))
            hits.initialize(repeating: 0, count: max(n, 1))
            parallelForSpinning(n, threads: 2) { i in hits[i] += 1 }
            #expect((0..<n).allSatisfy { hits[$0] == 1 }, "n=\(n)")
            hits.deallocate()
        }
    }
    let inner = 16, outer = 8
    let nested = UnsafeMutablePointer<Int>.allocate(capacity: inner * outer)
    nested.initialize(repeating: 0, count: inner * outer)
    parallelForSpinning(outer, threads: 2) { o in
        parallelForSpinning(inner, threads: 2) { i in nested[o * inner + i] += 1 }
    }
    #expect((0..<inner * outer).allSatisfy { nested[$0] == 1 })
    nested.deallocate()
    let callers = 4, n = 256
    let many = UnsafeMutablePointer<Int>.allocate(capacity: callers * n)
    many.initialize(repeating: 0, count: callers * n)
    DispatchQueue.concurrentPerform(iterations: callers) { c in
        for _ in 0..<20 { parallelForSpinning(n, threads: 2) { i in many[c * n + i] += 1 } }
    }
    #expect((0..<callers * n).allSatisfy { many[$0] == 20 })
    many.deallocate()
}
