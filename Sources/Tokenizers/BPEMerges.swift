// The BPE merge loop. A word starts as one symbol per byte; the adjacent pair with the
// lowest merge rank (leftmost on a tie) is replaced by its merged token until no pair
// has a rank. That is the order Hugging Face's `Word::merge_all` and llama.cpp's
// bigram queue use, so all three agree on every input.

import Foundation

/// Merge ranks keyed by the pair of token ids they join.
struct MergeTable: Sendable {
    /// `(left << 32 | right)` → `(rank << 32 | merged id)`.
    private var table: [UInt64: UInt64] = [:]

    var count: Int { table.count }

    init() {}

    @inline(__always)
    private static func key(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    /// Records a merge unless the pair already has a (lower) rank.
    mutating func add(left: Int32, right: Int32, merged: Int32, rank: Int) {
        let k = Self.key(left, right)
        if table[k] == nil { table[k] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: merged)) }
    }

    /// `(rank, merged id)` for the pair, packed; `UInt64.max` if the pair never merges.
    @inline(__always)
    func lookup(_ left: Int32, _ right: Int32) -> UInt64 {
        table[Self.key(left, right)] ?? UInt64.max
    }

    /// Merges `symbols` in place to the final tokens of one word.
    func merge(_ symbols: inout [Int32]) {
        if symbols.count < 2 { return }
        if symbols.count <= 128 { mergeShort(&symbols) } else { mergeLong(&symbols) }
    }

    /// Quadratic but allocation-light: rescans the pair ranks of a short word.
    private func mergeShort(_ symbols: inout [Int32]) {
        var pairs = [UInt64](unsafeUninitializedCapacity: symbols.count - 1) { buffer, count in
            for i in 0..<symbols.count - 1 { buffer[i] = lookup(symbols[i], symbols[i + 1]) }
            count = symbols.count - 1
        }
        while true {
            var best = UInt64.max
            var at = -1
            for i in 0..<pairs.count where pairs[i] < best {  // the rank is in the high bits
                best = pairs[i]
                at = i
            }
            if at < 0 { return }
            symbols[at] = Int32(bitPattern: UInt32(truncatingIfNeeded: best))
            symbols.remove(at: at + 1)
            pairs.remove(at: at)
            if at > 0 { pairs[at - 1] = lookup(symbols[at - 1], symbols[at]) }
            if at < pairs.count { pairs[at] = lookup(symbols[at], symbols[at + 1]) }
        }
    }

    /// For long words (a line of dashes, a blob of base64): linked symbols and a heap of
    /// candidate pairs, O(n log n). Stale heap entries are recognised and skipped.
    private func mergeLong(_ symbols: inout [Int32]) {
        let n = symbols.count
        var ids = symbols
        var next = Array(1...n)  // n means none
        var prev = Array(-1..<n - 1)
        var heap = PairHeap()
        for i in 0..<n - 1 {
            let entry = lookup(ids[i], ids[i + 1])
            if entry != .max { heap.push(Pair(packed: entry, left: i, leftID: ids[i], rightID: ids[i + 1])) }
        }
        while let pair = heap.pop() {
            let l = pair.left
            let r = next[l]
            // Valid only if both symbols still exist unchanged and are still neighbours;
            // a symbol's id only ever grows into a longer token, so equal ids mean unchanged.
            guard ids[l] == pair.leftID, r < n, ids[r] == pair.rightID else { continue }
            ids[l] = Int32(bitPattern: UInt32(truncatingIfNeeded: pair.packed))
            ids[r] = -1
            next[l] = next[r]
            if next[r] < n { prev[next[r]] = l }
            if prev[l] >= 0 {
                let p = prev[l]
                let entry = lookup(ids[p], ids[l])
                if entry != .max { heap.push(Pair(packed: entry, left: p, leftID: ids[p], rightID: ids[l])) }
            }
            if next[l] < n {
                let q = next[l]
                let entry = lookup(ids[l], ids[q])
                if entry != .max { heap.push(Pair(packed: entry, left: l, leftID: ids[l], rightID: ids[q])) }
            }
        }
        symbols.removeAll(keepingCapacity: true)
        var i = 0
        while i < n {
            symbols.append(ids[i])
            i = next[i]
        }
    }
}

/// A candidate merge: packed `(rank, merged id)`, the left symbol's index, and the ids
/// both symbols had when the pair was queued.
private struct Pair {
    var packed: UInt64
    var left: Int
    var leftID: Int32
    var rightID: Int32

    /// Lower rank first, then leftmost.
    @inline(__always)
    func precedes(_ other: Pair) -> Bool {
        let a = packed >> 32, b = other.packed >> 32
        return a != b ? a < b : left < other.left
    }
}

/// A binary min-heap of `Pair`.
private struct PairHeap {
    private var items: [Pair] = []

    mutating func push(_ pair: Pair) {
        items.append(pair)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i].precedes(items[parent]) else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Pair? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count && items[l].precedes(items[m]) { m = l }
                if r < items.count && items[r].precedes(items[m]) { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return top
    }
}

/// Remembers the tokens of words already merged. Shared by all threads using one
/// tokenizer; bounded, since text can hold unboundedly many distinct words.
final class WordCache: @unchecked Sendable {  // all state is guarded by `lock`
    private let lock = NSLock()
    private var words: [[UInt8]: [Int32]] = [:]
    private let capacity: Int

    init(capacity: Int = 1 << 17) {
        self.capacity = capacity
    }

    func get(_ word: [UInt8]) -> [Int32]? {
        lock.lock()
        defer { lock.unlock() }
        return words[word]
    }

    func set(_ word: [UInt8], _ tokens: [Int32]) {
        lock.lock()
        defer { lock.unlock() }
        if words.count >= capacity { words.removeAll(keepingCapacity: true) }
        words[word] = tokens
    }
}
