import Foundation
import Tensors

/// Token windows drawn from calibration text, reproducibly: `count` windows of `length`
/// tokens at offsets chosen by a seeded generator (the same seed gives the same windows on
/// every machine).
public struct CalibrationWindows: Sendable {
    /// The windows, each `length` tokens.
    public let windows: [[Int32]]
    /// Tokens per window.
    public let length: Int

    /// Why windows could not be drawn.
    public struct TooShort: Error, CustomStringConvertible {
        /// Tokens available and needed.
        public let available: Int, needed: Int
        /// A one-line message.
        public var description: String {
            "calibration text has \(available) tokens; a window needs \(needed) (use a longer file or a smaller --seqlen)"
        }
    }

    /// Draws `count` windows of `length` tokens from `tokens`, starting each at a uniformly
    /// random offset; a leading `bos` token, when given, replaces each window's first token.
    public init(tokens: [Int32], count: Int, length: Int, seed: UInt64, bos: Int32? = nil) throws {
        guard count > 0, length > 1 else { throw TooShort(available: tokens.count, needed: max(length, 2)) }
        guard tokens.count > length else { throw TooShort(available: tokens.count, needed: length + 1) }
        var rng = SplitMix64(seed: seed)
        var out: [[Int32]] = []
        for _ in 0..<count {
            let start = Int(rng.next() % UInt64(tokens.count - length))
            var w = Array(tokens[start..<(start + length)])
            if let bos { w[0] = bos }
            out.append(w)
        }
        windows = out
        self.length = length
    }

    /// Total tokens over all windows.
    public var tokenCount: Int { windows.count * length }
}
