import Foundation

/// One turn of a conversation.
public struct ChatMessage: Sendable, Equatable {
    /// "system", "user" or "assistant".
    public var role: String
    /// The turn's text.
    public var content: String
    /// Bundles the two.
    public init(role: String, content: String) { self.role = role; self.content = content }
}

/// How a chat model expects a conversation as text: the common `chat_template` forms of a
/// Hugging Face `tokenizer_config.json`, recognised by their markers and rendered exactly as
/// transformers' `apply_chat_template` renders them (no Jinja interpreter: the known forms are
/// written out here), and a plain form for models that have none (GPT-2, Emerald's own).
public struct ChatTemplate: Sendable, Equatable {
    /// The template families.
    public enum Kind: String, Sendable {
        /// `<|im_start|>role\n…<|im_end|>\n` (SmolLM2, Qwen2).
        case chatML
        /// `<s>[INST] <<SYS>>\n…\n<</SYS>>\n\n… [/INST] answer </s>` (Llama 2).
        case llama2
        /// `<|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|>` (Llama 3, and 3.1's date header).
        case llama3
        /// "System: …\nUser: …\nAssistant: …\n": the documented form for models without a template.
        case plain
    }

    /// Which family.
    public var kind: Kind
    /// The system message a ChatML template inserts when the conversation has none (SmolLM2's
    /// "You are a helpful AI assistant named SmolLM…", Qwen's "You are Qwen…").
    public var defaultSystem: String?
    /// Beginning-of-sequence text that Llama templates write (`bos_token`).
    public var bos: String
    /// End-of-sequence text that Llama 2 writes after each answer (`eos_token`).
    public var eos: String
    /// Llama 3.1's form: a system turn always, opening with its knowledge and date lines.
    public var dateHeader: Bool

    /// The plain template.
    public static let plain = ChatTemplate(kind: .plain)

    /// A template of `kind` with the usual special tokens.
    public init(kind: Kind, defaultSystem: String? = nil, bos: String? = nil, eos: String? = nil, dateHeader: Bool = false) {
        self.kind = kind; self.defaultSystem = defaultSystem; self.dateHeader = dateHeader
        self.bos = bos ?? (kind == .llama3 ? "<|begin_of_text|>" : kind == .llama2 ? "<s>" : "")
        self.eos = eos ?? (kind == .llama2 ? "</s>" : "")
    }

    /// Recognises a `tokenizer_config.json`'s `chat_template` by its markers; `.plain` when it has none.
    /// - Throws: `EmeraldError.invalidArgument` naming a template of another form.
    public init(tokenizerConfig json: [String: Any]) throws {
        let bos = Self.token(json["bos_token"]), eos = Self.token(json["eos_token"])
        var source = json["chat_template"]
        if let named = source as? [[String: Any]] {  // [{"name": "default", "template": …}, …]
            source = named.first { $0["name"] as? String == "default" }?["template"] ?? named.first?["template"]
        }
        guard let template = source as? String else { self = .plain; return }
        if template.contains("<|im_start|>") {
            self.init(kind: .chatML, defaultSystem: Self.chatMLDefaultSystem(in: template))
        } else if template.contains("[INST]") {
            self.init(kind: .llama2, bos: bos, eos: eos)
        } else if template.contains("<|start_header_id|>") {
            self.init(kind: .llama3, bos: bos, dateHeader: template.contains("Cutting Knowledge Date"))
        } else {
            let shown = template.count > 80 ? String(template.prefix(80)) + "…" : template
            throw EmeraldError.invalidArgument("the model's chat template is of a form Emerald does not know "
                + "(it knows ChatML <|im_start|>, Llama 2 [INST] and Llama 3 <|start_header_id|>): \(shown.debugDescription)")
        }
    }

    /// The template of a model folder: from its `tokenizer_config.json` when it has one, else `.plain`.
    public static func load(folder: String) throws -> ChatTemplate {
        let path = folder + "/tokenizer_config.json"
        guard FileManager.default.fileExists(atPath: path) else { return .plain }
        return try ChatTemplate(tokenizerConfig: AtomicFile.readJSON(path))
    }

    /// The text that ends a turn, which generation stops at: `<|im_end|>`, `</s>`, `<|eot_id|>`,
    /// or for `.plain` "\nUser:" (the next turn starting).
    public var endOfTurn: String {
        switch kind {
        case .chatML: return "<|im_end|>"
        case .llama2: return eos
        case .llama3: return "<|eot_id|>"
        case .plain: return "\nUser:"
        }
    }

    /// The conversation as the model's prompt text; with `addGenerationPrompt`, followed by the
    /// opening of the assistant's turn (Llama 2's form has none: its answer follows `[/INST]`).
    /// - Throws: `EmeraldError.invalidArgument` for a conversation the template refuses (Llama 2:
    ///   roles that do not alternate user/assistant).
    public func render(messages: [ChatMessage], addGenerationPrompt: Bool = true) throws -> String {
        switch kind {
        case .chatML:
            var out = ""
            if let system = defaultSystem, messages.first?.role != "system" {
                out += "<|im_start|>system\n" + system + "<|im_end|>\n"
            }
            for m in messages { out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n" }
            return out + (addGenerationPrompt ? "<|im_start|>assistant\n" : "")
        case .llama2:
            return try renderLlama2(messages)
        case .llama3:
            var out = bos, rest = messages[...]
            if dateHeader {
                // 3.1's default: the system turn always comes first, with these two lines.
                var system = ""
                if let first = rest.first, first.role == "system" { system = Self.trim(first.content); rest = rest.dropFirst() }
                out += "<|start_header_id|>system<|end_header_id|>\n\n"
                    + "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n" + system + "<|eot_id|>"
            }
            for m in rest { out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + Self.trim(m.content) + "<|eot_id|>" }
            return out + (addGenerationPrompt ? "<|start_header_id|>assistant<|end_header_id|>\n\n" : "")
        case .plain:
            var out = ""
            for m in messages {
                let who = m.role == "system" ? "System" : m.role == "assistant" ? "Assistant" : m.role == "user" ? "User" : m.role.capitalized
                out += who + ": " + m.content + "\n"
            }
            return out + (addGenerationPrompt ? "Assistant:" : "")
        }
    }

    /// Meta's Llama 2 template: the system message folded into the first user turn.
    private func renderLlama2(_ messages: [ChatMessage]) throws -> String {
        var turns = messages[...], system: String?
        if let first = turns.first, first.role == "system" { system = first.content; turns = turns.dropFirst() }
        var out = ""
        for (i, m) in turns.enumerated() {
            guard (m.role == "user") == (i % 2 == 0) else {
                throw EmeraldError.invalidArgument("Conversation roles must alternate user/assistant/user/assistant/...")
            }
            var content = m.content
            if i == 0, let system { content = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + content }
            if m.role == "user" { out += bos + "[INST] " + Self.trim(content) + " [/INST]" }
            else if m.role == "assistant" { out += " " + Self.trim(content) + " " + eos }
        }
        return out
    }

    /// Python's `str.strip()` / Jinja's `trim`: whitespace off both ends.
    static func trim(_ s: String) -> String {
        let scalars = s.unicodeScalars
        guard let start = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let end = scalars.lastIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        return String(scalars[start...end])
    }

    /// A special token as tokenizer_config.json writes it: a string, or `{"content": …}`.
    static func token(_ value: Any?) -> String? {
        (value as? String) ?? ((value as? [String: Any])?["content"] as? String)
    }

    /// The system message a ChatML template writes when the conversation has none: a literal
    /// `'<|im_start|>system\n…<|im_end|>` (Qwen, SmolLM2); nil when every system turn it writes
    /// is the conversation's own (`'<|im_start|>system\n' + message['content']`).
    static func chatMLDefaultSystem(in template: String) -> String? {
        for marker in ["<|im_start|>system\\n", "<|im_start|>system\n"] {
            var from = template.startIndex
            while let open = template.range(of: marker, range: from..<template.endIndex) {
                from = open.upperBound
                guard let close = template.range(of: "<|im_end|>", range: open.upperBound..<template.endIndex) else { break }
                let body = String(template[open.upperBound..<close.lowerBound])
                if body.contains("'") || body.contains("\"") || body.contains("{") { continue }  // an expression, not a literal
                return body.replacingOccurrences(of: "\\n", with: "\n")
            }
        }
        return nil
    }
}

extension Tokenizer {
    /// The id of special token `text` (`<|endoftext|>`, `<|im_end|>`, `</s>`, `<|eot_id|>`), if
    /// this tokenizer has it as one token.
    public func specialTokenID(_ text: String) -> Int32? {
        if let bpe = self as? ByteLevelBPETokenizer { return bpe.specialTokens[text] }
        if let hf = self as? HuggingFaceBPETokenizer { return hf.addedTokens[text] }
        return nil
    }

    /// Ids of `text` with its special tokens read as such, as for a rendered chat template
    /// (Hugging Face tokenizers match their added tokens in any text; GPT-2's only when asked).
    public func encodeReadingSpecialTokens(_ text: String) throws -> [Int32] {
        if let bpe = self as? ByteLevelBPETokenizer { return bpe.encode(text, allowedSpecial: bpe.allSpecialTokens) }
        return try encode(text)
    }
}

extension ChatTemplate {
    /// Ids that end an answer: the end-of-turn and end-of-sequence tokens `tokenizer` has, and
    /// GPT-2's `<|endoftext|>`.
    public func stopTokens(for tokenizer: any Tokenizer) -> Set<Int32> {
        Set(["<|endoftext|>", endOfTurn, eos].compactMap { tokenizer.specialTokenID($0) })
    }

    /// The end of turn as a stop string, when it is text rather than a token (`.plain`'s "\nUser:").
    public func stopString(for tokenizer: any Tokenizer) -> String? {
        tokenizer.specialTokenID(endOfTurn) == nil ? endOfTurn : nil
    }
}

extension ChatTemplate {
    /// The conversation rendered as ids, its oldest turns dropped (a leading system message
    /// kept; a user turn with its answer, so roles still alternate) until it fits `room` tokens.
    /// - Throws: `EmeraldError.invalidArgument` when the last message alone does not fit.
    public func prompt(fitting messages: inout [ChatMessage], tokenizer: any Tokenizer, room: Int) throws -> [Int32] {
        while true {
            let ids = try tokenizer.encodeReadingSpecialTokens(try render(messages: messages))
            let first = messages.first?.role == "system" ? 1 : 0
            if ids.count <= room { return ids }
            guard messages.count - first > 1 else {
                throw EmeraldError.invalidArgument("the prompt is \(ids.count) tokens; the model's context leaves room for \(room)")
            }
            messages.remove(at: first)
            if messages.count - first > 1 && messages[first].role == "assistant" { messages.remove(at: first) }
        }
    }
}
