/// One message of a conversation.
public struct ChatMessage: Sendable, Equatable {
    /// Who speaks.
    public enum Role: String, Sendable { case system, user, assistant }
    /// The speaker.
    public var role: Role
    /// The text.
    public var content: String
    /// A message from `role`.
    public init(role: Role, content: String) {
        self.role = role
        self.content = content
    }
}

/// Turns a conversation into the prompt text an instruct model was trained on.
public struct ChatTemplate: Sendable, Equatable {
    /// The system message used when the conversation has none (SmolLM2's template adds one).
    public var defaultSystem: String?
    /// The text that ends an assistant turn (generation stops there).
    public var endOfTurn: String

    /// ChatML (`<|im_start|>role\ncontent<|im_end|>\n`), as SmolLM2 and Qwen2 use.
    public static let chatML = ChatTemplate(defaultSystem: nil, endOfTurn: "<|im_end|>")

    /// The template a GGUF's `tokenizer.chat_template` (Jinja) describes, recognised by its
    /// markers; ChatML when it cannot tell. The default system message is taken from the
    /// template's literal `<|im_start|>system\n…<|im_end|>` when present.
    public init(jinja: String?) {
        self = .chatML
        guard let t = jinja, let start = t.range(of: "<|im_start|>system\n") else { return }
        if let end = t.range(of: "<|im_end|>", range: start.upperBound..<t.endIndex) {
            let sys = String(t[start.upperBound..<end.lowerBound])
            if !sys.contains("{{") && !sys.contains("{%") { defaultSystem = sys }
        }
    }

    /// A template with the given parts.
    public init(defaultSystem: String?, endOfTurn: String) {
        self.defaultSystem = defaultSystem
        self.endOfTurn = endOfTurn
    }

    /// The prompt for `messages`, ending with the opening of the assistant's turn.
    public func render(_ messages: [ChatMessage]) -> String {
        var out = ""
        if let sys = defaultSystem, messages.first?.role != .system {
            out += "<|im_start|>system\n\(sys)<|im_end|>\n"
        }
        for m in messages { out += "<|im_start|>\(m.role.rawValue)\n\(m.content)<|im_end|>\n" }
        return out + "<|im_start|>assistant\n"
    }
}
