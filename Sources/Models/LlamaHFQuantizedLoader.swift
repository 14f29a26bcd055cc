import Formats
import Quantization

extension LlamaLoader {
    /// Loads a GPTQ, AWQ or bitsandbytes 8-bit Hugging Face folder (see `HFQuantizedCheckpoint`).
    ///
    /// GPTQ and AWQ layers are dequantized once, at load, into f32 `DenseLinear`s: the
    /// model computes exactly what the checkpoint's codes, f16 scales and zero points
    /// define, at f32 speed and memory (there is no packed GPTQ/AWQ kernel yet).
    /// bitsandbytes 8-bit layers run as LLM.int8() on their stored int8 rows
    /// (`LLMInt8Linear`, the config's `llm_int8_threshold`).
    ///
    /// ```swift
    /// let model = try LlamaLoader.load(huggingFaceQuantized: "SmolLM2-GPTQ")
    /// ```
    /// - Throws: `HFQuantizedError`, `ModelError`, `QuantizeError.unsupportedInput`,
    ///   `SafeTensorsError`, each naming the file.
    public static func load(huggingFaceQuantized path: String) throws -> LlamaModel {
        let source = try QuantizationSource(huggingFaceQuantized: path)
        let model = try load(source: source)
        try model.runStoredInt8Layers(of: source)
        return model
    }
}

extension LlamaModel {
    /// When `source` is a bitsandbytes 8-bit folder, replaces every layer it stores in
    /// int8 with an `LLMInt8Linear` over those int8 rows (outlier columns chosen per batch
    /// at the folder's threshold); otherwise does nothing. Returns the layers replaced.
    /// - Throws: `HFQuantizedError` for a corrupt module.
    @discardableResult
    public func runStoredInt8Layers(of source: QuantizationSource) throws -> Int {
        guard let checkpoint = source.owner as? HFQuantizedCheckpoint, checkpoint.config.format == .bitsAndBytes else { return 0 }
        var replaced = 0
        for name in linearNames + ["output.weight"] {
            guard linear(named: name) != nil, let m = try checkpoint.layer(name) else { continue }
            replaceLinear(named: name, with: LLMInt8Linear(m, threshold: checkpoint.config.outlierThreshold))
            replaced += 1
        }
        return replaced
    }
}

extension LLMInt8Linear {
    /// A layer over a symmetric 8-bit per-row matrix (codes 1…255 around zero point 128,
    /// as `quantizedMatrix` makes and bitsandbytes folders hold).
    public init(_ m: GroupQuantizedMatrix, threshold: Float) {
        precondition(m.bits == 8 && m.groups == 1 && m.symmetric, "LLM.int8() layers are symmetric int8 per row")
        self.init(quantizedWeight: m.codes.map { Int8(Int($0) - 128) }, scales: m.scales, outFeatures: m.rows,
                  inFeatures: m.columns, threshold: threshold)
    }

    /// bitsandbytes' vector-wise int8 rounding of f32 rows (`rows × columns`, row-major):
    /// each row's scale is max|w| / 127 and its values `w · 127 / max|w|` rounded to
    /// nearest-even in −127…127 — the same rule as `W8A8Linear`'s weights — as a matrix
    /// for `HFQuantizedWriter` (codes = value + 128, zero point 128).
    /// - Throws: `GroupQuantizedMatrixError` for non-finite weights.
    public static func quantizedMatrix(weights: [Float], rows: Int, columns: Int) throws -> GroupQuantizedMatrix {
        if let i = weights.firstIndex(where: { !$0.isFinite }) {
            throw GroupQuantizedMatrixError.nonFiniteWeight(index: i)
        }
        let (q, scales) = weights.withUnsafeBufferPointer { W8A8Linear.quantizePerChannel($0, rows: rows, columns: columns) }
        return try GroupQuantizedMatrix(rows: rows, columns: columns, bits: 8, groupSize: columns,
                                        codes: q.map { UInt8(Int($0) + 128) }, scales: scales,
                                        zeroPoints: [Int32](repeating: 128, count: rows), symmetric: true)
    }
}
