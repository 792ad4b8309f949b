import Emerald
import EmeraldCore
import Foundation
import XCTest

/// Continuous batching: sequences decoded together get, bit for bit, the logits and tokens
/// they get alone; requests join, leave, cancel and overflow the queue as documented.
final class BatchDecoderTests: XCTestCase {
    /// A tiny model (unthreaded products) and one wide enough that products split over threads.
    private let configs = [
        GPTConfig(vocabSize: 61, blockSize: 48, nLayer: 2, nHead: 2, nEmbd: 16),
        GPTConfig(vocabSize: 300, blockSize: 64, nLayer: 2, nHead: 4, nEmbd: 128, tieWeights: false),
    ]

    private func model(_ cfg: GPTConfig, seed: UInt64 = 3) -> GPT {
        var rng = RandomGenerator(seed: seed)
        let m = GPT(cfg, rng: &rng)
        m.eval()
        return m
    }

    /// One forward over several sequences (ragged: prompts of different lengths, then one token
    /// each) equals each sequence's own forward to the bit, in fp32, bf16 and int8.
    func testBatchedForwardEqualsEachSequenceAlone() {
        for cfg in configs {
            for precision in DecodePrecision.allCases {
                let m = model(cfg)
                m.setDecodePrecision(precision)
                let prompts = (0..<5).map { TestSupport.ids(3 + 4 * $0, vocab: cfg.vocabSize, seed: UInt64(10 + $0)) }
                let alone = prompts.map { _ in m.makeCache()! }, together = prompts.map { _ in m.makeCache()! }
                var expected: [Float] = []
                for (p, cache) in zip(prompts, alone) { expected += withNoGrad { m(p, cache: cache, lastOnly: true) }.scalars }
                let got = withNoGrad { m(prompts.flatMap { $0 }, caches: together, counts: prompts.map(\.count)) }
                XCTAssertEqual(got.shape, [prompts.count, cfg.vocabSize])
                XCTAssertEqual(got.scalars, expected, "prefill, \(precision), width \(cfg.nEmbd)")
                for step in 0..<4 {
                    let next = prompts.indices.map { Int32(($0 * 7 + step) % cfg.vocabSize) }
                    var one: [Float] = []
                    for (id, cache) in zip(next, alone) { one += withNoGrad { m([id], cache: cache, lastOnly: true) }.scalars }
                    let all = withNoGrad { m(next, caches: together, counts: Array(repeating: 1, count: next.count)) }
                    XCTAssertEqual(all.scalars, one, "decode step \(step), \(precision), width \(cfg.nEmbd)")
                }
            }
        }
    }

    /// 16 requests at once (greedy and sampled, prompts of different lengths) draw exactly the
    /// tokens `Generator.generate` draws for each alone with the same seed.
    func testSixteenConcurrentRequestsMatchGenerateAlone() async throws {
        for cfg in configs {
            let m = model(cfg)
            let decoder = try BatchDecoder(model: m, maxBatch: 16, maxQueue: 64, context: cfg.blockSize)
            defer { decoder.shutdown() }
            let requests = (0..<16).map { i in
                GenerationRequest(prompt: TestSupport.ids(1 + (i * 5) % 17, vocab: cfg.vocabSize, seed: UInt64(i)),
                                  maxNewTokens: 12 + i % 5,
                                  sampling: SamplingOptions(temperature: i % 2 == 0 ? 0 : 0.9, topK: i % 4 == 1 ? 20 : nil),
                                  seed: UInt64(100 + i))
            }
            let tickets = try requests.map { try decoder.submit($0) }
            var outputs: [[Int32]] = []
            for ticket in tickets { outputs.append(try await collect(ticket).ids) }
            for (i, request) in requests.enumerated() {
                var rng = RandomGenerator(seed: request.seed)
                let alone = try Generator.generate(model: m, prompt: request.prompt, maxNewTokens: request.maxNewTokens,
                                                   options: request.sampling, rng: &rng)
                XCTAssertEqual(outputs[i], alone, "request \(i), width \(cfg.nEmbd)")
            }
            let stats = decoder.statistics
            XCTAssertEqual(stats.requests, 16)
            XCTAssertEqual(stats.generatedTokens, requests.reduce(0) { $0 + $1.maxNewTokens })
            XCTAssertGreaterThan(stats.lastBatchSize, 0)
            XCTAssertLessThanOrEqual(stats.widestStep, Tensor.rowInvariantRows)
        }
    }

    /// Four 16-token prompts fill a step's 64 rows; a fifth must not be read alone before it
    /// (its first decode row made the step 65 rows, computed by the blocked fp32 product, not
    /// the int8 copies). A blocker request holds the model until all five wait.
    func testAStepNeverReadsMoreRowsThanRowInvariant() async throws {
        let cfg = configs[0]
        let inner = model(cfg)
        inner.setDecodePrecision(.int8)
        defer { inner.setDecodePrecision(.fp32) }
        let gated = GatedModel(inner)
        let decoder = try BatchDecoder(model: gated, maxBatch: 8, maxQueue: 8, context: cfg.blockSize)
        defer { decoder.shutdown(); for _ in 0..<100 { gated.gate.signal() } }
        let blocker = try decoder.submit(GenerationRequest(prompt: [1], maxNewTokens: 1))
        gated.entered.wait()  // the blocker's forward has begun: the five below all wait
        let requests = (0..<5).map { i in
            GenerationRequest(prompt: TestSupport.ids(16, vocab: cfg.vocabSize, seed: UInt64(40 + i)), maxNewTokens: 4,
                              sampling: SamplingOptions(temperature: 0))
        }
        let tickets = try requests.map { try decoder.submit($0) }
        for _ in 0..<100 { gated.gate.signal() }
        _ = try await collect(blocker)
        for (i, ticket) in tickets.enumerated() {
            let got = try await collect(ticket)
            var rng = RandomGenerator(seed: 0)
            let alone = try Generator.generate(model: inner, prompt: requests[i].prompt, maxNewTokens: 4, options: requests[i].sampling,
                                               rng: &rng)
            XCTAssertEqual(got.ids, alone, "request \(i)")
        }
        XCTAssertEqual(decoder.statistics.widestStep, Tensor.rowInvariantRows, "four prompts filled one step, and no more")
    }

    /// The decoder's thread and the pool's workers carry names the kernel shows (`top -H`,
    /// perf, /proc), and `nameCurrentThread` keeps Linux's 15 bytes.
    func testComputeThreadsAreNamed() throws {
        #if os(Linux)
        func names() -> [String] {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
            return tasks.compactMap { try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8) }
                .map { $0.trimmingCharacters(in: .newlines) }
        }
        let pool = ThreadPool(threads: 2)
        defer { pool.shutdown() }
        let decoder = try BatchDecoder(model: model(configs[0]), maxBatch: 1, maxQueue: 1, context: 8)
        defer { decoder.shutdown() }
        let deadline = Date().addingTimeInterval(10)
        while !(names().contains("emerald-decode") && names().contains("emerald-worker")) && Date() < deadline { usleep(10_000) }
        XCTAssertTrue(names().contains("emerald-decode"), "\(names())")
        XCTAssertTrue(names().contains("emerald-worker"), "\(names())")
        let named = Thread {
            nameCurrentThread("emerald-a-name-longer-than-linux-keeps")
            XCTAssertEqual(try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8), "emerald-a-name-\n")
        }
        named.start()
        while !named.isFinished && Date() < deadline { usleep(1_000) }
        XCTAssertTrue(named.isFinished)
        #endif
    }

    /// A cancelled request frees its slot: the one waiting behind it then runs. The model
    /// takes one forward per permit, so the test decides when steps happen.
    func testCancelFreesTheSlotAndAFullQueueRefuses() async throws {
        let cfg = configs[0]
        let gated = GatedModel(model(cfg))
        let decoder = try BatchDecoder(model: gated, maxBatch: 1, maxQueue: 1, context: cfg.blockSize)
        defer { decoder.shutdown(); for _ in 0..<100 { gated.gate.signal() } }
        let long = try decoder.submit(GenerationRequest(prompt: [1, 2], maxNewTokens: 40))
        gated.gate.signal()  // its prompt: the first token
        var iterator = long.events.makeAsyncIterator()
        guard case .token = await iterator.next() else { return XCTFail("no first token") }
        // It holds the only slot: the next request waits, the one after finds the queue full.
        let queued = try decoder.submit(GenerationRequest(prompt: [3], maxNewTokens: 3))
        XCTAssertThrowsError(try decoder.submit(GenerationRequest(prompt: [4], maxNewTokens: 3))) { error in
            XCTAssertEqual(error as? BatchDecoderError, .queueFull(limit: 1))
        }
        long.cancel()
        for _ in 0..<5 { gated.gate.signal() }  // at most one step of `long`, then `queued`'s prompt and two steps
        var last: GenerationEvent?, tokens = 1
        while let event = await iterator.next() {
            if case .token = event { tokens += 1 }
            last = event
        }
        guard case .finished(.cancelled) = last else { return XCTFail("cancelled request ended with \(String(describing: last))") }
        XCTAssertLessThanOrEqual(tokens, 2, "cancelled within a step")
        let result = try await collect(queued)
        XCTAssertEqual(result.ids.count, 3)
        XCTAssertEqual(result.reason, .length)
    }

    /// Stop tokens end a request without being emitted; logprobs are log-softmax values, the
    /// top ones sorted; the context bounds a completion; bad requests are refused.
    func testStopTokensLogprobsContextAndBadRequests() async throws {
        let cfg = configs[0]
        let m = model(cfg)
        let decoder = try BatchDecoder(model: m, maxBatch: 4, maxQueue: 4, context: 20)
        defer { decoder.shutdown() }
        let greedy = try await collect(try decoder.submit(GenerationRequest(prompt: [5, 16, 27, 3], maxNewTokens: 12,
                                                                            sampling: .init(temperature: 0), topLogprobs: 3)))
        XCTAssertEqual(greedy.ids.count, 12)
        for token in greedy.tokens {
            XCTAssertEqual(token.top.count, 3)
            XCTAssertEqual(token.top.first?.id, token.id, "greedy picks the most likely")
            XCTAssertEqual(token.logprob ?? 1, token.top[0].logprob, accuracy: 1e-6)
            XCTAssertTrue(zip(token.top, token.top.dropFirst()).allSatisfy { $0.logprob >= $1.logprob })
            XCTAssertLessThan(token.logprob ?? 1, 0)
        }
        // The first greedy token unlike those before it as a stop token: those before come out.
        let k = try XCTUnwrap(greedy.ids.indices.first { $0 > 0 && !greedy.ids[..<$0].contains(greedy.ids[$0]) })
        let stopped = try await collect(try decoder.submit(GenerationRequest(prompt: [5, 16, 27, 3], maxNewTokens: 12,
                                                                             sampling: .init(temperature: 0),
                                                                             stopTokens: [greedy.ids[k]])))
        XCTAssertEqual(stopped.ids, Array(greedy.ids.prefix(k)))
        XCTAssertEqual(stopped.reason, .stop)
        // 17 prompt tokens in a context of 20: 3 new ones, then "length".
        let full = try await collect(try decoder.submit(GenerationRequest(prompt: Array(repeating: 1, count: 17), maxNewTokens: 50)))
        XCTAssertEqual(full.ids.count, 3)
        XCTAssertEqual(full.reason, .length)
        XCTAssertThrowsError(try decoder.submit(GenerationRequest(prompt: Array(repeating: 1, count: 20), maxNewTokens: 1)))
        XCTAssertThrowsError(try decoder.submit(GenerationRequest(prompt: [], maxNewTokens: 1)))
        XCTAssertThrowsError(try decoder.submit(GenerationRequest(prompt: [1], maxNewTokens: 0)))
        XCTAssertThrowsError(try decoder.submit(GenerationRequest(prompt: [1], maxNewTokens: 1, topLogprobs: 21)))
        XCTAssertThrowsError(try decoder.submit(GenerationRequest(prompt: [1], maxNewTokens: 1, sampling: .init(temperature: -1))))
        XCTAssertThrowsError(try BatchDecoder(model: m, maxBatch: 0, maxQueue: 1, context: 20))
        XCTAssertThrowsError(try BatchDecoder(model: m, maxBatch: 4, maxQueue: 1, context: cfg.blockSize + 1))
    }

    private func collect(_ ticket: GenerationTicket) async throws -> (ids: [Int32], tokens: [GeneratedToken], reason: FinishReason?) {
        var tokens: [GeneratedToken] = [], reason: FinishReason?
        for await event in ticket.events {
            switch event {
            case .token(let t): tokens.append(t)
            case .finished(let r): reason = r
            case .failed(let message): XCTFail(message)
            }
        }
        return (tokens.map(\.id), tokens, reason)
    }
}

/// A model that runs one forward per `gate` permit.
private final class GatedModel: Module, LanguageModel, @unchecked Sendable {
    let inner: GPT
    let gate = DispatchSemaphore(value: 0)
    /// Signalled as each forward starts (before it waits at the gate).
    let entered = DispatchSemaphore(value: 0)
    init(_ inner: GPT) { self.inner = inner }
    var config: ModelConfig { inner.config }
    var contextLength: Int? { inner.contextLength }
    func callAsFunction(_ ids: [Int32], batch: Int, time: Int, cache: KVCache?, lastOnly: Bool,
                        rng: inout RandomGenerator) -> Tensor {
        entered.signal()
        gate.wait()
        return inner(ids, batch: batch, time: time, cache: cache, lastOnly: lastOnly, rng: &rng)
    }
    func callAsFunction(_ ids: [Int32], caches: [KVCache], counts: [Int]) -> Tensor {
        entered.signal()
        gate.wait()
        return inner(ids, caches: caches, counts: counts)
    }
    func makeCache(capacity: Int?) -> KVCache? { inner.makeCache(capacity: capacity) }
}
