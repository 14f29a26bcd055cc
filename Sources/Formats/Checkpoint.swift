import Foundation
import Quantization
import Tensors

/// One tensor of a checkpoint, whatever file kind it came from.
public struct CheckpointTensor: Sendable, Equatable {
    /// The tensor's name in the file.
    public var name: String
    /// Dimensions, slowest first (row-major).
    public var shape: [Int]
    /// Storage type.
    public var type: DType
    /// Bytes the tensor occupies in the file.
    public var byteCount: Int
    /// Number of weights.
    public var elementCount: Int { shape.reduce(1, *) }
}

/// A model checkpoint as people have it — a GGUF file, or a Hugging Face folder (or a
/// single `.safetensors` file) — seen through one interface: tensor names, shapes and
/// types, hyper-parameters, and any tensor decoded to f32.
public final class Checkpoint: @unchecked Sendable {
    /// What kind of file the checkpoint is.
    public enum Kind: String, Sendable, Codable {
        /// A GGUF file.
        case gguf
        /// A Hugging Face folder or a single safetensors file.
        case safetensors
    }

    /// The path given to `init(path:)`.
    public let path: String
    /// The file kind.
    public let kind: Kind
    /// The GGUF file, when `kind == .gguf`.
    public let gguf: GGUFFile?
    /// The safetensors model, when `kind == .safetensors`.
    public let safetensors: SafeTensorsModel?
    /// The decoded `config.json` beside the safetensors, if there is one.
    public let config: HFConfig?
    /// Every tensor, in file order.
    public let tensors: [CheckpointTensor]
    private let byName: [String: Int]

    /// Opens a GGUF file, a safetensors file, or a folder holding `model.safetensors`
    /// (or shards with `model.safetensors.index.json`) and usually `config.json`.
    /// Throws the format's typed error naming the file.
    public init(path: String) throws {
        self.path = path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw CheckpointError.notFound(path: path)
        }
        if isDir.boolValue || path.hasSuffix(".safetensors") || path.hasSuffix(".json") {
            let model = try SafeTensorsModel(path: path)
            kind = .safetensors
            gguf = nil
            safetensors = model
            let folder = isDir.boolValue ? path : (path as NSString).deletingLastPathComponent
            let configPath = (folder as NSString).appendingPathComponent("config.json")
            config = FileManager.default.fileExists(atPath: configPath) ? try HFConfig(contentsOf: configPath) : nil
            tensors = model.tensors.map {
                CheckpointTensor(name: $0.name, shape: $0.shape, type: $0.dtype, byteCount: $0.byteCount)
            }
        } else {
            let file = try GGUFFile(path: path)
            kind = .gguf
            gguf = file
            safetensors = nil
            config = nil
            tensors = file.tensors.map {
                CheckpointTensor(name: $0.name, shape: $0.shape, type: $0.type, byteCount: $0.byteCount)
            }
        }
        byName = Dictionary(tensors.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// The architecture: GGUF `general.architecture`, or config.json's `model_type`.
    public var architecture: String? { gguf?.architecture ?? config?.modelType }

    /// The tensor called `name`, if present.
    public func tensor(named name: String) -> CheckpointTensor? { byName[name].map { tensors[$0] } }

    /// The raw stored bytes of tensor `name` (a view into the memory map).
    public func rawData(_ name: String) throws -> UnsafeRawBufferPointer {
        if let gguf {
            guard let info = gguf.tensor(named: name) else { throw CheckpointError.tensorNotFound(path: path, name: name) }
            return gguf.data(for: info)
        }
        return try safetensors!.data(for: name)
    }

    /// Tensor `name` decoded to f32 (any GGML block type the codecs know, or any float or
    /// integer safetensors type).
    public func floats(_ name: String) throws -> Tensor {
        guard let t = tensor(named: name) else { throw CheckpointError.tensorNotFound(path: path, name: name) }
        if let st = safetensors { return try st.tensor(name) }
        do {
            return Tensor(shape: t.shape, data: try Codecs.dequantize(t.type, bytes: try rawData(name), count: t.elementCount))
        } catch let e as CodecError {
            throw CheckpointError.cannotDecode(path: path, name: name, reason: e.description)
        }
    }

    /// Total size in bytes of the file(s) on disk.
    public var fileSize: Int {
        if let gguf { return gguf.fileSize }
        return safetensors!.files.reduce(0) { $0 + $1.fileSize }
    }

    /// The hyper-parameters worth showing a user, as ordered (key, value) text pairs:
    /// the architecture's GGUF keys, or config.json's fields.
    public var hyperparameters: [(key: String, value: String)] {
        if let gguf, let arch = gguf.architecture {
            return gguf.metadata.filter { $0.key.hasPrefix(arch + ".") }.map { kv in
                (String(kv.key.dropFirst(arch.count + 1)), kv.value.displayText)
            }
        }
        switch config {
        case let .llama(c)?:
            return [("model_type", c.modelType), ("hidden_size", "\(c.hiddenSize)"),
                    ("intermediate_size", "\(c.intermediateSize)"), ("num_hidden_layers", "\(c.numHiddenLayers)"),
                    ("num_attention_heads", "\(c.numAttentionHeads)"), ("num_key_value_heads", "\(c.numKeyValueHeads)"),
                    ("head_dim", "\(c.headDim)"), ("rms_norm_eps", "\(c.rmsNormEps)"), ("rope_theta", "\(c.ropeTheta)"),
                    ("max_position_embeddings", "\(c.maxPositionEmbeddings)"), ("vocab_size", "\(c.vocabSize)"),
                    ("tie_word_embeddings", "\(c.tieWordEmbeddings)")]
        case let .bert(c)?:
            return [("hidden_size", "\(c.hiddenSize)"), ("num_hidden_layers", "\(c.numHiddenLayers)"),
                    ("num_attention_heads", "\(c.numAttentionHeads)"), ("intermediate_size", "\(c.intermediateSize)"),
                    ("max_position_embeddings", "\(c.maxPositionEmbeddings)"), ("vocab_size", "\(c.vocabSize)"),
                    ("type_vocab_size", "\(c.typeVocabSize)"), ("layer_norm_eps", "\(c.layerNormEps)"),
                    ("hidden_act", c.hiddenAct)]
        case let .other(t)?: return [("model_type", t)]
        case nil: return []
        }
    }
}

/// Errors of the `Checkpoint` view (the formats' own errors pass through unchanged).
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    /// Nothing exists at the path.
    case notFound(path: String)
    /// No tensor of that name.
    case tensorNotFound(path: String, name: String)
    /// The tensor's type cannot be decoded.
    case cannotDecode(path: String, name: String, reason: String)

    public var description: String {
        switch self {
        case let .notFound(path): return "\(path): no such file or folder"
        case let .tensorNotFound(path, name): return "\(path): no tensor named \(name)"
        case let .cannotDecode(path, name, reason): return "\(path): tensor \(name): \(reason)"
        }
    }
}

extension GGUFValue {
    /// A short human-readable rendering (arrays are summarised by type and length).
    public var displayText: String {
        if let s = stringValue { return s }
        if case let .float32(f) = self { return "\(f)" }
        if let c = count { return "[\(c) × \(elementType.map { "\($0)" } ?? "?")]" }
        if let b = boolValue { return "\(b)" }
        if let i = intValue { return "\(i)" }
        if let d = doubleValue { return "\(d)" }
        return typeDescription
    }
}
