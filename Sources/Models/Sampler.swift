import Foundation

/// Chooses the next token from logits: greedy, or temperature / top-k / top-p sampling
/// with a repetition penalty, reproducible from a seed.
public struct Sampler: Sendable {
    /// Sampling settings.
    public struct Settings: Sendable, Equatable {
        /// 0 means greedy.
        public var temperature: Float = 0
        /// Keep only the `topK` most likely tokens (0 = all).
        public var topK: Int = 40
        /// Keep the smallest set of tokens whose probability reaches `topP` (1 = all).
        public var topP: Float = 0.95
        /// Divide positive logits of recently seen tokens by this (multiply negative ones); 1 = off.
        public var repetitionPenalty: Float = 1.0
        /// How many recent tokens the repetition penalty looks at.
        public var repetitionWindow: Int = 64
        /// Random seed.
        public var seed: UInt64 = 0
        /// Greedy decoding with no penalty.
        public init() {}
    }

    /// The settings in use.
    public let settings: Settings
    private var rng: SplitMix64

    /// A sampler with `settings`.
    public init(_ settings: Settings) {
        self.settings = settings
        rng = SplitMix64(seed: settings.seed)
    }

    /// Picks a token from `logits` given the tokens produced so far (for the penalty).
    public mutating func sample(_ logits: [Float], history: [Int32] = []) -> Int32 {
        var l = logits
        if settings.repetitionPenalty != 1 {
            for t in Set(history.suffix(settings.repetitionWindow)) where Int(t) < l.count {
                let v = l[Int(t)]
                l[Int(t)] = v > 0 ? v / settings.repetitionPenalty : v * settings.repetitionPenalty
            }
        }
        if settings.temperature <= 0 {
            var best = 0
            for i in 1..<l.count where l[i] > l[best] { best = i }
            return Int32(best)
        }
        var order = Array(0..<l.count)
        order.sort { l[$0] > l[$1] }
        if settings.topK > 0 { order = Array(order.prefix(settings.topK)) }
        let m = l[order[0]]
        var probs = order.map { expf((l[$0] - m) / settings.temperature) }
        let total = probs.reduce(0, +)
        probs = probs.map { $0 / total }
        var keep = probs.count, cum: Float = 0
        for (i, p) in probs.enumerated() {
            cum += p
            if cum >= settings.topP { keep = i + 1; break }
        }
        let kept = probs.prefix(keep)
        let r = Float(rng.nextDouble()) * kept.reduce(0, +)
        var acc: Float = 0
        for (i, p) in kept.enumerated() {
            acc += p
            if r < acc { return Int32(order[i]) }
        }
        return Int32(order[keep - 1])
    }
}

/// A small, fast, seedable generator (SplitMix64), so runs are reproducible on every platform.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    /// A generator starting from `seed`.
    public init(seed: UInt64) { state = seed }
    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// A uniform double in [0, 1).
    public mutating func nextDouble() -> Double { Double(next() >> 11) * 0x1p-53 }
}
