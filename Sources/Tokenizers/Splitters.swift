// Hand-written pre-tokenizer splitters: each regex that models use is a small state
// machine over Unicode scalars. They reproduce the leftmost-first alternation of the
// original patterns exactly (tested against Hugging Face `tokenizers` and ICU), and run
// far faster than a backtracking regex engine.
//
// A splitter works on a chunk of scalar indices and appends the sub-chunks it produces.
// A pattern is applied to each chunk separately, so anchors and look-ahead (`(?!\S)`)
// see the chunk's end, as when Hugging Face or llama.cpp apply a sequence of patterns.

/// The scalars of a stretch of text, with the class of each and its UTF-8 offset.
struct ScalarText {
    /// Scalar values.
    var scalars: [UInt32] = []
    /// `CharClass` of each scalar.
    var classes: [UInt8] = []
    /// UTF-8 byte offset of each scalar, relative to the stretch, plus the end offset.
    var offsets: [Int] = []

    /// Decodes valid UTF-8 (Swift strings always are) into scalars and classes.
    mutating func load(_ bytes: UnsafeBufferPointer<UInt8>) {
        scalars.removeAll(keepingCapacity: true)
        classes.removeAll(keepingCapacity: true)
        offsets.removeAll(keepingCapacity: true)
        var i = 0
        let n = bytes.count
        while i < n {
            let b0 = UInt32(bytes[i])
            var v: UInt32
            var len: Int
            if b0 < 0x80 {
                v = b0; len = 1
            } else if b0 < 0xE0 {
                v = (b0 & 0x1F) << 6 | UInt32(bytes[i + 1] & 0x3F); len = 2
            } else if b0 < 0xF0 {
                v = (b0 & 0x0F) << 12 | UInt32(bytes[i + 1] & 0x3F) << 6 | UInt32(bytes[i + 2] & 0x3F)
                len = 3
            } else {
                v = (b0 & 0x07) << 18 | UInt32(bytes[i + 1] & 0x3F) << 12
                    | UInt32(bytes[i + 2] & 0x3F) << 6 | UInt32(bytes[i + 3] & 0x3F)
                len = 4
            }
            scalars.append(v)
            classes.append(CharClass.of(v))
            offsets.append(i)
            i += len
        }
        offsets.append(n)
    }
}

/// The four classes the GPT-2 family of patterns distinguishes.
enum CharClass {
    /// `\p{L}`: general category L*.
    static let letter: UInt8 = 0
    /// `\p{N}`: general category N*.
    static let number: UInt8 = 1
    /// `\s`: the Unicode White_Space property.
    static let space: UInt8 = 2
    /// Everything else (punctuation, symbols, marks, controls …).
    static let other: UInt8 = 3

    private static let ascii: [UInt8] = (0..<128).map { slowClass(UInt32($0)) }

    @inline(__always)
    static func of(_ v: UInt32) -> UInt8 {
        v < 128 ? ascii[Int(v)] : slowClass(v)
    }

    private static func slowClass(_ v: UInt32) -> UInt8 {
        guard let scalar = Unicode.Scalar(v) else { return other }
        let properties = scalar.properties
        if properties.isWhitespace { return space }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return number
        default:
            return other
        }
    }

    /// `\p{P}`: general category P*.
    static func isPunctuation(_ v: UInt32) -> Bool {
        guard let scalar = Unicode.Scalar(v) else { return false }
        switch scalar.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }
}

private let apostrophe: UInt32 = 0x27
private let spaceChar: UInt32 = 0x20

@inline(__always) private func isNewline(_ v: UInt32) -> Bool { v == 0x0A || v == 0x0D }

@inline(__always) private func lower(_ v: UInt32) -> UInt32 {
    (0x41...0x5A).contains(v) ? v + 0x20 : v
}

/// Length of the contraction (`'s 't 're 've 'm 'll 'd`) starting at `i`, or 0.
@inline(__always)
private func contractionLength(_ s: UnsafeBufferPointer<UInt32>, _ i: Int, _ end: Int,
                               ignoreCase: Bool) -> Int {
    guard s[i] == apostrophe, i + 1 < end else { return 0 }
    let c1 = ignoreCase ? lower(s[i + 1]) : s[i + 1]
    switch c1 {
    case 0x73, 0x74, 0x6D, 0x64: return 2  // s t m d
    default: break
    }
    guard i + 2 < end else { return 0 }
    let c2 = ignoreCase ? lower(s[i + 2]) : s[i + 2]
    switch (c1, c2) {
    case (0x72, 0x65), (0x76, 0x65), (0x6C, 0x6C): return 3  // re ve ll
    default: return 0
    }
}

/// End of the run of class `k` that starts at `i`.
@inline(__always)
private func runEnd(_ c: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int, _ k: UInt8) -> Int {
    var j = i
    while j < end && c[j] == k { j += 1 }
    return j
}

/// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
func splitGPT2(_ r: Range<Int>, _ t: ScalarText, into out: inout [Range<Int>]) {
    t.scalars.withUnsafeBufferPointer { s in
        t.classes.withUnsafeBufferPointer { c in
            let end = r.upperBound
            var i = r.lowerBound
            while i < end {
                var stop = i + contractionLength(s, i, end, ignoreCase: false)
                if stop == i {
                    // An optional single space glues onto a following letter/number/other run.
                    let j = (s[i] == spaceChar && i + 1 < end && c[i + 1] != CharClass.space) ? i + 1 : i
                    let k = c[j]
                    if k != CharClass.space {
                        stop = runEnd(c, j, end, k)
                    } else {
                        stop = whitespaceEnd(c, i, end)
                    }
                }
                out.append(i..<stop)
                i = stop
            }
        }
    }
}

/// `\s+(?!\S)|\s+` at a whitespace scalar: a run followed by text gives up its last
/// scalar (so " word" keeps its space), unless the run is a single scalar.
@inline(__always)
private func whitespaceEnd(_ c: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int) -> Int {
    let w = runEnd(c, i, end, CharClass.space)
    if w == end || w - i == 1 { return w }
    return w - 1
}

/// Llama 3 (maxDigits 3) and Qwen2 (maxDigits 1):
/// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`.
func splitLlama3(_ r: Range<Int>, _ t: ScalarText, maxDigits: Int,
                 into out: inout [Range<Int>]) {
    t.scalars.withUnsafeBufferPointer { s in
        t.classes.withUnsafeBufferPointer { c in
            let end = r.upperBound
            var i = r.lowerBound
            while i < end {
                var stop = i + contractionLength(s, i, end, ignoreCase: true)
                if stop == i {
                    let k = c[i]
                    if k == CharClass.letter {
                        stop = runEnd(c, i, end, CharClass.letter)
                    } else if k != CharClass.number && !isNewline(s[i]) && i + 1 < end
                                && c[i + 1] == CharClass.letter {
                        stop = runEnd(c, i + 1, end, CharClass.letter)
                    } else if k == CharClass.number {
                        stop = i
                        while stop < end && stop - i < maxDigits && c[stop] == CharClass.number { stop += 1 }
                    } else if k == CharClass.other
                                || (s[i] == spaceChar && i + 1 < end && c[i + 1] == CharClass.other) {
                        let j = k == CharClass.other ? i : i + 1
                        stop = runEnd(c, j, end, CharClass.other)
                        while stop < end && isNewline(s[stop]) { stop += 1 }
                    } else {
                        // Whitespace: up to and including the run's last newline, if any.
                        let w = runEnd(c, i, end, CharClass.space)
                        var lastNewline = -1
                        var j = w - 1
                        while j >= i {
                            if isNewline(s[j]) { lastNewline = j; break }
                            j -= 1
                        }
                        stop = lastNewline >= 0 ? lastNewline + 1 : whitespaceEnd(c, i, end)
                    }
                }
                out.append(i..<stop)
                i = stop
            }
        }
    }
}

/// Isolates the scalars matched by `isMatch`, one per piece (`individual`) or as runs;
/// the stretches between them are kept as pieces too.
func splitIsolating(_ r: Range<Int>, _ t: ScalarText, individual: Bool,
                    into out: inout [Range<Int>], isMatch: (UInt32, UInt8) -> Bool) {
    var gapStart = r.lowerBound
    var i = r.lowerBound
    while i < r.upperBound {
        guard isMatch(t.scalars[i], t.classes[i]) else { i += 1; continue }
        if gapStart < i { out.append(gapStart..<i) }
        var stop = i + 1
        if !individual {
            while stop < r.upperBound && isMatch(t.scalars[stop], t.classes[stop]) { stop += 1 }
        }
        out.append(i..<stop)
        i = stop
        gapStart = stop
    }
    if gapStart < r.upperBound { out.append(gapStart..<r.upperBound) }
}

/// `[0-9][0-9][0-9]`: isolates each group of three ASCII digits, left to right.
func splitDigitTriples(_ r: Range<Int>, _ t: ScalarText, into out: inout [Range<Int>]) {
    @inline(__always) func digit(_ i: Int) -> Bool { (0x30...0x39).contains(t.scalars[i]) }
    var gapStart = r.lowerBound
    var i = r.lowerBound
    while i + 3 <= r.upperBound {
        if digit(i) && digit(i + 1) && digit(i + 2) {
            if gapStart < i { out.append(gapStart..<i) }
            out.append(i..<i + 3)
            i += 3
            gapStart = i
        } else {
            i += 1
        }
    }
    if gapStart < r.upperBound { out.append(gapStart..<r.upperBound) }
}
