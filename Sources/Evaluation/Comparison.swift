import Foundation
import Formats
import Models
import Tensors
import Tokenizers

/// Evaluates a reference model and several models on one token stream (`swiftquant compare`).
///
/// The reference runs first: its perplexity, and its top-k log-probabilities of every scored
/// position written to a `LogitsFile` (a temporary one unless `Options.logitsPath` keeps it).
/// Then each model in turn, alone in memory: perplexity and KL divergence against that file,
/// speed (`benchmark`), load time and peak resident memory; after it is released, the weight
/// error of each of its 2-D tensors against the reference's tensor of the same name and shape
/// (`LayerErrorProfile`), one tensor pair at a time.
public struct Comparison {
    /// How the comparison runs.
    public struct Options: Sendable {
        /// Tokens per perplexity chunk.
        public var context = 512
        /// Evaluate at most this many chunks (nil: the whole text).
        public var maxChunks: Int?
        /// Reference tokens kept per position for the KL divergence.
        public var topK = 32
        /// Repetitions of each speed test; 0 turns benchmarking off.
        public var benchRepetitions = 2
        /// Prompt tokens of the prompt-processing test.
        public var benchPromptTokens = 512
        /// Generated tokens of the generation test.
        public var benchGeneratedTokens = 128
        /// Measure the per-tensor weight error against the reference.
        public var layerErrors = true
        /// Keep the reference's logits here (nil: a temporary file, removed at the end).
        public var logitsPath: String?
        /// Default options: `-c 512`, all chunks, top 32, 2 bench repetitions, layer errors on.
        public init() {}
    }

    /// The reference model's path (GGUF).
    public var reference: String
    /// The compared models' paths (GGUF), in table order.
    public var models: [String]
    /// How the comparison runs.
    public var options: Options
    /// No progress on stderr.
    public var quiet = true
    /// Builds the runnable model from a GGUF file; the default runs quantized weights as stored (`.native`).
    public var loader: (GGUFFile) throws -> LlamaModel = { try LlamaLoader.load($0, weights: .native) }
    /// Loads a model argument written `PATH@VARIANT` (a file turned into a runtime variant,
    /// e.g. `f32.gguf@w8a8-dynamic`): given the file and the variant name. Without it,
    /// such arguments are refused.
    public var variantLoader: ((GGUFFile, String) throws -> LlamaModel)?

    /// `path` as a file path and an optional variant: `PATH@VARIANT` when `path` itself is
    /// not a file but the part before its last `@` is.
    public static func splitVariant(_ path: String) -> (path: String, variant: String?) {
        let fm = FileManager.default
        guard !fm.fileExists(atPath: path), let at = path.lastIndex(of: "@") else { return (path, nil) }
        let file = String(path[..<at]), variant = String(path[path.index(after: at)...])
        return fm.fileExists(atPath: file) && !variant.isEmpty ? (file, variant) : (path, nil)
    }

    /// A comparison of `models` against `reference`.
    public init(reference: String, models: [String], options: Options = Options()) {
        self.reference = reference
        self.models = models
        self.options = options
    }

    /// Short unique display names: file names without `.gguf`; repeated names among the
    /// models get `#2`, `#3`, … The first name is the reference's.
    public static func displayNames(reference: String, models: [String]) -> [String] {
        func base(_ p: String) -> String {
            let name = (p as NSString).lastPathComponent
            return name.hasSuffix(".gguf") ? String(name.dropLast(5)) : name
        }
        var seen: [String: Int] = [:]
        return [base(reference)] + models.map { p in
            let b = base(p)
            seen[b, default: 0] += 1
            return seen[b]! == 1 ? b : "\(b) #\(seen[b]!)"
        }
    }

    /// Runs the comparison on `text` (tokenized by the reference's tokenizer); `textLabel`
    /// names the text in the result (e.g. its path). Requires `context ≥ 8`, `topK ≥ 1` and
    /// `benchRepetitions ≥ 0` (the CLI validates them).
    public func run(text: String, textLabel: String) throws -> Comparison.Result {
        let names = Self.displayNames(reference: reference, models: models)
        let o = options
        // Open every file first, so a bad path fails now rather than after the models before it.
        for argument in [reference] + models {
            let (path, variant) = Self.splitVariant(argument)
            if try Checkpoint(path: path).gguf == nil {
                throw EvaluationError.incompatibleModel(path: path, reason: "not a GGUF file (convert it to GGUF first)")
            }
            if variant != nil && argument == reference {
                throw EvaluationError.incompatibleModel(path: argument, reason: "variants (PATH@VARIANT) are models to compare, not the reference")
            }
            if let variant, variantLoader == nil {
                throw EvaluationError.incompatibleModel(path: argument, reason: "no loader for variant \(variant)")
            }
        }
        precondition(o.context >= 8 && o.topK >= 1 && o.benchRepetitions >= 0)
        var referenceTokens: [String]? = nil
        var tokens: [Int32] = []
        var run = PerplexityRun(context: o.context, maxChunks: o.maxChunks)
        run.savedTopK = o.topK

        // The reference: tokenize with its tokenizer, keep its top-k log-probabilities.
        let logitsPath = o.logitsPath ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("swiftquant-compare-\(getpid())-\(UUID().uuidString).logits").path
        defer { if o.logitsPath == nil { try? FileManager.default.removeItem(atPath: logitsPath) } }
        var writer: LogitsFileWriter?
        let (refEval, _) = try evaluate(path: reference, name: names[0], prepare: { gguf, model in
            let tokenizer = try BPETokenizer(gguf: gguf)
            referenceTokens = gguf.stringArray("tokenizer.ggml.tokens")
            tokens = tokenizer.encode(text, addBOS: false, parseSpecial: false)
            run.bos = tokenizer.addBOS ? tokenizer.bosID : nil
            let chunks = run.chunkCount(tokens: tokens.count)
            guard chunks >= 1 else { throw EvaluationError.textTooShort(tokens: tokens.count, needed: o.context) }
            Progress.log("\(textLabel): \(tokens.count) tokens, \(chunks) chunks of \(o.context)", quiet: quiet)
            writer = try LogitsFileWriter(path: logitsPath, vocab: model.hp.vocabSize, context: o.context, topK: o.topK,
                                          scoredPerChunk: run.scoredPerChunk)
            return (run, tokens)
        }, record: { logProbs, targets, _ in try writer!.append(logProbs: logProbs, targets: targets) })
        try writer!.finish()
        writer = nil
        let logits = try LogitsFile(path: logitsPath)

        var evaluations: [ModelEvaluation] = []
        for (path, name) in zip(models, names.dropFirst()) {
            var kl = KLDivergenceAccumulator()
            var vocab = 0
            let (first, checkpoint) = try evaluate(path: path, name: name, prepare: { gguf, model in
                vocab = model.hp.vocabSize
                guard vocab == logits.header.vocab else {
                    throw EvaluationError.incompatibleModel(path: path, reason: "vocabulary of \(vocab) tokens; the reference has \(logits.header.vocab)")
                }
                guard gguf.stringArray("tokenizer.ggml.tokens") == referenceTokens else {
                    throw EvaluationError.incompatibleModel(path: path, reason: "its tokenizer differs from the reference's")
                }
                return (run, tokens)
            }, record: { logProbs, targets, chunk in
                try kl.add(chunk: chunk, logProbs: logProbs, targets: targets, vocab: vocab, reference: logits,
                           referencePath: logitsPath)
            })
            var eval = first
            eval.klDivergence = kl.result
            if o.layerErrors && Self.splitVariant(path).variant == nil {
                // Opened again rather than kept: its pages, read while loading, would
                // otherwise stay resident and count in every later model's baseline.
                let refCheckpoint = try Checkpoint(path: reference)
                let total = LayerErrorProfile.matchingTensors(reference: refCheckpoint, model: checkpoint).count
                let progress = Progress("weight error \(name)", total: total, quiet: quiet || total == 0)
                let errors = try LayerErrorProfile.measure(reference: refCheckpoint, model: checkpoint) { _, _ in
                    progress.advance()
                }
                eval.tensorErrors = errors.isEmpty ? nil : errors
            }
            evaluations.append(eval)
        }
        return Comparison.Result(text: textLabel, tokens: tokens.count, context: o.context,
                                chunks: refEval.perplexity.chunks, topK: logits.header.topK, threads: Threads.count,
                                benchRepetitions: o.benchRepetitions,
                                reference: refEval, models: evaluations)
    }

    /// Loads one model, evaluates it and returns its record with its checkpoint (the model
    /// itself is released on return, so the next one starts from the same baseline).
    /// `prepare` sees the file and model before the run and returns the perplexity protocol
    /// and the tokens; `record` gets each chunk's log-probabilities, targets and index.
    private func evaluate(
        path: String, name: String, prepare: (GGUFFile, LlamaModel) throws -> (PerplexityRun, [Int32]),
        record: @escaping ([Float], [Int32], Int) throws -> Void
    ) throws -> (ModelEvaluation, Checkpoint) {
        let meter = PeakMemory.Meter()
        let start = Date()
        let (file, variant) = Self.splitVariant(path)
        let checkpoint = try Checkpoint(path: file)
        guard let gguf = checkpoint.gguf else {
            throw EvaluationError.incompatibleModel(path: path, reason: "not a GGUF file (convert it to GGUF first)")
        }
        let model = try variant.map { v in
            guard let variantLoader else { throw EvaluationError.incompatibleModel(path: path, reason: "no loader for variant \(v)") }
            return try variantLoader(gguf, v)
        } ?? loader(gguf)
        let loadSeconds = Date().timeIntervalSince(start)
        Progress.log("\(name): loaded in \(String(format: "%.2f", loadSeconds)) s", quiet: quiet)
        let (run, tokens) = try prepare(gguf, model)
        let progress = Progress("perplexity \(name)", total: run.chunkCount(tokens: tokens.count), quiet: quiet)
        var chunk = 0
        let ppl = try run.evaluate(model, tokens: tokens, onChunk: { _, p in
            progress.advance(note: String(format: "PPL %.4f", p))
        }, record: { logProbs, targets in
            try record(logProbs, targets, chunk)
            chunk += 1
        })
        var summary = ModelFileSummary(checkpoint)
        if let variant {
            // The variant's own storage, not the file's: its layers report their bytes.
            summary.typeLabel = variant
            let tied = gguf.tensor(named: "output.weight") == nil  // the head is the embedding: count it once
            summary.tensorBytes = model.weightBytes(includeEmbedding: !tied)
            summary.fileSize = summary.tensorBytes
            summary.bitsPerWeight = Double(summary.tensorBytes * 8) / Double(max(summary.parameters, 1))
        }
        var eval = ModelEvaluation(name: name, path: path, file: summary, perplexity: ppl, loadSeconds: loadSeconds)
        let o = options
        if o.benchRepetitions > 0 {
            Progress.log("\(name): speed, pp\(o.benchPromptTokens) and tg\(o.benchGeneratedTokens) × \(o.benchRepetitions)…",
                         quiet: quiet)
            eval.bench = benchmark(model, promptTokens: o.benchPromptTokens, generatedTokens: o.benchGeneratedTokens,
                                   repetitions: o.benchRepetitions,
                                   weightBytesPerToken: Double(model.weightBytes(includeEmbedding: false)),
                                   flopsPerToken: 2 * Double(model.linearParameterCount))
        }
        eval.memory = meter.finish()
        return (eval, checkpoint)
    }
}
