import Formats

extension LlamaLoader {
    /// Loads a GPTQ or AWQ Hugging Face folder (see `HFQuantizedCheckpoint`).
    ///
    /// Each quantized layer is dequantized once, at load, into an f32 `DenseLinear`: the
    /// model computes exactly what the checkpoint's codes, f16 scales and zero points
    /// define, at f32 speed and memory (there is no packed GPTQ/AWQ kernel yet).
    ///
    /// ```swift
    /// let model = try LlamaLoader.load(huggingFaceQuantized: "SmolLM2-GPTQ")
    /// ```
    /// - Throws: `HFQuantizedError`, `ModelError`, `QuantizeError.unsupportedInput`,
    ///   `SafeTensorsError`, each naming the file.
    public static func load(huggingFaceQuantized path: String) throws -> LlamaModel {
        try load(source: QuantizationSource(huggingFaceQuantized: path))
    }
}
