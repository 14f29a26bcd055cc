import Foundation
import Tensors

/// Accumulates, per named linear layer, per-column statistics of the inputs that pass
/// through it: Σ x² (an importance matrix), Σ |x| (AWQ's mean magnitude) and max |x|
/// (SmoothQuant's and LLM.int8()'s ranges), and the token count.
public final class ActivationStatistics: @unchecked Sendable {
    private let lock = NSLock()
    /// Σ x² per column, by layer name.
    public private(set) var sumSquares: [String: [Double]] = [:]
    /// Σ |x| per column, by layer name.
    public private(set) var sumAbs: [String: [Double]] = [:]
    /// max |x| per column, by layer name.
    public private(set) var maxAbs: [String: [Float]] = [:]
    /// Tokens seen, by layer name.
    public private(set) var counts: [String: Int] = [:]
    /// Batches smaller than this are ignored (llama.cpp skips single-token decoding steps too).
    public var minimumRows: Int

    /// An empty accumulator.
    public init(minimumRows: Int = 16) { self.minimumRows = minimumRows }

    /// Adds `rows` input rows of width `columns` for layer `name`.
    public func add(_ name: String, _ x: UnsafePointer<Float>, rows: Int, columns: Int) {
        guard rows >= minimumRows else { return }
        var sq = [Double](repeating: 0, count: columns)
        var ab = [Double](repeating: 0, count: columns)
        var mx = [Float](repeating: 0, count: columns)
        for r in 0..<rows {
            let row = x + r * columns
            for c in 0..<columns {
                let v = row[c], a = abs(v)
                sq[c] += Double(v * v)
                ab[c] += Double(a)
                mx[c] = max(mx[c], a)
            }
        }
        lock.lock()
        defer { lock.unlock() }
        if var s = sumSquares[name], var a = sumAbs[name], var m = maxAbs[name] {
            for c in 0..<columns {
                s[c] += sq[c]
                a[c] += ab[c]
                m[c] = max(m[c], mx[c])
            }
            sumSquares[name] = s
            sumAbs[name] = a
            maxAbs[name] = m
        } else {
            sumSquares[name] = sq
            sumAbs[name] = ab
            maxAbs[name] = mx
        }
        counts[name, default: 0] += rows
    }

    /// Mean |x| per column of layer `name` (nil if it saw no tokens).
    public func meanAbs(_ name: String) -> [Float]? {
        guard let a = sumAbs[name], let n = counts[name], n > 0 else { return nil }
        return a.map { Float($0 / Double(n)) }
    }
}

/// A linear layer that records its inputs into `ActivationStatistics` before running.
public struct CapturingLinear: Linear {
    /// The wrapped layer.
    public let base: any Linear
    /// The name the statistics are filed under.
    public let name: String
    /// Where they go.
    public let statistics: ActivationStatistics
    public var inFeatures: Int { base.inFeatures }
    public var outFeatures: Int { base.outFeatures }

    public func forward(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        statistics.add(name, x, rows: rows, columns: inFeatures)
        base.forward(x, rows: rows, into: y)
    }
}

extension LlamaModel {
    /// The GGUF weight names of block `l`'s linear layers, with key paths to them.
    static func linearSlots(_ l: Int) -> [(String, WritableKeyPath<LlamaBlock, any Linear>)] {
        let p = "blk.\(l)."
        return [(p + "attn_q.weight", \.query), (p + "attn_k.weight", \.key), (p + "attn_v.weight", \.value),
                (p + "attn_output.weight", \.output), (p + "ffn_gate.weight", \.gate), (p + "ffn_up.weight", \.up),
                (p + "ffn_down.weight", \.down)]
    }

    /// Wraps every block's linear layers (and the head when `includeOutput`) so their inputs
    /// are recorded into `statistics` under their GGUF weight names.
    public func captureInputs(into statistics: ActivationStatistics, includeOutput: Bool = false) {
        for l in blocks.indices {
            for (name, path) in Self.linearSlots(l) {
                blocks[l][keyPath: path] = CapturingLinear(base: blocks[l][keyPath: path], name: name, statistics: statistics)
            }
        }
        if includeOutput { head = CapturingLinear(base: head, name: "output.weight", statistics: statistics) }
    }

    /// Replaces block `l`'s linear layer named `name` (a GGUF weight name); false if no such layer.
    @discardableResult
    public func replaceLinear(named name: String, with layer: any Linear) -> Bool {
        guard let l = blocks.indices.first(where: { name.hasPrefix("blk.\($0).") }),
              let slot = Self.linearSlots(l).first(where: { $0.0 == name }) else {
            if name == "output.weight" { head = layer; return true }
            return false
        }
        blocks[l][keyPath: slot.1] = layer
        return true
    }
}

/// Keeps the first `maxRows` input rows seen by each named layer (raw activations, for
/// choosing and comparing quantization ranges). Memory is bounded by `maxRows` per layer.
public final class ActivationSamples: @unchecked Sendable {
    private let lock = NSLock()
    /// Rows kept per layer.
    public let maxRows: Int
    /// Row-major samples `[rows, columns]` by layer name.
    public private(set) var rows: [String: [Float]] = [:]
    /// Row width by layer name.
    public private(set) var columns: [String: Int] = [:]

    /// An empty store keeping up to `maxRows` rows per layer.
    public init(maxRows: Int) { self.maxRows = maxRows }

    /// Appends input rows of layer `name` until it holds `maxRows`.
    public func add(_ name: String, _ x: UnsafePointer<Float>, rows n: Int, columns c: Int) {
        lock.lock()
        defer { lock.unlock() }
        let have = (rows[name]?.count ?? 0) / c
        let take = min(n, maxRows - have)
        guard take > 0 else { return }
        rows[name, default: []].append(contentsOf: UnsafeBufferPointer(start: x, count: take * c))
        columns[name] = c
    }
}

/// A linear layer that shows each input batch to `tap` (name, rows pointer, rows, columns)
/// before computing: the hook that samples or accumulates calibration statistics. (Unchecked
/// Sendable: the taps used here lock, or run while the model is driven by one thread.)
public struct TappedLinear: Linear, @unchecked Sendable {
    /// The wrapped layer.
    public let base: any Linear
    /// The name passed to `tap`.
    public let name: String
    /// Called with every input batch.
    public let tap: (String, UnsafePointer<Float>, Int, Int) -> Void
    public var inFeatures: Int { base.inFeatures }
    public var outFeatures: Int { base.outFeatures }

    /// Wraps `base`, calling `tap` before each forward.
    public init(base: any Linear, name: String, tap: @escaping (String, UnsafePointer<Float>, Int, Int) -> Void) {
        self.base = base
        self.name = name
        self.tap = tap
    }

    public func forward(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        tap(name, x, rows, inFeatures)
        base.forward(x, rows: rows, into: y)
    }
}

extension LlamaModel {
    /// The GGUF weight names of every block's linear layers, block by block.
    public var linearNames: [String] { blocks.indices.flatMap { Self.linearSlots($0).map(\.0) } }

    /// Block linear layer `name` (a GGUF weight name), or the head for `output.weight`.
    public func linear(named name: String) -> (any Linear)? {
        if name == "output.weight" { return head }
        guard let l = blocks.indices.first(where: { name.hasPrefix("blk.\($0).") }),
              let slot = Self.linearSlots(l).first(where: { $0.0 == name }) else { return nil }
        return blocks[l][keyPath: slot.1]
    }

    /// Wraps the block linears whose names pass `include` so that their inputs are sampled.
    public func sampleInputs(into samples: ActivationSamples, where include: (String) -> Bool) {
        for name in linearNames where include(name) {
            if let layer = linear(named: name) {
                replaceLinear(named: name, with: TappedLinear(base: layer, name: name, tap: samples.add))
            }
        }
    }
}
