/// Why a model could not be built from a checkpoint. Each message is one line naming the
/// file and what is wrong.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    /// The checkpoint's architecture is not one this library runs.
    case unsupportedArchitecture(path: String, architecture: String)
    /// A hyper-parameter the architecture needs is absent.
    case missingMetadata(path: String, key: String)
    /// Hyper-parameters that cannot describe a runnable model.
    case invalidHyperparameters(path: String, reason: String)
    /// A tensor the architecture needs is absent.
    case missingTensor(path: String, name: String)
    /// A tensor has a shape other than the hyper-parameters imply.
    case wrongShape(path: String, name: String, expected: [Int], actual: [Int])
    /// A tensor's storage type cannot be used (no decoder for it).
    case unsupportedTensorType(path: String, name: String, type: String)
    /// A tensor's stored floats are corrupt (NaN or infinite weight or block scale).
    case corruptTensor(path: String, name: String, reason: String)

    public var description: String {
        switch self {
        case let .unsupportedArchitecture(path, a):
            return "\(path): architecture '\(a)' is not supported (supported: llama, qwen2, mistral)"
        case let .missingMetadata(path, key): return "\(path): missing metadata key \(key)"
        case let .invalidHyperparameters(path, reason): return "\(path): invalid hyper-parameters: \(reason)"
        case let .missingTensor(path, name): return "\(path): missing tensor \(name)"
        case let .wrongShape(path, name, e, a): return "\(path): tensor \(name) has shape \(a), expected \(e)"
        case let .unsupportedTensorType(path, name, t): return "\(path): tensor \(name) has type \(t), which cannot be decoded"
        case let .corruptTensor(path, name, reason): return "\(path): tensor \(name) is corrupt: \(reason)"
        }
    }
}
