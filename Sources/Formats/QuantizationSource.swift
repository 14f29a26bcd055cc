import Foundation
import Quantization
import Tensors

/// A tensor to be written by `GGUFQuantizer`: its GGUF name, shape, stored type, and how
/// to get it as f32 (or its raw bytes, when it is copied unchanged).
public struct SourceTensor {
    /// GGUF name (`blk.0.attn_q.weight`).
    public var name: String
    /// Row-major shape.
    public var shape: [Int]
    /// Stored type.
    public var type: DType
    /// The stored bytes (a view into a mapping).
    public var raw: () throws -> UnsafeRawBufferPointer
    /// The values as f32.
    public var decode: () throws -> [Float]

    /// A tensor description with its accessors.
    public init(name: String, shape: [Int], type: DType, raw: @escaping () throws -> UnsafeRawBufferPointer,
                decode: @escaping () throws -> [Float]) {
        self.name = name
        self.shape = shape
        self.type = type
        self.raw = raw
        self.decode = decode
    }

    /// GGML dimension order (fastest first).
    public var dims: [Int] { shape.reversed() }
    /// Number of values.
    public var elementCount: Int { shape.reduce(1, *) }
}

/// What the quantizer reads: GGUF metadata (llama.cpp conventions) and tensors under
/// GGUF names. A GGUF file is one as it is; a Hugging Face folder is mapped to one.
public struct QuantizationSource {
    /// Where it came from (for messages).
    public var path: String
    /// Metadata to write, in order.
    public var metadata: [GGUFKeyValue]
    /// Tensors to write, in order.
    public var tensors: [SourceTensor]
    /// Keeps mapped inputs alive while the source is used.
    public var owner: AnyObject?

    /// A source from its parts.
    public init(path: String, metadata: [GGUFKeyValue], tensors: [SourceTensor], owner: AnyObject? = nil) {
        self.path = path
        self.metadata = metadata
        self.tensors = tensors
        self.owner = owner
    }

    /// A GGUF file as a source: its metadata and tensors unchanged.
    public init(gguf file: GGUFFile) {
        self.init(path: file.path, metadata: file.metadata, tensors: file.tensors.map { t in
            SourceTensor(name: t.name, shape: t.shape, type: t.type, raw: { file.data(for: t) }, decode: {
                do { return try Codecs.dequantize(t.type, bytes: file.data(for: t), count: t.elementCount) } catch let e as CodecError {
                    throw QuantizeError.cannotDecode(path: file.path, tensor: t.name, type: t.type.rawValue + " (\(e))")
                }
            })
        }, owner: file)
    }

    /// Looks up a metadata value.
    public subscript(key: String) -> GGUFValue? { metadata.first { $0.key == key }?.value }

    /// A copy in which each tensor named in `values` is an f32 tensor of those values (same
    /// shape), e.g. norms that AWQ or SmoothQuant rescaled; the others are unchanged.
    /// - Throws: `QuantizeError.unsupportedInput` for a name that is not a tensor, or values
    ///   whose count is not the tensor's.
    public func replacing(_ values: [String: [Float]]) throws -> QuantizationSource {
        var copy = self
        var left = Set(values.keys)
        for i in copy.tensors.indices {
            let t = copy.tensors[i]
            guard let v = values[t.name] else { continue }
            guard v.count == t.elementCount else {
                throw QuantizeError.unsupportedInput(path: path, reason: "replacement for \(t.name) has \(v.count) values, not \(t.elementCount)")
            }
            let bytes = ReplacedBytes(v)
            copy.tensors[i] = SourceTensor(name: t.name, shape: t.shape, type: .f32, raw: { bytes.buffer }, decode: { v })
            left.remove(t.name)
        }
        if let name = left.sorted().first {
            throw QuantizeError.unsupportedInput(path: path, reason: "no tensor \(name) to replace")
        }
        return copy
    }
}

/// Owns the f32 bytes of a replaced tensor for as long as its `raw` accessor lives.
private final class ReplacedBytes: @unchecked Sendable {
    let buffer: UnsafeRawBufferPointer

    init(_ values: [Float]) {
        let b = UnsafeMutableRawBufferPointer.allocate(byteCount: values.count * 4, alignment: 64)
        values.withUnsafeBytes { b.copyMemory(from: $0) }
        buffer = UnsafeRawBufferPointer(b)
    }

    deinit { buffer.deallocate() }
}

/// Why a quantization could not run.
public enum QuantizeError: Error, CustomStringConvertible, Equatable {
    public static func == (a: QuantizeError, b: QuantizeError) -> Bool { a.description == b.description }
    /// The input's weights are already quantized and `--allow-requantize` was not given.
    case alreadyQuantized(path: String, tensor: String, type: String)
    /// A tensor's type cannot be decoded.
    case cannotDecode(path: String, tensor: String, type: String)
    /// No quantizer for the target type.
    case unsupportedTarget(type: String)
    /// An importance vector whose length does not match the tensor's row length.
    case badImportance(tensor: String, expected: Int, actual: Int)
    /// A checkpoint that cannot be mapped to GGUF (missing config, tensor, or tokenizer).
    case unsupportedInput(path: String, reason: String)
    /// A weight of the input is NaN or infinite (no grid can represent it; the file is corrupt).
    case nonFiniteWeight(path: String, tensor: String, index: Int, value: Float)
    /// An importance vector holds a NaN, infinite or negative value.
    case invalidImportance(tensor: String, index: Int, value: Float)

    public var description: String {
        switch self {
        case let .alreadyQuantized(path, tensor, type):
            return "\(path): already quantized (\(tensor) is \(type)); requantizing loses quality — pass --allow-requantize to do it anyway"
        case let .cannotDecode(path, tensor, type): return "\(path): tensor \(tensor) has type \(type), which cannot be decoded"
        case let .unsupportedTarget(type): return "cannot quantize to \(type) yet"
        case let .badImportance(tensor, e, a): return "importance for \(tensor) has \(a) values; its rows have \(e)"
        case let .unsupportedInput(path, reason): return "\(path): \(reason)"
        case let .nonFiniteWeight(path, tensor, index, value):
            return "\(path): tensor \(tensor) has a non-finite weight (\(value)) at element \(index); refusing to quantize it"
        case let .invalidImportance(tensor, index, value):
            return "importance for \(tensor) has an invalid value (\(value)) at column \(index); it must be finite and ≥ 0"
        }
    }
}
