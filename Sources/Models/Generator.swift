import Tokenizers

/// Generates text from a prompt with a model and its tokenizer, streaming pieces of text
/// as tokens come, and keeping the KV cache between turns of a chat.
public final class Generator {
    /// The model.
    public let model: LlamaModel
    /// Its tokenizer.
    public let tokenizer: any Tokenizer
    /// Tokens that end generation besides EOS (e.g. ChatML's `<|im_end|>`).
    public var stopTokens: Set<Int32>
    /// The cache holding every token seen so far.
    public private(set) var cache: KVCache
    /// Every token fed or produced so far (the cache's contents).
    public private(set) var history: [Int32] = []

    /// A generator over `model`, with a cache of `contextLength` positions (default: the model's).
    public init(model: LlamaModel, tokenizer: any Tokenizer, contextLength: Int? = nil) {
        self.model = model
        self.tokenizer = tokenizer
        cache = model.makeCache(capacity: min(contextLength ?? model.hp.contextLength, model.hp.contextLength))
        var stops = Set<Int32>()
        if let eos = tokenizer.eosID { stops.insert(eos) }
        for t in ["<|im_end|>", "<|eot_id|>", "<|endoftext|>"] { if let id = tokenizer.tokenID(t) { stops.insert(id) } }
        stopTokens = stops
    }

    /// Forgets the conversation.
    public func reset() {
        cache.reset()
        history = []
    }

    /// Continues the text with `prompt` and up to `maxTokens` generated tokens; `onText` gets
    /// each decoded piece as it is produced. Returns the generated text (without the prompt).
    @discardableResult
    public func complete(_ prompt: String, maxTokens: Int, settings: Sampler.Settings,
                         onText: (String) -> Void = { _ in }) -> String {
        var sampler = Sampler(settings)
        var tokens = tokenizer.encode(prompt, addBOS: history.isEmpty ? nil : false)
        let room = cache.capacity - cache.count
        if tokens.count >= room { tokens = Array(tokens.suffix(max(1, room - 1))) }
        guard !tokens.isEmpty else { return "" }
        var stream = TokenStreamDecoder(tokenizer)
        var out = ""
        var logits = model.forward(tokens, cache: cache)
        history += tokens
        for _ in 0..<maxTokens {
            let next = sampler.sample(logits, history: history)
            if stopTokens.contains(next) {
                // Keep the end-of-turn token in the cache so the next chat turn follows it.
                if cache.count < cache.capacity { _ = model.forward([next], cache: cache); history.append(next) }
                break
            }
            let piece = stream.append(next)
            out += piece
            onText(piece)
            history.append(next)
            guard cache.count < cache.capacity else { break }
            logits = model.forward([next], cache: cache)
        }
        let rest = stream.finish()
        out += rest
        onText(rest)
        return out
    }
}
