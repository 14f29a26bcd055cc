import Foundation
import Formats
import Quantization
import Tensors

/// Size facts about a checkpoint file: what a user compares quantized files by.
public struct ModelFileSummary: Codable, Sendable, Equatable {
    /// Where the label in `typeLabel` came from.
    public enum LabelSource: String, Codable, Sendable {
        /// GGUF `general.file_type`, named as llama.cpp names it.
        case fileType = "general.file_type"
        /// The tensor type holding the most bytes.
        case dominantTensorType = "dominant tensor type"
    }
    /// Total size of the file(s) on disk.
    public var fileSize: Int
    /// Number of weights in all tensors.
    public var parameters: Int
    /// Bytes of tensor data.
    public var tensorBytes: Int
    /// `tensorBytes × 8 / parameters`.
    public var bitsPerWeight: Double
    /// The quantization type, e.g. `Q4_K_M`, or the dominant tensor type, e.g. `Q4_1`.
    public var typeLabel: String
    /// Where `typeLabel` came from.
    public var labelSource: LabelSource

    /// Summarises `checkpoint`.
    public init(_ checkpoint: Checkpoint) {
        fileSize = checkpoint.fileSize
        parameters = checkpoint.tensors.reduce(0) { $0 + $1.elementCount }
        tensorBytes = checkpoint.tensors.reduce(0) { $0 + $1.byteCount }
        bitsPerWeight = parameters > 0 ? Double(tensorBytes * 8) / Double(parameters) : 0
        if let ft = checkpoint.gguf?.int("general.file_type"), let name = Self.fileTypeName(ft) {
            typeLabel = name
            labelSource = .fileType
        } else {
            var bytes: [DType: Int] = [:]
            for t in checkpoint.tensors { bytes[t.type, default: 0] += t.byteCount }
            // Ties broken by name so the label does not depend on dictionary order.
            typeLabel = bytes.max { ($0.value, $1.key.rawValue) < ($1.value, $0.key.rawValue) }?.key.rawValue ?? "?"
            labelSource = .dominantTensorType
        }
    }

    /// llama.cpp's name for a `general.file_type` number (`LLAMA_FTYPE_MOSTLY_*`), or nil if unknown.
    public static func fileTypeName(_ fileType: Int) -> String? {
        let ft = fileType & ~1024  // LLAMA_FTYPE_GUESSED
        if let mix = QuantMix.allCases.first(where: { $0.fileType == ft }) { return mix.rawValue }
        let others = [19: "IQ2_XXS", 20: "IQ2_XS", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 26: "IQ3_S",
                      27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 31: "IQ1_M", 36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4_MOE"]
        return others[ft]
    }
}
