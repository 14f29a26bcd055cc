import CKernels
import Dispatch
import Foundation
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

/// Each thread of a spinning loop takes its indices in a few contiguous stretches: its own
/// run, then the back halves of what others have left. With 1 to 4 threads (more than this
/// machine may have cores, so some join late or not at all) every index is taken once and
/// no thread's indices break into more than 40 ranges: each steal halves what a run has
/// left, so about log₂(997) ≈ 10 per run a thread steals from, even when a busy machine
/// deschedules threads mid-loop (taken one at a time in turn, they would be hundreds).
@Test func spinningParallelForKeepsEachThreadsIndicesContiguous() {
    let n = 997
    for threads in 1...4 {
        for _ in 0..<20 {
            let owner = UnsafeMutablePointer<pthread_t>.allocate(capacity: n)
            let hits = UnsafeMutablePointer<Int>.allocate(capacity: n)
            hits.initialize(repeating: 0, count: n)
            parallelForSpinning(n, threads: threads) { i in
                owner[i] = pthread_self()
                hits[i] += 1
                for _ in 0..<200 { sq_fetch_add(hits + i, 0) }  // some work, so threads overlap
            }
            #expect((0..<n).allSatisfy { hits[$0] == 1 })
            var ranges: [pthread_t: Int] = [:]
            for i in 0..<n where i == 0 || owner[i] != owner[i - 1] { ranges[owner[i], default: 0] += 1 }
            #expect(ranges.values.allSatisfy { $0 <= 40 }, "\(threads) threads: ranges per thread \(ranges.values)")
            owner.deallocate()
            hits.deallocate()
        }
    }
}
