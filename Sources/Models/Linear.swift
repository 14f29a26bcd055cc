import Tensors

/// A linear layer `y = x·Wᵀ (+ b)` with `W` of shape `[outFeatures, inFeatures]`.
///
/// The model calls layers only through this protocol, so quantized variants (block
/// types with integer dot products, W8A8, mixed precision) slot in without touching the
/// forward pass.
public protocol Linear: Sendable {
    /// Input width (columns of W).
    var inFeatures: Int { get }
    /// Output width (rows of W).
    var outFeatures: Int { get }
    /// Computes `rows` outputs from `rows` inputs; `x` is `[rows, inFeatures]`, `y` is
    /// `[rows, outFeatures]`, both row-major.
    func forward(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>)
}

/// Full-precision f32 weights multiplied through BLAS.
public struct DenseLinear: Linear {
    /// Weights `[outFeatures, inFeatures]`, row-major.
    public let weight: FloatStorage
    /// Optional bias of length `outFeatures`.
    public let bias: [Float]?
    public let inFeatures: Int
    public let outFeatures: Int

    /// A layer over `weight` (`out × in` floats) with an optional bias.
    public init(weight: FloatStorage, outFeatures: Int, inFeatures: Int, bias: [Float]? = nil) {
        precondition(weight.count == outFeatures * inFeatures, "weight size does not match shape")
        precondition(bias == nil || bias!.count == outFeatures, "bias size does not match outFeatures")
        self.weight = weight
        self.bias = bias
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
    }

    /// A layer from an f32 tensor of shape `[out, in]`.
    public init(_ tensor: Tensor, bias: [Float]? = nil) {
        precondition(tensor.shape.count == 2, "a linear weight must be 2-D")
        self.init(weight: FloatStorage(tensor.data), outFeatures: tensor.shape[0],
                  inFeatures: tensor.shape[1], bias: bias)
    }

    public func forward(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        if let bias {
            for r in 0..<rows { (y + r * outFeatures).update(from: bias, count: outFeatures) }
        }
        weight.withPointer { w in
            BLAS.matmulTransposedB(x, w, y, m: rows, n: outFeatures, k: inFeatures,
                                   accumulate: bias != nil)
        }
    }
}

/// f32 values either owned by the process or viewed in memory that another object owns
/// (a memory-mapped file, kept alive by this value), so full-precision checkpoints need no copy.
public struct FloatStorage: @unchecked Sendable {
    private let owned: [Float]?
    private let mapped: (owner: AnyObject, pointer: UnsafePointer<Float>)?
    /// Number of floats.
    public let count: Int

    /// Storage owning `values`.
    public init(_ values: [Float]) {
        owned = values
        mapped = nil
        count = values.count
    }

    /// A view of `count` floats at `pointer`, which stays valid while `owner` lives.
    public init(borrowing owner: AnyObject, pointer: UnsafePointer<Float>, count: Int) {
        owned = nil
        mapped = (owner, pointer)
        self.count = count
    }

    /// A copy of the floats as an array.
    public var array: [Float] { withPointer { Array(UnsafeBufferPointer(start: $0, count: count)) } }

    /// Calls `body` with a pointer to the floats.
    @inlinable
    public func withPointer<R>(_ body: (UnsafePointer<Float>) throws -> R) rethrows -> R {
        try _withPointer(body)
    }

    @usableFromInline
    func _withPointer<R>(_ body: (UnsafePointer<Float>) throws -> R) rethrows -> R {
        if let mapped { return try body(mapped.pointer) }
        return try owned!.withUnsafeBufferPointer { try body($0.baseAddress!) }
    }
}
