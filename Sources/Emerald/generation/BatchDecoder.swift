import EmeraldCore
import Foundation
import Synchronization

/// One generation job for `BatchDecoder`.
public struct GenerationRequest: Sendable {
    /// The ids to continue (at least one).
    public var prompt: [Int32]
    /// New tokens to draw at most.
    public var maxNewTokens: Int
    /// Temperature (0: greedy), top-k, top-p.
    public var sampling: SamplingOptions
    /// Seeds this request's own generator: the same request draws the same tokens whatever
    /// else is decoded beside it (as `emerald sample --seed`).
    public var seed: UInt64
    /// Ids that end generation (reason `.stop`) when drawn; such an id is not emitted.
    public var stopTokens: Set<Int32>
    /// nil: no log-probabilities; 0: the chosen token's; n (≤ 20): and the n most likely.
    public var topLogprobs: Int?

    /// A request; see each property.
    public init(prompt: [Int32], maxNewTokens: Int, sampling: SamplingOptions = .init(), seed: UInt64 = 0,
                stopTokens: Set<Int32> = [], topLogprobs: Int? = nil) {
        self.prompt = prompt; self.maxNewTokens = maxNewTokens; self.sampling = sampling; self.seed = seed
        self.stopTokens = stopTokens; self.topLogprobs = topLogprobs
    }
}

/// A token id with its log-probability under the model (before temperature and truncation).
public struct TokenLogprob: Sendable, Equatable {
    /// The id.
    public var id: Int32
    /// log p(id | context).
    public var logprob: Float
}

/// One drawn token.
public struct GeneratedToken: Sendable {
    /// The id.
    public var id: Int32
    /// Its log-probability, when the request asked for them.
    public var logprob: Float?
    /// The most likely ids at this position, most likely first (`topLogprobs` of them).
    public var top: [TokenLogprob]
}

/// Why a generation ended.
public enum FinishReason: String, Sendable {
    /// A stop token was drawn (or the caller stopped it at a stop string).
    case stop
    /// `maxNewTokens` were drawn, or the context is full.
    case length
    /// The ticket was cancelled (e.g. its client went away).
    case cancelled
}

/// What a ticket's stream delivers: tokens, then one `finished` or `failed`.
public enum GenerationEvent: Sendable {
    /// The next token.
    case token(GeneratedToken)
    /// The end.
    case finished(FinishReason)
    /// The job could not go on (the message says why).
    case failed(String)
}

/// Why `BatchDecoder.submit` refused a request.
public enum BatchDecoderError: Error, CustomStringConvertible, Equatable {
    /// `limit` requests already wait.
    case queueFull(limit: Int)
    /// The prompt leaves no room to generate in the context.
    case promptTooLong(tokens: Int, context: Int)
    /// The request is malformed (the message names the field).
    case invalidRequest(String)
    /// The decoder was shut down.
    case shutDown

    public var description: String {
        switch self {
        case .queueFull(let limit): return "the queue is full (\(limit) requests waiting); try again shortly"
        case .promptTooLong(let tokens, let context):
            return "the prompt is \(tokens) tokens but the context holds \(context) (prompt and completion together)"
        case .invalidRequest(let message): return message
        case .shutDown: return "the server is shutting down"
        }
    }
}

/// A submitted request: its events, and a way to stop it.
public final class GenerationTicket: Sendable {
    /// Tokens as they are drawn, then one `finished` or `failed`; the stream then ends.
    public let events: AsyncStream<GenerationEvent>
    fileprivate let cancelled = Atomic<Bool>(false)

    fileprivate init(events: AsyncStream<GenerationEvent>) { self.events = events }

    /// Stops the job at the decoder's next step (its slot is freed; it finishes `.cancelled`).
    public func cancel() { cancelled.store(true, ordering: .relaxed) }
}

/// Counters for monitoring (`/metrics`).
public struct BatchDecoderStatistics: Sendable {
    /// Sequences being decoded, and requests waiting for a slot.
    public var active = 0, queued = 0
    /// Requests accepted, prompt tokens read, tokens generated, decode steps run.
    public var requests = 0, promptTokens = 0, generatedTokens = 0, steps = 0
    /// Sequences in the last decode step.
    public var lastBatchSize = 0
    /// The most positions one decode step has read (decode rows and joining prompts): at
    /// most `Tensor.rowInvariantRows`, so that each sequence gets what it gets alone.
    public var widestStep = 0
    /// Tokens generated per second over the last 10 seconds.
    public var tokensPerSecond = 0.0
}

/// Continuous batching: requests join and leave a running batch between steps. Each decode
/// step is one forward over every active sequence (its own KV cache), so the weights are read
/// once for all of them; a waiting request's prompt is read between decode steps. With
/// row-invariant products (`Tensor.rowInvariantRows`), each sequence gets the tokens it gets
/// decoded alone (`Generator.generate` with the same seed).
///
/// The model runs on one thread of the decoder's own; `submit` and `cancel` may be called from
/// any thread.
public final class BatchDecoder: @unchecked Sendable {
    /// Positions per sequence (prompt and completion).
    public let context: Int
    /// Sequences decoded together at most, and requests that may wait.
    public let maxBatch: Int, maxQueue: Int

    private let model: any LanguageModel
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var waiting: [Job] = []
    private var stopping = false
    private var stats = BatchDecoderStatistics()
    private var recent: [(time: Double, tokens: Int)] = []
    // The decode thread's own.
    private var active: [Job] = []
    private var spareCaches: [KVCache] = []

    /// Serves `model` (put in evaluation mode) with up to `maxBatch` sequences of `context`
    /// positions at once (at most the model's context, and `Tensor.rowInvariantRows`).
    public init(model: any LanguageModel, maxBatch: Int, maxQueue: Int, context: Int) throws {
        guard maxBatch >= 1 && maxBatch <= Tensor.rowInvariantRows else {
            throw EmeraldError.invalidArgument("`max_batch` must be in 1...\(Tensor.rowInvariantRows), got \(maxBatch)")
        }
        guard maxQueue >= 0 else { throw EmeraldError.invalidArgument("`max_queue` must be ≥ 0, got \(maxQueue)") }
        let limit = model.contextLength ?? Int.max
        guard context >= 2 && context <= limit else {
            throw EmeraldError.invalidArgument("`context` must be in 2...\(limit == Int.max ? "∞" : String(limit)), got \(context)")
        }
        self.model = model; self.maxBatch = maxBatch; self.maxQueue = maxQueue; self.context = context
        model.eval()
        let thread = Thread { [unowned self] in nameCurrentThread("emerald-decode"); self.run() }
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// Queues `request`; its tokens arrive on the ticket's stream.
    /// - Throws: `BatchDecoderError` when the queue is full, the prompt leaves no room, or a
    ///   field is out of range.
    public func submit(_ request: GenerationRequest) throws -> GenerationTicket {
        guard !request.prompt.isEmpty else { throw BatchDecoderError.invalidRequest("the prompt is empty") }
        guard request.maxNewTokens >= 1 else {
            throw BatchDecoderError.invalidRequest("`max_tokens` must be at least 1, got \(request.maxNewTokens)")
        }
        guard request.prompt.count < context else {
            throw BatchDecoderError.promptTooLong(tokens: request.prompt.count, context: context)
        }
        if let n = request.topLogprobs, !(0...20).contains(n) {
            throw BatchDecoderError.invalidRequest("`logprobs` must be in 0...20, got \(n)")
        }
        do { try request.sampling.validate() } catch { throw BatchDecoderError.invalidRequest("\(error)") }
        let (stream, continuation) = AsyncStream<GenerationEvent>.makeStream()
        let ticket = GenerationTicket(events: stream)
        continuation.onTermination = { [weak ticket] _ in ticket?.cancel() }
        let job = Job(request, ticket: ticket, continuation: continuation)
        condition.lock()
        defer { condition.unlock() }
        guard !stopping else { throw BatchDecoderError.shutDown }
        guard waiting.count < maxQueue || (waiting.isEmpty && stats.active < maxBatch) else {
            throw BatchDecoderError.queueFull(limit: maxQueue)
        }
        waiting.append(job)
        stats.requests += 1
        stats.queued = waiting.count
        condition.signal()
        return ticket
    }

    /// A snapshot of the counters.
    public var statistics: BatchDecoderStatistics {
        condition.lock()
        defer { condition.unlock() }
        var s = stats
        let now = Self.now()
        let window = recent.filter { now - $0.time <= 10 }
        if let first = window.first {
            s.tokensPerSecond = Double(window.reduce(0) { $0 + $1.tokens }) / Swift.max(1, now - first.time)
        }
        return s
    }

    /// Ends every job (`failed`) and the decode thread after its current step.
    public func shutdown() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    // MARK: The decode thread

    private func run() {
        while true {
            condition.lock()
            while waiting.isEmpty && active.isEmpty && !stopping { condition.wait() }
            if stopping {
                let all = waiting + active
                waiting = []
                condition.unlock()
                active = []
                for job in all { job.finish(.failed(BatchDecoderError.shutDown.description)) }
                return
            }
            // Cancelled sequences leave first, so their slots take waiting requests now.
            let cancelled = active.filter { $0.ticket.cancelled.load(ordering: .relaxed) }
            active.removeAll { job in cancelled.contains { $0 === job } }
            stats.active = active.count
            // New sequences: prompts that fit beside the decode rows in one row-invariant forward
            // are read in it (each computed as it would be alone); the first that does not fit
            // is read in a forward of its own.
            var joining: [Job] = [], alone: Job?
            var rows = active.count
            while active.count + joining.count + (alone == nil ? 0 : 1) < maxBatch, let next = waiting.first {
                if rows + next.ids.count <= Tensor.rowInvariantRows {
                    joining.append(waiting.removeFirst())
                    rows += next.ids.count
                } else if alone == nil && rows + 1 <= Tensor.rowInvariantRows {
                    // Its prompt now, then its first decode row rides this step beside the others.
                    alone = waiting.removeFirst()
                    rows += 1
                } else {
                    break
                }
            }
            stats.queued = waiting.count
            condition.unlock()
            for job in cancelled { release(job, .finished(.cancelled)) }
            var produced = 0
            if let job = alone { produced += prefill(job) }
            produced += step(joining: joining)
            condition.lock()
            stats.active = active.count
            let now = Self.now()
            recent.append((now, produced))
            recent.removeAll { now - $0.time > 10 }
            condition.unlock()
        }
    }

    /// Gives `job` a cache (nil for a model without one) and counts its prompt; false if it was
    /// cancelled while it waited (then it is finished).
    private func start(_ job: Job) -> Bool {
        guard !job.ticket.cancelled.load(ordering: .relaxed) else {
            job.finish(.finished(.cancelled))
            return false
        }
        condition.lock()
        stats.promptTokens += job.ids.count
        condition.unlock()
        job.cache = spareCaches.popLast() ?? model.makeCache(capacity: context)
        job.cache?.reset()
        return true
    }

    /// Reads `job`'s prompt in a forward of its own and draws its first token; returns the
    /// tokens drawn (0 or 1).
    private func prefill(_ job: Job) -> Int {
        guard start(job) else { return 0 }
        let logits = withNoGrad {
            if let cache = job.cache { return model(job.ids, caches: [cache], counts: [job.ids.count]) }
            return uncached(job)
        }
        active.append(job)
        return deliver(logits, to: [job])
    }

    /// One forward over every active sequence's last token and the prompts of `joining`;
    /// returns the tokens drawn.
    private func step(joining: [Job]) -> Int {
        let decoding = active.filter { $0.drawn > 0 }
        let joined = joining.filter { start($0) }
        var produced = 0
        // Models without a cache: one sequence at a time.
        for job in joined where job.cache == nil {
            active.append(job)
            produced += deliver(withNoGrad { uncached(job) }, to: [job])
        }
        for job in decoding where job.cache == nil { produced += deliver(withNoGrad { uncached(job) }, to: [job]) }
        let newcomers = joined.filter { $0.cache != nil }
        let jobs = decoding.filter { $0.cache != nil } + newcomers
        var rows = 0
        if !jobs.isEmpty {
            let ids = jobs.flatMap { $0.drawn > 0 ? [$0.ids.last!] : $0.ids }
            let counts = jobs.map { $0.drawn > 0 ? 1 : $0.ids.count }
            rows = ids.count
            let logits = withNoGrad { model(ids, caches: jobs.map { $0.cache! }, counts: counts) }
            active.append(contentsOf: newcomers)
            produced += deliver(logits, to: jobs)
        }
        guard !decoding.isEmpty || !joined.isEmpty else { return produced }
        condition.lock()
        stats.steps += 1
        stats.lastBatchSize = decoding.count + joined.count
        stats.widestStep = Swift.max(stats.widestStep, rows)
        condition.unlock()
        return produced
    }

    /// A model without a cache reads the whole (cropped) sequence each step.
    private func uncached(_ job: Job) -> Tensor {
        let ids = Array(job.ids.suffix(context))
        var rng = RandomGenerator(seed: 0)
        return model(ids, batch: 1, time: ids.count, cache: nil, lastOnly: true, rng: &rng)
    }

    /// Draws one token per row of `logits` for `jobs` (in order), emits it, and retires jobs
    /// that are done; returns the tokens emitted.
    private func deliver(_ logits: Tensor, to jobs: [Job]) -> Int {
        let finite = logits.finiteRows
        var generators = jobs.map(\.rng)
        let ids = logits.sampleRows(jobs.map(\.request.sampling.rule), generators: &generators)
        var emitted = 0
        for (s, job) in jobs.enumerated() {
            job.rng = generators[s]
            guard finite[s] else {
                retire(job, .failed("the model's logits hold NaN or infinity (its weights do, or float32 overflowed): no token can be drawn"))
                continue
            }
            let id = Int32(ids[s])
            job.drawn += 1
            if job.request.stopTokens.contains(id) { retire(job, .finished(.stop)); continue }
            var token = GeneratedToken(id: id, logprob: nil, top: [])
            if let n = job.request.topLogprobs { Self.logprobs(of: logits.slice(axis: 0, s..<(s + 1)).scalars, id: id, top: n, into: &token) }
            job.ids.append(id)
            // Counted before the client can see it, so counters read after a response include it.
            condition.lock(); stats.generatedTokens += 1; condition.unlock()
            job.continuation.yield(.token(token))
            emitted += 1
            if job.drawn >= job.request.maxNewTokens || job.ids.count >= context { retire(job, .finished(.length)) }
        }
        return emitted
    }

    /// log-softmax of `row` at `id`, and its `top` largest entries.
    static func logprobs(of row: [Float], id: Int32, top: Int, into token: inout GeneratedToken) {
        let m = row.max() ?? 0
        var sum: Double = 0
        for x in row { sum += Double(expf(x - m)) }
        let lse = m + Float(log(sum))
        token.logprob = row[Int(id)] - lse
        guard top > 0 else { return }
        var best: [(Int, Float)] = []
        for (i, x) in row.enumerated() where best.count < top || x > best[best.count - 1].1 {
            let at = best.firstIndex { x > $0.1 } ?? best.count
            best.insert((i, x), at: at)
            if best.count > top { best.removeLast() }
        }
        token.top = best.map { TokenLogprob(id: Int32($0.0), logprob: $0.1 - lse) }
    }

    /// Ends `job` with `event` and takes it out of the batch.
    private func retire(_ job: Job, _ event: GenerationEvent) {
        active.removeAll { $0 === job }
        // The slot is free before the client hears the end: a request it sends next finds it.
        condition.lock(); stats.active = active.count; condition.unlock()
        release(job, event)
    }

    private func release(_ job: Job, _ event: GenerationEvent) {
        if let cache = job.cache, spareCaches.count < maxBatch { spareCaches.append(cache) }
        job.cache = nil
        job.finish(event)
    }

    private static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}

/// A request being served (the decode thread's).
private final class Job {
    let request: GenerationRequest
    let ticket: GenerationTicket
    let continuation: AsyncStream<GenerationEvent>.Continuation
    /// Prompt and tokens so far.
    var ids: [Int32]
    var drawn = 0
    var rng: RandomGenerator
    var cache: KVCache?

    init(_ request: GenerationRequest, ticket: GenerationTicket, continuation: AsyncStream<GenerationEvent>.Continuation) {
        self.request = request; self.ticket = ticket; self.continuation = continuation
        ids = request.prompt
        rng = RandomGenerator(seed: request.seed)
    }

    func finish(_ event: GenerationEvent) {
        continuation.yield(event)
        continuation.finish()
    }
}
