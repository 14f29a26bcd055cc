import CKernels
import Dispatch

/// The number of worker threads parallel loops use; set from `--threads`.
public enum Threads {
    nonisolated(unsafe) private static var _count = defaultCount
    /// Threads to use (at least 1). Defaults to the machine's active cores.
    public static var count: Int {
        get { _count }
        set { _count = max(1, newValue) }
    }
    /// The machine's active processor count.
    public static var defaultCount: Int { max(1, ProcessInfoLite.activeProcessorCount) }
}

/// Runs `body(i)` for every `i` in `0..<n`, split into contiguous chunks over `Threads.count`
/// threads. `body` must be safe to call concurrently for different `i`.
public func parallelFor(_ n: Int, threads: Int = Threads.count, _ body: (Int) -> Void) {
    if n <= 0 { return }
    let t = min(threads, n)
    if t <= 1 {
        for i in 0..<n { body(i) }
        return
    }
    withoutActuallyEscaping(body) { body in
        DispatchQueue.concurrentPerform(iterations: t) { k in
            let lo = n * k / t, hi = n * (k + 1) / t
            for i in lo..<hi { body(i) }
        }
    }
}

/// Runs `body(i)` for every `i` in `0..<n` on up to `threads` threads, each taking its own
/// contiguous run of indices in order and then the back halves of what others left (so a
/// thread that is preempted on a shared machine delays only the index it holds). The threads come from a pool whose workers spin briefly between loops
/// (`sq_parallel_for`): for many short loops in a row, such as generation's matrix-vector
/// products, where waking `parallelFor`'s threads would cost more than the loop. A call
/// made while another such loop runs, or from inside `body`, runs serially.
public func parallelForSpinning(_ n: Int, threads: Int = Threads.count, _ body: (Int) -> Void) {
    if n <= 0 { return }
    if min(threads, n) <= 1 {
        for i in 0..<n { body(i) }
        return
    }
    withoutActuallyEscaping(body) { body in
        var task = body
        withUnsafeMutablePointer(to: &task) { ctx in
            sq_parallel_for(n, Int32(min(threads, n)), { ctx, i in
                ctx!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(i)
            }, ctx)
        }
    }
}

/// Minimal processor-count query without Foundation.
enum ProcessInfoLite {
    static var activeProcessorCount: Int {
        #if canImport(Glibc)
        return Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        #else
        return Int(sysconf(_SC_NPROCESSORS_ONLN))
        #endif
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
