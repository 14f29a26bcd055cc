// GPT-2's byte-level alphabet: every byte gets a printable Unicode character so that a
// vocabulary of strings can spell arbitrary bytes. Printable Latin-1 bytes stand for
// themselves; the other 68 (controls, space, DEL, NBSP, soft hyphen …) are shifted to
// U+0100 and up, in byte order. The space byte 0x20 thus becomes "Ġ" (U+0120).

/// The byte ⇄ character table of GPT-2's `bytes_to_unicode`.
public enum ByteLevel {
    /// `characters[b]` is the character that spells byte `b` in a byte-level vocabulary.
    public static let characters: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var shifted: UInt32 = 256
        for byte in 0..<256 {
            if isPrintable(byte) {
                table[byte] = Unicode.Scalar(UInt8(byte))
            } else {
                table[byte] = Unicode.Scalar(shifted)!
                shifted += 1
            }
        }
        return table
    }()

    /// Inverse of `characters`, indexed by scalar value (all are below U+0144).
    static let byteForScalar: [Int16] = {
        var inverse = [Int16](repeating: -1, count: 0x144)
        for (byte, scalar) in characters.enumerated() { inverse[Int(scalar.value)] = Int16(byte) }
        return inverse
    }()

    /// The byte a byte-level character stands for, or `nil` if it is not one of the 256.
    public static func byte(for scalar: Unicode.Scalar) -> UInt8? {
        let v = Int(scalar.value)
        guard v < byteForScalar.count, byteForScalar[v] >= 0 else { return nil }
        return UInt8(byteForScalar[v])
    }

    /// Spells `bytes` in the byte-level alphabet (`" hi"` → `"Ġhi"`).
    public static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var result = String.UnicodeScalarView()
        for byte in bytes { result.append(characters[Int(byte)]) }
        return String(result)
    }

    /// The bytes a byte-level string spells, or `nil` if a character is outside the alphabet.
    public static func decode(_ text: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            guard let byte = byte(for: scalar) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }

    private static func isPrintable(_ byte: Int) -> Bool {
        (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
    }
}
