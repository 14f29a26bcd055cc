/// The shape of a Llama-family model (Llama 2/3, SmolLM, Mistral, Qwen2).
public struct LlamaHyperparameters: Sendable, Codable, Equatable {
    /// Tokens in the vocabulary (rows of the embedding).
    public var vocabSize: Int
    /// Width of the residual stream.
    public var hiddenSize: Int
    /// Width of the MLP's hidden layer.
    public var intermediateSize: Int
    /// Number of transformer blocks.
    public var layerCount: Int
    /// Query heads.
    public var headCount: Int
    /// Key/value heads (grouped-query attention when fewer than `headCount`).
    public var kvHeadCount: Int
    /// Width of one head.
    public var headDim: Int
    /// Rotated dimensions per head.
    public var ropeDims: Int
    /// RoPE frequency base.
    public var ropeBase: Float
    /// RoPE pairing of dimensions.
    public var ropeStyle: RoPE.Style
    /// RMSNorm epsilon.
    public var rmsEps: Float
    /// Longest context the model was trained for.
    public var contextLength: Int

    /// Creates hyper-parameters; `headDim` defaults to `hiddenSize / headCount`, `ropeDims` to `headDim`.
    public init(vocabSize: Int, hiddenSize: Int, intermediateSize: Int, layerCount: Int, headCount: Int,
                kvHeadCount: Int, headDim: Int? = nil, ropeDims: Int? = nil, ropeBase: Float = 10000,
                ropeStyle: RoPE.Style = .halves, rmsEps: Float = 1e-5, contextLength: Int = 2048) {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.layerCount = layerCount
        self.headCount = headCount
        self.kvHeadCount = kvHeadCount
        self.headDim = headDim ?? hiddenSize / max(headCount, 1)
        self.ropeDims = ropeDims ?? self.headDim
        self.ropeBase = ropeBase
        self.ropeStyle = ropeStyle
        self.rmsEps = rmsEps
        self.contextLength = contextLength
    }

    /// Checks that the numbers describe a model that can run; returns the first problem.
    public func validationError() -> String? {
        if vocabSize <= 0 || hiddenSize <= 0 || intermediateSize <= 0 || layerCount <= 0 { return "sizes must be positive" }
        if headCount <= 0 || kvHeadCount <= 0 { return "head counts must be positive" }
        if headCount % kvHeadCount != 0 { return "head count \(headCount) is not a multiple of KV head count \(kvHeadCount)" }
        if headDim <= 0 || ropeDims > headDim || ropeDims % 2 != 0 { return "RoPE dimension \(ropeDims) does not fit head size \(headDim)" }
        if contextLength <= 0 { return "context length must be positive" }
        return nil
    }
}
