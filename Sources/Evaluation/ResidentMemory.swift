import Foundation

#if os(Linux)
/// glibc's `malloc_trim` (not exported by the Glibc module).
@_silgen_name("malloc_trim") private func mallocTrim(_ pad: Int) -> Int32
#endif

/// Resident memory of this process, and a peak that can be restarted so several models
/// evaluated one after another in one process each get their own peak.
///
/// Linux keeps one high-water mark per process (`VmHWM`); writing `5` to
/// `/proc/self/clear_refs` resets it to the current resident size (Linux ≥ 4.0). Where that
/// is not possible the peak is the process's lifetime peak, and `PeakMemory.method` says so.
public enum ResidentMemory {
    /// Current resident size in bytes (`VmRSS`), or nil where unknown.
    public static func current() -> Int? { statusField("VmRSS:") }

    /// Peak resident size in bytes since the process started or the last successful
    /// `resetPeak()` (`VmHWM`), or nil where unknown.
    public static func peak() -> Int? { statusField("VmHWM:") }

    /// Returns freed heap to the system, then resets the peak to the current resident size.
    /// Returns false when the kernel refused (the peak then keeps counting from process start).
    @discardableResult
    public static func resetPeak() -> Bool {
        #if os(Linux)
        // Freed model weights can stay in malloc's arenas and would count in the next
        // model's baseline; trimming first keeps baselines comparable.
        _ = mallocTrim(0)
        #endif
        guard let h = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? h.close() }
        do { try h.write(contentsOf: Data("5".utf8)) } catch { return false }
        return true
    }

    /// Current anonymous resident size in bytes (`RssAnon`: heap and other private memory,
    /// not pages of memory-mapped files, which the kernel can drop and re-read), or nil where unknown.
    public static func anonymous() -> Int? { statusField("RssAnon:") }

    private static func statusField(_ key: String) -> Int? {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in s.split(separator: "\n") where line.hasPrefix(key) {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
        }
        return nil
    }
}

/// The memory one model took while it was loaded and run.
public struct PeakMemory: Codable, Sendable, Equatable {
    /// How the figure was measured.
    public enum Method: String, Codable, Sendable {
        /// `VmHWM` after resetting it through `/proc/self/clear_refs` just before loading the model.
        case resetHighWaterMark = "VmHWM reset via /proc/self/clear_refs"
        /// `VmHWM` of the whole process (no reset possible): an upper bound.
        case processHighWaterMark = "process VmHWM (not resettable here): upper bound"
    }
    /// Resident size just before the model was loaded (the tokenized text, the reference logits, the runtime).
    public var baselineBytes: Int
    /// Peak resident size of the process while the model was loaded and evaluated.
    public var peakBytes: Int
    /// How `peakBytes` was measured.
    public var method: Method
    /// What the model itself added to the process at its peak: `peakBytes − baselineBytes`.
    public var deltaBytes: Int { max(0, peakBytes - baselineBytes) }

    /// A peak measured from now until `finish()`.
    public struct Meter {
        let baseline: Int
        let method: Method
        /// Starts measuring: trims the heap and resets the process's high-water mark.
        public init() {
            method = ResidentMemory.resetPeak() ? .resetHighWaterMark : .processHighWaterMark
            baseline = ResidentMemory.current() ?? 0
        }
        /// The peak since `init()`, or nil where the system does not report memory.
        public func finish() -> PeakMemory? {
            guard let peak = ResidentMemory.peak() else { return nil }
            return PeakMemory(baselineBytes: baseline, peakBytes: max(peak, baseline), method: method)
        }
    }
}

/// Tracks the peak of `ResidentMemory.anonymous()` by reading it every `interval` seconds on
/// a background thread, from `init` until `stop()`. The kernel keeps no high-water mark of
/// anonymous memory alone; this one can miss peaks shorter than the interval.
public final class AnonymousMemorySampler: @unchecked Sendable {
    /// What the sampling thread and `stop()` share, under `lock`.
    private final class State: @unchecked Sendable {
        let lock = NSLock()
        var peakBytes = 0
        var running = true
    }
    private let state = State()

    /// Starts sampling (nothing is sampled where `/proc/self/status` is unavailable).
    public init(interval: TimeInterval = 0.01) {
        let state = self.state
        Thread.detachNewThread {
            while let now = ResidentMemory.anonymous() {
                state.lock.lock()
                state.peakBytes = max(state.peakBytes, now)
                let go = state.running
                state.lock.unlock()
                if !go { return }
                Thread.sleep(forTimeInterval: interval)
            }
        }
    }

    /// Stops sampling and returns the largest anonymous resident size seen (nil if none could be read).
    public func stop() -> Int? {
        let last = ResidentMemory.anonymous()
        state.lock.lock()
        defer { state.lock.unlock() }
        state.running = false
        if let last { state.peakBytes = max(state.peakBytes, last) }
        return state.peakBytes > 0 ? state.peakBytes : nil
    }
}
