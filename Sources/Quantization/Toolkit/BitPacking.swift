/// Dense packing of small unsigned codes into bytes.
///
/// Layout: one little-endian bit stream. Code `i` of width `b` occupies stream bits
/// `i·b ..< (i+1)·b`, least significant bit first, where stream bit `k` is bit `k % 8` of
/// byte `k / 8`. So 4-bit codes go low nibble first, and a 3-bit code may straddle two
/// bytes. The last byte is zero-padded; `count` codes take `⌈count·b / 8⌉` bytes.
public enum BitPacking {
    /// The code widths `pack` and `unpack` accept.
    public static let widths = 1...8

    /// Bytes needed for `count` codes of `bits` bits.
    public static func byteCount(count: Int, bits: Int) -> Int { (count * bits + 7) / 8 }

    /// Packs `codes` (each `< 2^bits`) into `⌈count·bits / 8⌉` bytes.
    /// - Throws: `BitPackingError` if `bits` is outside 1…8 or a code does not fit.
    public static func pack(_ codes: [UInt8], bits: Int) throws -> [UInt8] {
        try codes.withUnsafeBufferPointer { try pack($0, bits: bits) }
    }

    /// Buffer form of `pack(_:bits:)`.
    public static func pack(_ codes: UnsafeBufferPointer<UInt8>, bits: Int) throws -> [UInt8] {
        guard widths.contains(bits) else { throw BitPackingError.unsupportedWidth(bits) }
        // OR-reduce instead of testing each code: a code overflows iff the union has a high bit.
        var union: UInt8 = 0
        for c in codes { union |= c }
        if bits < 8, union >> UInt8(bits) != 0 {
            let i = codes.firstIndex { $0 >> UInt8(bits) != 0 }!
            throw BitPackingError.codeTooWide(index: i, code: codes[i], bits: bits)
        }
        let n = codes.count
        return [UInt8](unsafeUninitializedCapacity: byteCount(count: n, bits: bits)) { out, written in
            written = byteCount(count: n, bits: bits)
            switch bits {
            case 8:
                for i in 0..<n { out[i] = codes[i] }
            case 4:
                for j in 0..<(n / 2) { out[j] = codes[2 * j] | codes[2 * j + 1] << 4 }
                if n % 2 == 1 { out[n / 2] = codes[n - 1] }
            case 2:
                for j in 0..<(n / 4) {
                    out[j] = codes[4 * j] | codes[4 * j + 1] << 2 | codes[4 * j + 2] << 4 | codes[4 * j + 3] << 6
                }
                if n % 4 != 0 {
                    var last: UInt8 = 0
                    for k in 0..<(n % 4) { last |= codes[n - n % 4 + k] << UInt8(2 * k) }
                    out[n / 4] = last
                }
            default:
                // Generic stream: accumulate bits in a register, flush whole bytes.
                var acc: UInt32 = 0, held = 0, j = 0
                for c in codes {
                    acc |= UInt32(c) << UInt32(held)
                    held += bits
                    while held >= 8 {
                        out[j] = UInt8(truncatingIfNeeded: acc)
                        j += 1
                        acc >>= 8
                        held -= 8
                    }
                }
                if held > 0 { out[j] = UInt8(truncatingIfNeeded: acc) }
            }
        }
    }

    /// Reads `count` codes of `bits` bits back from `bytes` (the layout `pack` writes).
    /// - Throws: `BitPackingError` if `bits` is outside 1…8 or `bytes` is too short.
    public static func unpack(_ bytes: [UInt8], bits: Int, count: Int) throws -> [UInt8] {
        try bytes.withUnsafeBufferPointer { try unpack($0, bits: bits, count: count) }
    }

    /// Buffer form of `unpack(_:bits:count:)`.
    public static func unpack(_ bytes: UnsafeBufferPointer<UInt8>, bits: Int, count: Int) throws -> [UInt8] {
        guard widths.contains(bits) else { throw BitPackingError.unsupportedWidth(bits) }
        guard count >= 0, count <= Int.max / 8, bytes.count >= byteCount(count: count, bits: bits) else {
            throw BitPackingError.tooFewBytes(count: count, bits: bits, bytes: bytes.count)
        }
        let mask = UInt8(truncatingIfNeeded: (1 << bits) - 1)
        return [UInt8](unsafeUninitializedCapacity: count) { out, written in
            written = count
            switch bits {
            case 8:
                for i in 0..<count { out[i] = bytes[i] }
            case 4:
                for i in 0..<count { out[i] = (bytes[i / 2] >> UInt8(4 * (i % 2))) & 0xF }
            case 2:
                for i in 0..<count { out[i] = (bytes[i / 4] >> UInt8(2 * (i % 4))) & 0x3 }
            default:
                var acc: UInt32 = 0, held = 0, j = 0
                for i in 0..<count {
                    while held < bits {
                        acc |= UInt32(bytes[j]) << UInt32(held)
                        j += 1
                        held += 8
                    }
                    out[i] = UInt8(truncatingIfNeeded: acc) & mask
                    acc >>= UInt32(bits)
                    held -= bits
                }
            }
        }
    }
}

/// Why `BitPacking` refused its input.
public enum BitPackingError: Error, Equatable, CustomStringConvertible {
    /// The code width is not 1…8.
    case unsupportedWidth(Int)
    /// A code needs more than `bits` bits.
    case codeTooWide(index: Int, code: UInt8, bits: Int)
    /// The packed bytes are fewer than `count` codes need.
    case tooFewBytes(count: Int, bits: Int, bytes: Int)

    /// A one-line message.
    public var description: String {
        switch self {
        case .unsupportedWidth(let b):
            return "bit packing supports 1-8 bits per code, got \(b)"
        case .codeTooWide(let i, let c, let b):
            return "code \(i) is \(c), which does not fit in \(b) bits"
        case .tooFewBytes(let n, let b, let have):
            return "\(n) codes of \(b) bits need \(BitPacking.byteCount(count: max(0, n), bits: b)) bytes, got \(have)"
        }
    }
}

extension AffineQuantized {
    /// The codes as unsigned values (`grid.unsignedCode`), densely packed by `BitPacking` at
    /// `grid.bits` bits each, row-major.
    /// - Precondition: `grid.bits <= 8`.
    public func packedCodes() -> [UInt8] {
        precondition(grid.bits <= 8, "packedCodes: codes wider than 8 bits")
        let grid = self.grid
        let unsigned = codes.map { UInt8(truncatingIfNeeded: grid.unsignedCode($0)) }
        // Every unsigned code is below 2^bits, so packing cannot fail.
        return try! BitPacking.pack(unsigned, bits: grid.bits)
    }
}
