import Foundation

/// The JSON bodies of OpenAI's completion and chat completion responses and stream chunks.
struct ResponseShape {
    /// `text_completion` (completions) or `chat.completion` (chat).
    let chat: Bool
    let id: String
    let model: String
    let created = Int(Date().timeIntervalSince1970)
    /// Completions' `text_offset` starts after the prompt.
    let promptLength: Int
    /// Whether log-probabilities were asked for (the field is null otherwise).
    let logprobs: Bool

    init(chat: Bool, model: String, promptLength: Int, logprobs: Bool) {
        self.chat = chat; self.model = model; self.promptLength = promptLength; self.logprobs = logprobs
        id = (chat ? "chatcmpl-" : "cmpl-") + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(24)
    }

    /// The whole response of a request that did not stream.
    func complete(text: String, tokens: [TokenInfo], outcome: Outcome, promptTokens: Int) -> JSON {
        let choice: JSON = chat
            ? ["index": 0, "message": ["role": "assistant", "content": .string(text)], "logprobs": logprobsJSON(tokens),
               "finish_reason": .string(outcome.finishReason)]
            : ["text": .string(text), "index": 0, "logprobs": logprobsJSON(tokens), "finish_reason": .string(outcome.finishReason)]
        return header(chat ? "chat.completion" : "text_completion", choices: [choice],
                      usage: usage(promptTokens, outcome.completionTokens))
    }

    /// A stream chunk carrying `chunk`'s text; with `first`, chat's opening `role` delta.
    func delta(_ chunk: Chunk, first: Bool = false) -> JSON {
        choiceChunk(text: chunk.text, tokens: chunk.tokens, role: first, finish: nil)
    }

    /// The stream chunk saying why generation ended.
    func finish(_ outcome: Outcome) -> JSON { choiceChunk(text: nil, tokens: [], role: false, finish: outcome.finishReason) }

    /// The last stream chunk with `stream_options.include_usage`: no choices, the usage.
    func usageChunk(promptTokens: Int, _ outcome: Outcome) -> JSON {
        header(chat ? "chat.completion.chunk" : "text_completion", choices: [], usage: usage(promptTokens, outcome.completionTokens))
    }

    private func choiceChunk(text: String?, tokens: [TokenInfo], role: Bool, finish: String?) -> JSON {
        let lp: JSON = tokens.isEmpty ? .null : logprobsJSON(tokens)
        let choice: JSON
        if chat {
            var delta: [(String, JSON)] = role ? [("role", "assistant")] : []
            if let text { delta.append(("content", .string(text))) }
            choice = ["index": 0, "delta": .object(delta), "logprobs": lp, "finish_reason": .optional(finish)]
        } else {
            choice = ["text": .string(text ?? ""), "index": 0, "logprobs": lp, "finish_reason": .optional(finish)]
        }
        return header(chat ? "chat.completion.chunk" : "text_completion", choices: [choice], usage: nil)
    }

    private func header(_ object: String, choices: [JSON], usage: JSON?) -> JSON {
        var pairs: [(String, JSON)] = [("id", .string(id)), ("object", .string(object)), ("created", .int(created)),
                                       ("model", .string(model)), ("choices", .array(choices))]
        if let usage { pairs.append(("usage", usage)) }
        return .object(pairs)
    }

    private func usage(_ prompt: Int, _ completion: Int) -> JSON {
        ["prompt_tokens": .int(prompt), "completion_tokens": .int(completion), "total_tokens": .int(prompt + completion)]
    }

    /// Chat: `{"content": [{token, logprob, bytes, top_logprobs}]}`; completions:
    /// `{tokens, token_logprobs, top_logprobs: [{token: logprob}], text_offset}`.
    private func logprobsJSON(_ tokens: [TokenInfo]) -> JSON {
        guard logprobs else { return .null }
        if chat {
            func entry(_ c: TokenInfo.Choice) -> [(String, JSON)] {
                [("token", .string(c.text)), ("logprob", .float(c.logprob)), ("bytes", .array(c.bytes.map { .int(Int($0)) }))]
            }
            return ["content": .array(tokens.map { t in
                .object(entry(t.token) + [("top_logprobs", .array(t.top.map { .object(entry($0)) }))])
            })]
        }
        return ["tokens": .array(tokens.map { .string($0.token.text) }),
                "token_logprobs": .array(tokens.map { .float($0.token.logprob) }),
                "top_logprobs": .array(tokens.map { t in
                    var seen = Set<String>()  // two ids may decode to the same text: the likelier one is kept
                    return .object(t.top.filter { seen.insert($0.text).inserted }.map { ($0.text, .float($0.logprob)) })
                }),
                "text_offset": .array(tokens.map { .int(promptLength + $0.offset) })]
    }
}
