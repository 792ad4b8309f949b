import Emerald

/// A completion or chat request, validated and tokenized.
struct GenerationParameters {
    /// What the engine runs.
    var request: GenerationRequest
    /// Stop strings (the server cuts at them).
    var stop: [String]
    /// Streamed as server-sent events.
    var stream = false
    /// A last streamed chunk with the usage (`stream_options.include_usage`).
    var includeUsage = false
    /// Length of the prompt text in Unicode scalars (completions' `text_offset` starts there).
    var promptLength = 0

    /// Reads the fields both endpoints share, for a prompt of `prompt` ids.
    init(_ f: RequestFields, prompt: [Int32], model: ServedModel, logprobs: Int?, extraStop: [String] = []) throws {
        if let name = try f.string("model"), name != model.id {
            throw APIError(.notFound, "the model `\(name)` does not exist; this server serves `\(model.id)`",
                           param: "model", code: "model_not_found")
        }
        if let n = try f.int("n", in: 0...Int(Int32.max)), n != 1 { throw APIError.invalid("`n` must be 1: one choice per request", param: "n") }
        let ctx = model.context
        guard !prompt.isEmpty else { throw APIError.invalid("the prompt is empty", param: "prompt") }
        guard prompt.count < ctx else {
            throw APIError.invalid("the prompt is \(prompt.count) tokens; the context holds \(ctx), with room for at least one new token",
                                   param: "prompt", code: "context_length_exceeded")
        }
        let room = ctx - prompt.count
        let maxTokens = try f.int("max_tokens", in: 1...Int.max) ?? f.int("max_completion_tokens", in: 1...Int.max) ?? room
        guard maxTokens <= room else {
            throw APIError.invalid("the prompt (\(prompt.count) tokens) and max_tokens (\(maxTokens)) exceed the context of \(ctx) tokens; "
                + "max_tokens may be at most \(room)", param: "max_tokens", code: "context_length_exceeded")
        }
        let temperature = try f.number("temperature", in: 0...2) ?? 1
        let topP = try f.number("top_p", in: 0...1)
        if topP == 0 { throw APIError.invalid("`top_p` must be in (0, 1], got 0", param: "top_p") }
        let topK = try f.int("top_k", in: 0...Int(Int32.max))
        let seed = try f.int("seed", in: Int.min...Int.max).map { UInt64(bitPattern: Int64($0)) } ?? UInt64.random(in: .min ... .max)
        let sampling = SamplingOptions(temperature: Float(temperature), topK: topK == 0 ? nil : topK, topP: topP.map(Float.init))
        request = GenerationRequest(prompt: prompt, maxNewTokens: maxTokens, sampling: sampling, seed: seed,
                                    stopTokens: model.stopTokens, topLogprobs: logprobs)
        stop = try f.stop() + extraStop
        stream = try f.bool("stream") ?? false
        if let options = f.value("stream_options") {
            guard case .object = options else { throw APIError.invalid("`stream_options` must be an object", param: "stream_options") }
            includeUsage = try RequestFields(options).bool("include_usage") ?? false
        }
    }

    /// `POST /v1/completions`: `prompt` as a string or an array of token ids.
    static func completion(_ body: JSON, model: ServedModel) throws -> GenerationParameters {
        let f = try RequestFields(body)
        if try f.bool("echo") == true { throw APIError.invalid("`echo` is not supported", param: "echo") }
        let logprobs = try f.int("logprobs", in: 0...20)
        var prompt: [Int32], length = 0
        switch f.value("prompt") {
        case .string(let text)?:
            prompt = try model.encode(text, specials: false)
            length = text.unicodeScalars.count
            // An empty prompt starts a document, as GPT-2 was trained to.
            if prompt.isEmpty, let eot = model.specialToken("<|endoftext|>") { prompt = [eot] }
        case .array(let items)?:
            let vocab = model.tokenizer.vocabularySize
            prompt = try items.map {
                guard case .number(let x) = $0, x == x.rounded(), x >= 0, x < Double(vocab) else {
                    throw APIError.invalid("`prompt` as an array must hold token ids in 0..<\(vocab)", param: "prompt")
                }
                return Int32(x)
            }
            length = model.tokenizer.decode(prompt).unicodeScalars.count
        case nil:
            throw APIError.invalid("`prompt` is required", param: "prompt")
        case let v?:
            throw APIError.invalid("`prompt` must be a string or an array of token ids, got \(v.typeName)", param: "prompt")
        }
        var p = try GenerationParameters(f, prompt: prompt, model: model, logprobs: logprobs)
        p.promptLength = length
        return p
    }

    /// `POST /v1/chat/completions`: `messages` rendered with the model's chat template.
    static func chat(_ body: JSON, model: ServedModel) throws -> GenerationParameters {
        let f = try RequestFields(body)
        guard let template = model.template else {
            throw APIError.invalid("this model cannot chat: \(model.templateProblem ?? "it has no chat template")")
        }
        guard case .array(let items)? = f.value("messages"), !items.isEmpty else {
            throw APIError.invalid("`messages` must be a non-empty array of {role, content}", param: "messages")
        }
        let messages = try items.map { item -> ChatMessage in
            guard case .string(let role)? = item["role"], ["system", "user", "assistant", "developer"].contains(role) else {
                throw APIError.invalid("each message needs a `role`: system, user or assistant", param: "messages")
            }
            return ChatMessage(role: role == "developer" ? "system" : role, content: try Self.content(item["content"]))
        }
        let text: String
        do { text = try template.render(messages: messages, addGenerationPrompt: true) } catch let e as EmeraldError {
            throw APIError.invalid(e.description, param: "messages")
        }
        let logprobs = try f.bool("logprobs") ?? false
        let top = try f.int("top_logprobs", in: 0...20)
        if top != nil && !logprobs { throw APIError.invalid("`top_logprobs` needs `logprobs: true`", param: "top_logprobs") }
        let prompt = try model.encode(text, specials: true)
        // An end of turn that is text, not a token (the plain template's "\nUser:"), is a stop string.
        let extra = template.stopString(for: model.tokenizer).map { [$0] } ?? []
        return try GenerationParameters(f, prompt: prompt, model: model, logprobs: logprobs ? (top ?? 0) : nil, extraStop: extra)
    }

    /// A message's content: a string, or an array of `{"type": "text", "text": …}` parts.
    private static func content(_ value: JSON?) throws -> String {
        switch value {
        case .string(let s)?: return s
        case .array(let parts)?:
            return try parts.map {
                guard case .string(let s)? = $0["text"] else { throw APIError.invalid("message content parts must be text", param: "messages") }
                return s
            }.joined()
        default: throw APIError.invalid("each message needs a `content` string", param: "messages")
        }
    }
}
