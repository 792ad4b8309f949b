import EmeraldCore
import Foundation
import Synchronization

// Stand-in written on the `serve` branch against the engine spec of issue 22, so the server can
// be built and tested before main's BatchDecoder lands; main's version replaces this file when
// merged. It keeps the spec's API and semantics, but decodes its active sequences one after
// another (each with its own KV cache) instead of in one batched forward.

/// One sequence to generate.
public struct GenerationRequest: Sendable {
    /// The prompt's ids (at least one).
    public var prompt: [Int32]
    /// Most ids to generate.
    public var maxNewTokens: Int
    /// How each id is drawn; temperature 0 is greedy.
    public var sampling: SamplingOptions
    /// Seed of this sequence's random generator.
    public var seed: UInt64
    /// Generation ends (reason `.stop`) when one of these is drawn; that id is not emitted.
    public var stopTokens: Set<Int32>
    /// nil: no log-probabilities; 0: the chosen id's; n (≤ 20): and the n most likely ids'.
    public var topLogprobs: Int?

    /// A request; see the properties.
    public init(prompt: [Int32], maxNewTokens: Int, sampling: SamplingOptions = .init(), seed: UInt64 = 0,
                stopTokens: Set<Int32> = [], topLogprobs: Int? = nil) {
        self.prompt = prompt; self.maxNewTokens = maxNewTokens; self.sampling = sampling; self.seed = seed
        self.stopTokens = stopTokens; self.topLogprobs = topLogprobs
    }
}

/// An id and its log-probability under the model (temperature 1).
public struct TokenLogprob: Sendable {
    /// Token id.
    public var id: Int32
    /// Natural log of its probability.
    public var logprob: Float
    /// Bundles the two.
    public init(id: Int32, logprob: Float) { self.id = id; self.logprob = logprob }
}

/// One generated id, with its log-probabilities when the request asked for them.
public struct GeneratedToken: Sendable {
    /// The id drawn.
    public var id: Int32
    /// Its log-probability (nil when not asked for).
    public var logprob: Float?
    /// The most likely ids, most likely first (empty when not asked for).
    public var top: [TokenLogprob]
}

/// Why a sequence ended.
public enum FinishReason: String, Sendable {
    /// A stop id was drawn.
    case stop
    /// `maxNewTokens` (or the context) was reached.
    case length
    /// The ticket was cancelled.
    case cancelled
}

/// What a ticket's stream carries: ids, then one `finished` or `failed`.
public enum GenerationEvent: Sendable {
    /// The next generated id.
    case token(GeneratedToken)
    /// The sequence ended.
    case finished(FinishReason)
    /// The model failed (non-finite logits); the sequence ended.
    case failed(String)
}

/// Why `submit` refused a request.
public enum BatchDecoderError: Error, CustomStringConvertible {
    /// As many requests as `maxQueue` are already waiting.
    case queueFull(limit: Int)
    /// The prompt does not leave room for a new token in the context.
    case promptTooLong(tokens: Int, context: Int)
    /// A setting no sequence can use.
    case invalidRequest(String)
    /// `shutdown()` was called.
    case shutDown

    /// One line saying what was wrong.
    public var description: String {
        switch self {
        case .queueFull(let limit): return "the queue is full (\(limit) requests waiting); try again later"
        case .promptTooLong(let tokens, let context): return "the prompt is \(tokens) tokens; the context holds \(context)"
        case .invalidRequest(let why): return why
        case .shutDown: return "the decoder is shut down"
        }
    }
}

/// A submitted request: its events, and a way to stop it early.
public final class GenerationTicket: Sendable {
    /// Generated ids as they are drawn, then the reason the sequence ended.
    public let events: AsyncStream<GenerationEvent>
    private let cancelled = Atomic<Bool>(false)

    init(events: AsyncStream<GenerationEvent>) { self.events = events }

    /// Stops the sequence (it ends with `.cancelled`) and frees its slot.
    public func cancel() { cancelled.store(true, ordering: .relaxed) }

    var isCancelled: Bool { cancelled.load(ordering: .relaxed) }
}

/// What the decoder has done so far.
public struct BatchDecoderStatistics: Sendable {
    /// Sequences being decoded, and waiting.
    public var active = 0, queued = 0
    /// Requests accepted, prompt ids read, ids generated, decode steps run, sequences in the last step.
    public var requests = 0, promptTokens = 0, generatedTokens = 0, steps = 0, lastBatchSize = 0
    /// Generated ids per second over the last few seconds.
    public var tokensPerSecond = 0.0
}

/// Decodes up to `maxBatch` sequences at a time on one thread; more wait in a queue of
/// `maxQueue`. Sequences join and leave between steps (continuous batching).
public final class BatchDecoder: @unchecked Sendable {
    /// Positions a sequence may use (prompt and generated ids).
    public let context: Int
    private let model: any LanguageModel
    private let maxBatch: Int, maxQueue: Int
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var waiting: [Sequence] = []
    private var stats = BatchDecoderStatistics()
    private var recent: [(time: Double, tokens: Int)] = []
    private var stopped = false

    /// A decoder over `model` (which it alone uses from now on).
    public init(model: any LanguageModel, maxBatch: Int, maxQueue: Int, context: Int) {
        self.model = model; self.maxBatch = max(1, maxBatch); self.maxQueue = max(0, maxQueue); self.context = context
        model.eval()
        let thread = Thread { self.loop() }  // holds the decoder until shutdown()
        thread.name = "emerald-decoder"
        thread.start()
    }

    /// Queues a request; its ticket streams the ids.
    /// - Throws: `BatchDecoderError`.
    public func submit(_ request: GenerationRequest) throws -> GenerationTicket {
        guard !request.prompt.isEmpty else { throw BatchDecoderError.invalidRequest("the prompt is empty") }
        guard request.maxNewTokens >= 1 else { throw BatchDecoderError.invalidRequest("maxNewTokens must be at least 1") }
        guard request.prompt.count < context else { throw BatchDecoderError.promptTooLong(tokens: request.prompt.count, context: context) }
        let vocab = model.config.vocabularySize
        guard request.prompt.allSatisfy({ $0 >= 0 && Int($0) < vocab }) else {
            throw BatchDecoderError.invalidRequest("a prompt id is outside the vocabulary (0..<\(vocab))")
        }
        if let n = request.topLogprobs, !(0...20).contains(n) { throw BatchDecoderError.invalidRequest("topLogprobs must be in 0...20") }
        do { try request.sampling.validate() } catch { throw BatchDecoderError.invalidRequest("\(error)") }
        let (stream, continuation) = AsyncStream<GenerationEvent>.makeStream()
        let ticket = GenerationTicket(events: stream)
        continuation.onTermination = { _ in ticket.cancel() }  // the consumer went away
        condition.lock(); defer { condition.unlock() }
        guard !stopped else { throw BatchDecoderError.shutDown }
        // Free batch slots take requests beyond the queue's limit: they wait only for the next step.
        guard waiting.count < maxQueue + max(0, maxBatch - stats.active) else {
            throw BatchDecoderError.queueFull(limit: maxQueue)
        }
        waiting.append(Sequence(request: request, ticket: ticket, continuation: continuation, cache: model.makeCache()))
        stats.requests += 1
        stats.queued = waiting.count
        condition.signal()
        return ticket
    }

    /// Counters so far.
    public var statistics: BatchDecoderStatistics {
        condition.lock(); defer { condition.unlock() }
        var s = stats
        let now = Date().timeIntervalSinceReferenceDate
        let window = recent.filter { now - $0.time <= 10 }
        if let first = window.first { s.tokensPerSecond = Double(window.reduce(0) { $0 + $1.tokens }) / max(1, now - first.time) }
        return s
    }

    /// Ends every sequence (`.cancelled`) and refuses new ones.
    public func shutdown() {
        condition.lock(); stopped = true; condition.signal(); condition.unlock()
    }

    private final class Sequence {
        let request: GenerationRequest
        let ticket: GenerationTicket
        let continuation: AsyncStream<GenerationEvent>.Continuation
        let cache: KVCache?
        var ids: [Int32], pending: [Int32], generated = 0
        var rng: RandomGenerator
        init(request: GenerationRequest, ticket: GenerationTicket, continuation: AsyncStream<GenerationEvent>.Continuation, cache: KVCache?) {
            self.request = request; self.ticket = ticket; self.continuation = continuation; self.cache = cache
            ids = request.prompt; pending = request.prompt; rng = RandomGenerator(seed: request.seed)
        }
        func end(_ event: GenerationEvent) { continuation.yield(event); continuation.finish() }
    }

    private func loop() {
        var active: [Sequence] = []
        while true {
            condition.lock()
            while waiting.isEmpty && active.isEmpty && !stopped { condition.wait() }
            if stopped {
                let all = active + waiting
                waiting = []
                condition.unlock()
                for s in all { s.end(.finished(.cancelled)) }
                return
            }
            while active.count < maxBatch && !waiting.isEmpty { active.append(waiting.removeFirst()) }
            stats.queued = waiting.count; stats.active = active.count
            condition.unlock()
            var produced = 0, prompt = 0
            active.removeAll { s in
                if s.generated == 0 { prompt += s.request.prompt.count }
                if !s.ticket.isCancelled { produced += 1 }
                let ended = s.ticket.isCancelled ? .finished(.cancelled) : step(s)
                guard let ended else { return false }
                // The slot is free before the client hears the end: a request it sends next finds room.
                condition.lock(); stats.active -= 1; condition.unlock()
                s.end(ended)
                return true
            }
            condition.lock()
            stats.steps += 1; stats.lastBatchSize = produced; stats.generatedTokens += produced; stats.promptTokens += prompt
            let now = Date().timeIntervalSinceReferenceDate
            recent.append((now, produced)); recent.removeAll { now - $0.time > 10 }
            condition.unlock()
        }
    }

    /// Draws one id for `s`; the sequence's last event when it ended.
    private func step(_ s: Sequence) -> GenerationEvent? {
        let logits: Tensor = withNoGrad {
            if let cache = s.cache { return model(s.pending, cache: cache, lastOnly: true) }
            let window = Array(s.ids.suffix(model.contextLength ?? s.ids.count))
            return model(window, batch: 1, time: window.count, cache: nil, lastOnly: true, rng: &s.rng)
        }
        guard logits.isFinite else { return .failed("the model's logits hold NaN or infinity") }
        let id = Int32(logits.sample(s.request.sampling.rule, rng: &s.rng))
        if s.request.stopTokens.contains(id) { return .finished(.stop) }
        var token = GeneratedToken(id: id, logprob: nil, top: [])
        if let n = s.request.topLogprobs { token = Self.logprobs(logits.scalars, chosen: id, top: n) }
        s.continuation.yield(.token(token))
        s.generated += 1; s.ids.append(id); s.pending = [id]
        if s.generated >= s.request.maxNewTokens || s.ids.count >= context { return .finished(.length) }
        return nil
    }

    /// Log-softmax of `logits` at `chosen`, and the `top` most likely ids.
    static func logprobs(_ logits: [Float], chosen: Int32, top: Int) -> GeneratedToken {
        let m = logits.max() ?? 0
        let lse = Double(m) + log(logits.reduce(0.0) { $0 + exp(Double($1 - m)) })
        let lp = { (i: Int) in Float(Double(logits[i]) - lse) }
        var best: [TokenLogprob] = []
        if top > 0 {
            best = logits.indices.sorted { logits[$0] > logits[$1] || logits[$0] == logits[$1] && $0 < $1 }
                .prefix(top).map { TokenLogprob(id: Int32($0), logprob: lp($0)) }
        }
        return GeneratedToken(id: chosen, logprob: lp(Int(chosen)), top: best)
    }
}
