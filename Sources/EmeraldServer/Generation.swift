import Emerald

/// A generated token as the API reports it when log-probabilities are asked for.
struct TokenInfo {
    /// An id, its text and bytes, and its log-probability.
    struct Choice { var id: Int32; var text: String; var bytes: [UInt8]; var logprob: Float }
    /// The token drawn.
    var token: Choice
    /// The most likely tokens at its position.
    var top: [Choice]
    /// Where its text starts in the generated text (Unicode scalars).
    var offset: Int
}

/// Text released to the client, with the tokens whose text starts in it.
struct Chunk {
    var text: String
    var tokens: [TokenInfo]
}

/// How a generation ended.
struct Outcome {
    /// "stop" (end-of-text token or stop string) or "length".
    var finishReason: String
    /// Tokens the model generated.
    var completionTokens: Int
}

/// Runs one request on the decoder: incremental text, stop strings, log-probabilities.
enum Generation {
    /// Queues the request.
    /// - Throws: `APIError`: 503 when the queue is full or the server is stopping, 400 otherwise.
    static func submit(_ p: GenerationParameters, to model: ServedModel) throws -> GenerationTicket {
        do { return try model.decoder.submit(p.request) } catch let e as BatchDecoderError {
            switch e {
            case .queueFull: throw APIError(.serviceUnavailable, "the server is busy: \(e.description)", type: "server_error", code: "queue_full")
            case .shutDown: throw APIError(.serviceUnavailable, "the server is shutting down", type: "server_error")
            case .promptTooLong: throw APIError.invalid(e.description, param: "prompt", code: "context_length_exceeded")
            case .invalidRequest: throw APIError.invalid(e.description)
            }
        }
    }

    /// Reads `ticket`'s tokens, calling `emit` with text as it becomes safe to send (never part of
    /// a stop string). Cancels the ticket when it returns or throws — a stop string, a failed
    /// write to a client that left, or task cancellation — so the sequence's slot is freed.
    static func consume(_ ticket: GenerationTicket, _ p: GenerationParameters, model: ServedModel,
                        emit: (Chunk) async throws -> Void) async throws -> Outcome {
        defer { ticket.cancel() }
        var stream = TextStream(model.tokenizer)
        var matcher = StopMatcher(p.stop)
        var pending: [TokenInfo] = []
        var generated = 0
        /// Tokens whose text starts before `end`; the others stay pending.
        func release(before end: Int) -> [TokenInfo] {
            let split = pending.firstIndex { $0.offset >= end } ?? pending.count
            defer { pending.removeFirst(split) }
            return Array(pending[..<split])
        }
        for await event in ticket.events {
            switch event {
            case .token(let t):
                generated += 1
                if let lp = t.logprob {
                    pending.append(TokenInfo(token: choice(t.id, lp, model), top: t.top.map { choice($0.id, $0.logprob, model) },
                                             offset: matcher.text.count))
                }
                let (text, stopped) = matcher.push(stream.push(t.id))
                let tokens = release(before: matcher.sent)
                if !text.isEmpty || !tokens.isEmpty { try await emit(Chunk(text: text, tokens: tokens)) }
                if stopped {
                    ticket.cancel()
                    return Outcome(finishReason: "stop", completionTokens: generated)
                }
            case .finished(let reason):
                var (text, stopped) = matcher.push(stream.finish())
                text += matcher.finish()
                let tokens = release(before: stopped ? matcher.sent : Int.max)
                if !text.isEmpty || !tokens.isEmpty { try await emit(Chunk(text: text, tokens: tokens)) }
                return Outcome(finishReason: reason == .length && !stopped ? "length" : "stop", completionTokens: generated)
            case .failed(let why):
                throw APIError(.internalServerError, "generation failed: \(why)", type: "server_error")
            }
        }
        throw CancellationError()  // the stream ended without an outcome: this task was cancelled
    }

    private static func choice(_ id: Int32, _ logprob: Float, _ model: ServedModel) -> TokenInfo.Choice {
        TokenInfo.Choice(id: id, text: model.tokenizer.decode([id]), bytes: model.bytes(id), logprob: logprob)
    }
}
