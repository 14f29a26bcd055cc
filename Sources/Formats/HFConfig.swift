#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Tensors

/// A Hugging Face `config.json`, decoded by `model_type` into the configurations
/// SwiftQuant can run.
///
/// ```swift
/// switch try HFConfig(contentsOf: folder + "/config.json") {
/// case .llama(let c): print(c.numHiddenLayers, c.headDim)
/// case .bert(let c): print(c.hiddenSize)
/// case .other(let type): print("unsupported model_type", type)
/// }
/// ```
public enum HFConfig: Equatable, Sendable {
    /// A Llama-family decoder (`model_type` in `LlamaConfig.modelTypes`).
    case llama(LlamaConfig)
    /// A BERT encoder (`model_type` "bert").
    case bert(BertConfig)
    /// Any other architecture; only its `model_type` is read.
    case other(modelType: String)

    /// Largest config file accepted (real ones are a few kilobytes).
    public static let maxFileSize = 16 << 20

    /// Reads and decodes a `config.json`.
    /// - Throws: `HFConfigError`, naming the file and the problem.
    public init(contentsOf path: String) throws {
        let mapped: MappedFile
        do {
            mapped = try MappedFile(path: path)
        } catch let MappedFileError.cannotOpen(_, reason) {
            throw HFConfigError.cannotOpen(path: path, reason: reason)
        }
        guard mapped.count <= Self.maxFileSize else {
            throw HFConfigError.invalid(path: path, reason: "\(mapped.count) bytes, more than the limit of \(Self.maxFileSize)")
        }
        try self.init(data: Data(mapped.bytes), path: path)
    }

    /// Decodes `config.json` contents; `path` is only used in error messages.
    /// - Throws: `HFConfigError`.
    public init(data: Data, path: String = "config.json") throws {
        let decoder = JSONDecoder()
        do {
            let header = try decoder.decode(ModelTypeOnly.self, from: data)
            guard let type = header.modelType else { throw HFConfigError.missingField(path: path, field: "model_type") }
            if LlamaConfig.modelTypes.contains(type) {
                self = .llama(try decoder.decode(LlamaConfig.self, from: data))
            } else if type == "bert" {
                self = .bert(try decoder.decode(BertConfig.self, from: data))
            } else {
                self = .other(modelType: type)
            }
        } catch let error as HFConfigError {
            throw error
        } catch let error as DecodingError {
            throw HFConfigError(error, path: path)
        } catch {
            throw HFConfigError.invalid(path: path, reason: "\(error)")
        }
    }

    /// The `model_type` the file declared.
    public var modelType: String {
        switch self {
        case .llama(let c): return c.modelType
        case .bert: return "bert"
        case .other(let type): return type
        }
    }

    private struct ModelTypeOnly: Decodable {
        let modelType: String?
        enum CodingKeys: String, CodingKey { case modelType = "model_type" }
    }
}

/// A Llama-family decoder's hyperparameters (Llama, Mistral, Qwen2: RMSNorm, RoPE,
/// grouped-query attention, SwiGLU). Absent optional fields take transformers' defaults.
public struct LlamaConfig: Equatable, Sendable, Decodable {
    /// The `model_type` values decoded as a Llama-family model.
    public static let modelTypes: Set<String> = ["llama", "mistral", "qwen2"]

    /// `model_type`, e.g. "llama".
    public var modelType: String
    /// `hidden_size`: the residual stream width.
    public var hiddenSize: Int
    /// `intermediate_size`: the MLP's inner width.
    public var intermediateSize: Int
    /// `num_hidden_layers`.
    public var numHiddenLayers: Int
    /// `num_attention_heads` (query heads).
    public var numAttentionHeads: Int
    /// `num_key_value_heads`; equals `numAttentionHeads` when absent (no GQA).
    public var numKeyValueHeads: Int
    /// `head_dim`, or `hiddenSize / numAttentionHeads` when absent.
    public var headDim: Int
    /// `rms_norm_eps` (default 1e-6).
    public var rmsNormEps: Double
    /// `rope_theta` (default 10000; also read from `rope_parameters.rope_theta`).
    public var ropeTheta: Double
    /// `max_position_embeddings` (default 2048).
    public var maxPositionEmbeddings: Int
    /// `vocab_size`.
    public var vocabSize: Int
    /// `tie_word_embeddings` (default false): the output head reuses the token embedding.
    public var tieWordEmbeddings: Bool
    /// `attention_bias`: q/k/v projections have biases (default: true for qwen2, else false).
    public var attentionBias: Bool
    /// `bos_token_id`, when given.
    public var bosTokenID: Int?
    /// `eos_token_id` (one id or a list), empty when absent.
    public var eosTokenIDs: [Int]
    /// `torch_dtype` (or `dtype` in newer files), e.g. "bfloat16", when given.
    public var torchDType: String?

    private enum CodingKeys: String, CodingKey {
        case modelType = "model_type", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads", headDim = "head_dim", rmsNormEps = "rms_norm_eps"
        case ropeTheta = "rope_theta", ropeParameters = "rope_parameters"
        case maxPositionEmbeddings = "max_position_embeddings", vocabSize = "vocab_size"
        case tieWordEmbeddings = "tie_word_embeddings", attentionBias = "attention_bias"
        case bosTokenID = "bos_token_id", eosTokenID = "eos_token_id"
        case torchDType = "torch_dtype", dtype
    }

    /// A configuration from its values (for tiny synthetic models and tests).
    public init(modelType: String = "llama", hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int,
                numAttentionHeads: Int, numKeyValueHeads: Int? = nil, headDim: Int? = nil,
                rmsNormEps: Double = 1e-6, ropeTheta: Double = 10000, maxPositionEmbeddings: Int = 2048,
                vocabSize: Int, tieWordEmbeddings: Bool = false, attentionBias: Bool = false,
                bosTokenID: Int? = nil, eosTokenIDs: [Int] = [], torchDType: String? = nil) {
        self.modelType = modelType
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.numKeyValueHeads = numKeyValueHeads ?? numAttentionHeads
        self.headDim = headDim ?? hiddenSize / numAttentionHeads
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.vocabSize = vocabSize
        self.tieWordEmbeddings = tieWordEmbeddings
        self.attentionBias = attentionBias
        self.bosTokenID = bosTokenID
        self.eosTokenIDs = eosTokenIDs
        self.torchDType = torchDType
    }

    private struct RopeParameters: Decodable {
        let ropeTheta: Double?
        enum CodingKeys: String, CodingKey { case ropeTheta = "rope_theta" }
    }

    /// Decodes and validates (positive sizes, heads dividing evenly); `rope_scaling` and
    /// other unknown keys are ignored.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        modelType = try c.decode(String.self, forKey: .modelType)
        hiddenSize = try c.decodeCount(.hiddenSize, max: 1 << 20)
        intermediateSize = try c.decodeCount(.intermediateSize, max: 1 << 22)
        numHiddenLayers = try c.decodeCount(.numHiddenLayers, max: 4096)
        numAttentionHeads = try c.decodeCount(.numAttentionHeads, max: 4096)
        numKeyValueHeads = try c.decodeCount(.numKeyValueHeads, max: 4096, default: numAttentionHeads)
        vocabSize = try c.decodeCount(.vocabSize, max: 1 << 24)
        maxPositionEmbeddings = try c.decodeCount(.maxPositionEmbeddings, max: 1 << 30, default: 2048)
        if c.contains(.headDim), try !c.decodeNil(forKey: .headDim) {
            headDim = try c.decodeCount(.headDim, max: 1 << 16)
        } else {
            guard hiddenSize % numAttentionHeads == 0 else {
                throw DecodingError.dataCorruptedError(forKey: .numAttentionHeads, in: c,
                    debugDescription: "hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(numAttentionHeads)")
            }
            headDim = hiddenSize / numAttentionHeads
        }
        guard numAttentionHeads % numKeyValueHeads == 0 else {
            throw DecodingError.dataCorruptedError(forKey: .numKeyValueHeads, in: c,
                debugDescription: "num_attention_heads \(numAttentionHeads) is not a multiple of num_key_value_heads \(numKeyValueHeads)")
        }
        rmsNormEps = try c.decodePositive(.rmsNormEps, default: 1e-6)
        let nested = try c.decodeIfPresent(RopeParameters.self, forKey: .ropeParameters)?.ropeTheta
        ropeTheta = try c.decodePositive(.ropeTheta, default: nested ?? 10000)
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? false
        attentionBias = try c.decodeIfPresent(Bool.self, forKey: .attentionBias) ?? (modelType == "qwen2")
        bosTokenID = try c.decodeIfPresent(Int.self, forKey: .bosTokenID)
        if let one = try? c.decodeIfPresent(Int.self, forKey: .eosTokenID) {
            eosTokenIDs = [one]
        } else {
            eosTokenIDs = try c.decodeIfPresent([Int].self, forKey: .eosTokenID) ?? []
        }
        torchDType = try c.decodeIfPresent(String.self, forKey: .torchDType)
            ?? (try? c.decodeIfPresent(String.self, forKey: .dtype))
    }
}

/// A BERT encoder's hyperparameters. Absent optional fields take transformers' defaults.
public struct BertConfig: Equatable, Sendable, Decodable {
    /// `hidden_size`.
    public var hiddenSize: Int
    /// `num_hidden_layers`.
    public var numHiddenLayers: Int
    /// `num_attention_heads`.
    public var numAttentionHeads: Int
    /// `intermediate_size`: the feed-forward inner width.
    public var intermediateSize: Int
    /// `max_position_embeddings` (default 512).
    public var maxPositionEmbeddings: Int
    /// `vocab_size`.
    public var vocabSize: Int
    /// `type_vocab_size`: number of token types (segments) (default 2).
    public var typeVocabSize: Int
    /// `layer_norm_eps` (default 1e-12).
    public var layerNormEps: Double
    /// `hidden_act`, e.g. "gelu" (default "gelu").
    public var hiddenAct: String

    private enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads", intermediateSize = "intermediate_size"
        case maxPositionEmbeddings = "max_position_embeddings", vocabSize = "vocab_size"
        case typeVocabSize = "type_vocab_size", layerNormEps = "layer_norm_eps", hiddenAct = "hidden_act"
    }

    /// A configuration from its values (for tiny synthetic models and tests).
    public init(hiddenSize: Int, numHiddenLayers: Int, numAttentionHeads: Int, intermediateSize: Int,
                maxPositionEmbeddings: Int = 512, vocabSize: Int, typeVocabSize: Int = 2,
                layerNormEps: Double = 1e-12, hiddenAct: String = "gelu") {
        self.hiddenSize = hiddenSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.intermediateSize = intermediateSize
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.vocabSize = vocabSize
        self.typeVocabSize = typeVocabSize
        self.layerNormEps = layerNormEps
        self.hiddenAct = hiddenAct
    }

    /// Decodes and validates (positive sizes, heads dividing the hidden size).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        hiddenSize = try c.decodeCount(.hiddenSize, max: 1 << 20)
        numHiddenLayers = try c.decodeCount(.numHiddenLayers, max: 4096)
        numAttentionHeads = try c.decodeCount(.numAttentionHeads, max: 4096)
        intermediateSize = try c.decodeCount(.intermediateSize, max: 1 << 22)
        maxPositionEmbeddings = try c.decodeCount(.maxPositionEmbeddings, max: 1 << 24, default: 512)
        vocabSize = try c.decodeCount(.vocabSize, max: 1 << 24)
        typeVocabSize = try c.decodeCount(.typeVocabSize, max: 1 << 16, default: 2)
        layerNormEps = try c.decodePositive(.layerNormEps, default: 1e-12)
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? "gelu"
        guard hiddenSize % numAttentionHeads == 0 else {
            throw DecodingError.dataCorruptedError(forKey: .numAttentionHeads, in: c,
                debugDescription: "hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(numAttentionHeads)")
        }
    }
}

/// Why a `config.json` could not be used. `description` is one line naming the file.
public enum HFConfigError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file could not be opened or mapped.
    case cannotOpen(path: String, reason: String)
    /// A required field is absent.
    case missingField(path: String, field: String)
    /// A field has the wrong type or an unusable value.
    case invalidValue(path: String, field: String, reason: String)
    /// The file is not valid JSON or not an object.
    case invalid(path: String, reason: String)

    init(_ error: DecodingError, path: String) {
        func field(_ codingPath: [CodingKey]) -> String { codingPath.map(\.stringValue).joined(separator: ".") }
        switch error {
        case let .keyNotFound(key, context):
            self = .missingField(path: path, field: field(context.codingPath + [key]))
        case let .valueNotFound(_, context):
            self = .invalidValue(path: path, field: field(context.codingPath), reason: "is null")
        case let .typeMismatch(_, context) where context.codingPath.isEmpty:
            self = .invalid(path: path, reason: "not a JSON object")
        case let .typeMismatch(type, context):
            self = .invalidValue(path: path, field: field(context.codingPath), reason: "is not \(type)")
        case let .dataCorrupted(context) where !context.codingPath.isEmpty:
            self = .invalidValue(path: path, field: field(context.codingPath), reason: context.debugDescription)
        case let .dataCorrupted(context):
            self = .invalid(path: path, reason: "not valid JSON: " + context.debugDescription)
        @unknown default:
            self = .invalid(path: path, reason: "\(error)")
        }
    }

    /// One line: the file, then what is wrong with it.
    public var description: String {
        switch self {
        case let .cannotOpen(path, reason): return "\(path): cannot open: \(reason)"
        case let .missingField(path, field): return "\(path): missing field \(field)"
        case let .invalidValue(path, field, reason): return "\(path): field \(field) \(reason)"
        case let .invalid(path, reason): return "\(path): \(reason)"
        }
    }
}

extension KeyedDecodingContainer {
    /// A count in 1...max; `default` when the key is absent (required when nil).
    fileprivate func decodeCount(_ key: Key, max: Int, default value: Int? = nil) throws -> Int {
        let n: Int
        if let value, !contains(key) { n = value } else { n = try decode(Int.self, forKey: key) }
        guard n >= 1 && n <= max else {
            throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: "\(n) is outside 1...\(max)")
        }
        return n
    }

    /// A finite positive number; `default` when the key is absent.
    fileprivate func decodePositive(_ key: Key, default value: Double) throws -> Double {
        let x = try decodeIfPresent(Double.self, forKey: key) ?? value
        guard x.isFinite && x > 0 else {
            throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: "\(x) is not a positive number")
        }
        return x
    }
}
