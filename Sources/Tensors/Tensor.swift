/// A dense f32 tensor in row-major order (the last dimension varies fastest).
///
/// Shapes follow the PyTorch/safetensors convention: a linear layer's weight is
/// `[outFeatures, inFeatures]`. (GGUF lists dimensions the other way round, fastest first;
/// the readers translate.)
public struct Tensor: Sendable, Equatable {
    /// Dimensions, slowest first.
    public var shape: [Int]
    /// Elements in row-major order; `data.count == shape.reduce(1, *)`.
    public var data: [Float]

    /// A tensor with the given shape and data; the counts must agree.
    public init(shape: [Int], data: [Float]) {
        precondition(shape.reduce(1, *) == data.count, "shape \(shape) does not match \(data.count) elements")
        self.shape = shape
        self.data = data
    }

    /// A zero-filled tensor.
    public init(zeros shape: [Int]) {
        self.init(shape: shape, data: [Float](repeating: 0, count: shape.reduce(1, *)))
    }

    /// Number of elements.
    public var count: Int { data.count }

    /// Number of rows when viewed as a matrix `[rows, lastDim]`.
    public var rows: Int { shape.count <= 1 ? 1 : count / (shape.last ?? 1) }
    /// Length of the last dimension.
    public var columns: Int { shape.last ?? 1 }
}
