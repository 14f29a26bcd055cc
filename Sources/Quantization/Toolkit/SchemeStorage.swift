extension QuantScheme {
    /// Stored bits per weight of a `rows × columns` matrix in this scheme's layout, exactly
    /// (codes are packed across the whole matrix, so byte padding is ignored):
    ///
    /// - integer: `b` per weight, plus per group one scale and, when asymmetric, a `b`-bit
    ///   zero point;
    /// - nf4/fp4: 4 per weight plus one absmax per block; with `-dq` each absmax is 8 bits,
    ///   plus an f32 scale per 256 absmax values and one f32 mean
    ///   (nf4-b64-dq ≈ 4 + 8/64 + 32/(64·256) ≈ 4.127);
    /// - kmeans: `b` per weight plus `2^b` levels per group in the scale type;
    /// - fp8: 8 per weight plus one scale per group.
    ///
    /// Activation quantization adds nothing to the weights. An empty matrix gives 0.
    public func bitsPerParameter(rows: Int, columns: Int) -> Double {
        let n = rows * columns
        guard n > 0 else { return 0 }
        let groups = granularity == .tensor ? 1 : rows * granularity.groupsPerRow(columns: columns)
        let scaleBits = scaleType.bits
        var total: Int
        switch codebook {
        case .integer(let bits, let symmetric):
            total = n * bits + groups * (scaleBits + (symmetric ? 0 : bits))
        case .nf4, .fp4:
            total = n * 4
            if doubleQuant {
                let block = DoubleQuantizedScales.defaultBlockSize
                total += groups * 8 + (groups + block - 1) / block * 32 + 32
            } else {
                total += groups * scaleBits
            }
        case .kmeans(let bits):
            total = n * bits + groups * (1 << bits) * scaleBits
        case .fp8E4M3, .fp8E5M2:
            total = n * 8 + groups * scaleBits
        }
        return Double(total) / Double(n)
    }
}
