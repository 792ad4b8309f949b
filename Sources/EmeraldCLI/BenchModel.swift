import ArgumentParser
import Emerald
import Foundation

/// Model shape for benchmarks: a preset, or explicit sizes.
struct BenchShapeOptions: ParsableArguments {
    @Option(help: "Preset: oz, baby, gpt2, gpt2-medium; with --arch llama: oz, smollm2-135m.") var preset: String?
    @Option(help: "Transformer architecture (bench generate): gpt or llama (default: gpt).") var arch: Architecture?
    @Option(help: "Transformer blocks.") var nLayer: Int?
    @Option(help: "Attention heads.") var nHead: Int?
    @Option(help: "Width.") var nEmbd: Int?
    @Option(help: "Vocabulary size (default: 50257 for gpt2 presets, else 65).") var vocabSize: Int?
    @Option(help: "Context length.") var blockSize: Int?

    func config() throws -> GPTConfig {
        try require(arch != .llama, "--arch llama is measured by `bench generate` only")
        let name = preset ?? "oz"
        var c = try GPTConfig.preset(name, vocabSize: vocabSize ?? (name.hasPrefix("gpt2") ? 50257 : 65))
        if let nLayer { c.nLayer = nLayer }
        if let nHead { c.nHead = nHead }
        if let nEmbd { c.nEmbd = nEmbd }
        if let blockSize { c.blockSize = blockSize }
        c.dropout = 0
        try c.validate()
        return c
    }

    /// The GPT of `config()`, or with `--arch llama` a Llama preset (default oz) with the sizes given.
    func modelConfig() throws -> ModelConfig {
        guard arch == .llama else { return .gpt(try config()) }
        var c = try LlamaConfig.preset(preset ?? "oz", vocabSize: vocabSize)
        if let nLayer { c.numHiddenLayers = nLayer }
        if let nHead { c.numAttentionHeads = nHead; c.numKeyValueHeads = nHead }
        if let nEmbd { c.hiddenSize = nEmbd; c.intermediateSize = (8 * nEmbd / 3 + 7) / 8 * 8 }
        if nEmbd != nil || nHead != nil { c.headDim = c.hiddenSize / Swift.max(c.numAttentionHeads, 1) }
        if let blockSize { c.maxPositionEmbeddings = blockSize }
        c.attentionDropout = 0; c.residualDropout = 0
        try c.validate()
        return .llama(c)
    }
}

/// Peak fp32 FLOP/s of this machine for MFU: per core, 2 FMA pipes × lanes × 2 FLOPs × clock.
/// Measured here (BENCHMARKS.md): ~100 GFLOP/s per core on AVX2 Zen 3, ~266 on AVX-512 Zen 5.
func peakGFLOPs(threads: Int) -> Double {
    if let s = ProcessInfo.processInfo.environment["EMERALD_PEAK_GFLOPS"], let v = Double(s) { return v * Double(threads) }
    let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    return (cpuinfo.contains("avx512f") ? 266 : 100) * Double(threads)
}

/// Peak resident set size of this process in MB.
func peakRSSMegabytes() -> Double {
    var usage = rusage()
    #if os(Linux)
    getrusage(RUSAGE_SELF.rawValue, &usage)
    #else
    getrusage(RUSAGE_SELF, &usage)
    #endif
    #if os(Linux)
    return Double(usage.ru_maxrss) / 1024  // KiB on Linux
    #else
    return Double(usage.ru_maxrss) / 1_048_576  // bytes on macOS
    #endif
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.isEmpty ? 0 : s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func printJSON(_ object: [String: Any]) throws {
    let d = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    print(String(decoding: d, as: UTF8.self))
}

struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Full training steps (forward, backward, AdamW) on synthetic tokens.")
    @OptionGroup var shape: BenchShapeOptions
    @Option(help: "Sequences per step.") var batchSize: Int = 12
    @Option(help: "Timed steps (median reported).") var steps: Int = 10
    @Option(help: "Untimed warm-up steps.") var warmup: Int = 2
    @Option(help: "Worker threads (default: all cores).") var threads: Int?
    @Option(help: "Precision of the training step: fp32 (the only one training runs in).") var dtype: String = "fp32"
    @Option(help: "Data-parallel shards: the batch split into this many slices that run at once, one per thread (default: one per thread for models up to 32M parameters, else 1).")
    var shards: Int?
    @Option(help: ArgumentHelp("Also time a variant, alternating step by step: one-shard (no data-parallel shards).",
                               valueName: "variant")) var versus: String?
    @Flag(help: "Also list the timed steps' matrix products by shape: calls per step, time, GFLOP/s.")
    var gemmProfile = false
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        try EmeraldCommand.guarded {
            try require(dtype == "fp32", "--dtype \(dtype): training steps run in fp32 only")
            try require(steps > 0 && warmup >= 0 && batchSize > 0, "--steps and --batch-size must be positive")
            try require(shards.map { $0 > 0 } ?? true, "--shards must be positive, got \(shards ?? 0)")
            // Under mpirun: every process takes its slice of each batch and the gradients are
            // summed across processes; process 0 reports compute and all-reduce time apart.
            let group = try DistributedOptions.join(nil, threads: threads)
            if let group { try group.requireDivides(batchSize: batchSize) }
            let cfg = try shape.config()
            try require(batchSize <= 1 << 30, "--batch-size must be in 1...\(1 << 30), got \(batchSize)")
            try MemoryEstimate.requireFits(MemoryEstimate.trainingBytes(.gpt(cfg), batchSize: batchSize, blockSize: cfg.blockSize),
                                           "this benchmark's model at --batch-size \(batchSize)")
            var rng = RandomGenerator(seed: 1)
            let model = GPT(cfg, rng: &rng)
            let shards = DataParallel.shards(requested: self.shards, parameterCount: model.parameterCount, batchSize: batchSize)
            // `--versus one-shard`: the variant runs the step unsharded (op-level threading only).
            var stepShards = shards
            try require(versus == nil || versus == "one-shard", "--versus takes one-shard, got \(versus ?? "")")
            let variant: ((Bool) -> Void)? = versus == nil ? nil : { stepShards = $0 ? 1 : shards }
            let t = cfg.blockSize
            let tokens = (0..<Swift.max(100_000, batchSize * (t + 1) * 4)).map { _ in Int32(rng.nextInt(below: cfg.vocabSize)) }
            var batches = try Batcher(source: TokenArray(tokens), batchSize: batchSize, blockSize: t, seed: 2)
            let opt = AdamW(model.namedParameters(), betas: (0.9, 0.95), weightDecay: 0.1)
            var times: [Double] = [], variantTimes: [Double] = [], reduceTimes: [Double] = []
            var lastLoss: Float = 0
            for i in 0..<(warmup + steps) * (variant == nil ? 1 : 2) {
                // With a variant, odd steps run it: both see the same machine, step by step.
                let isVariant = variant != nil && i % 2 == 1
                if isVariant { variant?(true) }
                defer { if isVariant { variant?(false) } }
                let timed = i / (variant == nil ? 1 : 2) >= warmup
                GEMMProfile.isEnabled = gemmProfile && timed && !isVariant
                defer { GEMMProfile.isEnabled = false }
                let start = DispatchTime.now().uptimeNanoseconds
                opt.zeroGrad()
                var reduce = 0.0
                if let group, group.size > 1 {
                    let rows = group.rows(of: batchSize), share = Float(rows.count) / Float(batchSize)
                    lastLoss = share * model.accumulateGradients(batches.next().rows(rows), shards: stepShards, scale: share,
                                                                 firstRow: rows.lowerBound, rng: &rng)
                    let before = group.allReduceSeconds
                    group.allReduceSum(opt.parameters.compactMap(\.grad))
                    reduce = group.allReduceSeconds - before
                } else {
                    lastLoss = model.accumulateGradients(batches.next(), shards: stepShards, rng: &rng)
                }
                opt.step(lr: 1e-4, clippingGradientNormTo: 1)
                let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                if timed {
                    if isVariant { variantTimes.append(elapsed) } else { times.append(elapsed); reduceTimes.append(reduce) }
                }
            }
            let sec = median(times)
            let tokensPerStep = Double(batchSize * t)
            let flops = cfg.trainingFlopsPerToken(contextLength: t) * tokensPerStep / sec
            let peak = peakGFLOPs(threads: ThreadPool.shared.threadCount) * 1e9
            var result: [String: Any] = [
                "n_layer": cfg.nLayer, "n_head": cfg.nHead, "n_embd": cfg.nEmbd, "vocab_size": cfg.vocabSize,
                "block_size": t, "batch_size": batchSize, "threads": ThreadPool.shared.threadCount, "dtype": dtype,
                "shards": shards,
                "tokens_per_s": (tokensPerStep / sec).rounded(), "ms_per_step": (sec * 1e5).rounded() / 100,
                "gflops": (flops / 1e7).rounded() / 100, "mfu": (flops / peak * 1e4).rounded() / 1e4,
                "peak_rss_mb": (peakRSSMegabytes() * 10).rounded() / 10, "final_loss": Double(lastLoss),
                "parameters": model.parameterCount, "processes": group?.size ?? 1,
                "allreduce_ms_per_step": (median(reduceTimes) * 1e5).rounded() / 100,
                "gradient_bytes": 4 * opt.parameters.reduce(0) { $0 + $1.count },
            ]
            let variantSec = variant == nil ? 0 : median(variantTimes)
            if let versus {
                result["variant"] = versus
                result["variant_ms_per_step"] = (variantSec * 1e5).rounded() / 100
                result["variant_speedup"] = (variantSec / sec * 1e3).rounded() / 1e3
            }
            let profile = GEMMProfile.entries()
            if gemmProfile {
                result["gemm_profile"] = profile.map { e -> [String: Any] in
                    ["m": e.m, "n": e.n, "k": e.k, "op": e.layout, "calls_per_step": Double(e.calls) / Double(steps),
                     "us_per_call": (Double(e.nanoseconds) / Double(e.calls) / 10).rounded() / 100,
                     "gflops": (e.gflops * 10).rounded() / 10]
                }
            }
            if json { try printJSON(result) } else {
                if gemmProfile {
                    // Times are summed over threads: with shards, each thread's products add up.
                    let total = Double(profile.reduce(0) { $0 + $1.nanoseconds }) / Double(steps) / 1e6
                    print(String(format: "matrix products per step: %.2f ms summed over threads (step: %.2f ms × %d threads)",
                                 total, sec * 1e3, ThreadPool.shared.threadCount))
                    print("     M      N      K  op  calls/step   µs/call  GFLOP/s  share")
                    for e in profile {
                        let ms = Double(e.nanoseconds) / Double(steps) / 1e6
                        print(String(format: "%6d %6d %6d  %@  %10.1f  %8.2f  %7.1f  %4.1f%%", e.m, e.n, e.k, e.layout,
                                     Double(e.calls) / Double(steps), Double(e.nanoseconds) / Double(e.calls) / 1e3,
                                     e.gflops, 100 * ms / total))
                    }
                }
                print(String(format: "%.0f tokens/s, %.1f ms/step (median of %d), %.1f GFLOP/s, MFU %.1f%%, peak RSS %.0f MB",
                             tokensPerStep / sec, sec * 1e3, steps, flops / 1e9, flops / peak * 100, peakRSSMegabytes()))
                if let versus {
                    print(String(format: "%@: %.1f ms/step; default is %.3f× as fast", versus, variantSec * 1e3, variantSec / sec))
                }
            }
        }
    }
}

struct BenchGenerate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate", abstract: "Prefill and KV-cached decode speed, batch 1, random weights.")
    @OptionGroup var shape: BenchShapeOptions
    @Option(help: "Prompt length.") var promptTokens: Int = 16
    @Option(help: "Tokens to generate.") var newTokens: Int = 128
    @Option(help: "Sampling temperature; 0 (the default) is greedy. Choosing each token is timed with its forward pass.")
    var temperature: Float = 0
    @Option(help: "Sample from the k most likely tokens only.") var topK: Int?
    @Option(help: "Sample from the smallest set of tokens whose probability reaches p.") var topP: Float?
    @Option(help: "Repetitions (median reported).") var repeats: Int = 3
    @Option(help: "Worker threads (default: all cores).") var threads: Int?
    @Option(help: "Weights read per decoded token: fp32, bf16 (bfloat16 copies) or int8 (q8_0 copies).") var dtype: DecodePrecision = .fp32
    @Option(help: "Sequences decoded together by the server's continuous batching (BatchDecoder), each with its own prompt: reports their aggregate tokens/s.")
    var streams: Int?
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        try EmeraldCommand.guarded {
            try applyThreads(threads)
            let cfg = try shape.modelConfig()
            let context = cfg.family.contextLength ?? Int.max, vocabulary = cfg.vocabularySize
            if let streams { return try batched(cfg, streams: streams) }
            try require(promptTokens > 0 && newTokens > 0 && promptTokens + newTokens <= context,
                        "--prompt-tokens + --new-tokens must be positive and fit the context of \(context)")
            let sampling = SamplingOptions(temperature: temperature, topK: topK, topP: topP)
            try sampling.validate()
            var rng = RandomGenerator(seed: 1)
            let precision = dtype
            try MemoryEstimate.requireFits(MemoryEstimate.generationBytes(cfg), "this benchmark's model")
            let model = cfg.family.makeModel(rng: &rng)
            model.eval()
            model.setDecodePrecision(precision)
            let prompt = (0..<promptTokens).map { _ in Int32(rng.nextInt(below: vocabulary)) }
            var prefill: [Double] = [], decode: [Double] = []
            for _ in 0..<(repeats + 1) {
                let cache = model.makeCache(capacity: promptTokens + newTokens)!
                let t0 = DispatchTime.now().uptimeNanoseconds
                var logits = withNoGrad { model(prompt, cache: cache, lastOnly: true) }
                let t1 = DispatchTime.now().uptimeNanoseconds
                var ns: UInt64 = 0
                var draws = RandomGenerator(seed: 7)
                for _ in 0..<newTokens {
                    let s = DispatchTime.now().uptimeNanoseconds
                    let next = Int32(sampling.temperature == 0 ? logits.argmax()[0] : sampling.pick(logits.scalars, rng: &draws))
                    logits = withNoGrad { model([next], cache: cache, lastOnly: true) }
                    ns += DispatchTime.now().uptimeNanoseconds - s
                }
                prefill.append(Double(promptTokens) / (Double(t1 - t0) / 1e9))
                decode.append(Double(newTokens) / (Double(ns) / 1e9))
            }
            // The first repetition warms caches and the buffer pool.
            let p = median(Array(prefill.dropFirst())), d = median(Array(decode.dropFirst()))
            // Decode reads every weight once per token: compare with `emerald bench memory`.
            let weightRead = d * Double(model.decodeWeightBytes) / 1e9
            var result: [String: Any] = ["prefill_tokens_per_s": (p * 10).rounded() / 10, "decode_tokens_per_s": (d * 10).rounded() / 10,
                                         "decode_weight_read_gb_per_s": (weightRead * 10).rounded() / 10,
                                         "dtype": precision.rawValue, "prompt_tokens": promptTokens, "new_tokens": newTokens, "parameters": model.parameterCount,
                                         "temperature": Double(String(temperature))!,
                                         "threads": ThreadPool.shared.threadCount, "peak_rss_mb": (peakRSSMegabytes() * 10).rounded() / 10]
            if let topK { result["top_k"] = topK }
            if let topP { result["top_p"] = Double(String(topP))! }
            if json { try printJSON(result) } else {
                print(String(format: "prefill %.1f tokens/s, decode %.1f tokens/s (median of %d), weights read at %.1f GB/s",
                             p, d, repeats, weightRead))
            }
        }
    }

    /// `--streams N`: N requests submitted at once to a `BatchDecoder`; the aggregate rate of
    /// the decode steps (every sequence's tokens after its first, over the time from the last
    /// prompt read to the last token) and each stream's time to first token.
    private func batched(_ cfg: ModelConfig, streams: Int) throws {
        let context = cfg.family.contextLength ?? Int.max
        try require(streams >= 1 && streams <= Tensor.rowInvariantRows, "--streams must be in 1...\(Tensor.rowInvariantRows)")
        try require(promptTokens > 0 && newTokens > 1 && promptTokens + newTokens <= context,
                    "--prompt-tokens + --new-tokens must fit the context of \(context), with --new-tokens ≥ 2")
        let sampling = SamplingOptions(temperature: temperature, topK: topK, topP: topP)
        try sampling.validate()
        try MemoryEstimate.requireFits(MemoryEstimate.generationBytes(cfg), "this benchmark's model")
        var rng = RandomGenerator(seed: 1)
        let model = cfg.family.makeModel(rng: &rng)
        model.setDecodePrecision(dtype)
        let decoder = try BatchDecoder(model: model, maxBatch: streams, maxQueue: streams, context: promptTokens + newTokens)
        defer { decoder.shutdown() }
        var rates: [Double] = [], firsts: [Double] = []
        for round in 0..<(repeats + 1) {
            let start = DispatchTime.now().uptimeNanoseconds
            let times = Times(streams)
            let done = DispatchSemaphore(value: 0)
            for s in 0..<streams {
                let prompt = (0..<promptTokens).map { _ in Int32(rng.nextInt(below: cfg.vocabularySize)) }
                let ticket = try decoder.submit(GenerationRequest(prompt: prompt, maxNewTokens: newTokens, sampling: sampling,
                                                                  seed: UInt64(s)))
                Task {
                    for await event in ticket.events { if case .token = event { times.token(s) } }
                    done.signal()
                }
            }
            for _ in 0..<streams { done.wait() }
            guard round > 0 else { continue }  // warm-up
            let (first, last) = times.bounds
            // Decode steps start once the last prompt is in: every token after that is batched.
            let lastFirst = first.max()!, end = last.max()!
            let decoded = times.countsAfter(lastFirst)
            rates.append(Double(decoded) / (Double(end - lastFirst) / 1e9))
            firsts.append(Double(first.map { $0 - start }.reduce(0, +)) / Double(streams) / 1e6)
        }
        let r = median(rates), t = median(firsts)
        let result: [String: Any] = ["streams": streams, "decode_tokens_per_s": (r * 10).rounded() / 10,
                                     "per_stream_tokens_per_s": (r / Double(streams) * 10).rounded() / 10,
                                     "mean_time_to_first_token_ms": (t * 10).rounded() / 10, "dtype": dtype.rawValue,
                                     "prompt_tokens": promptTokens, "new_tokens": newTokens, "parameters": model.parameterCount,
                                     "threads": ThreadPool.shared.threadCount, "peak_rss_mb": (peakRSSMegabytes() * 10).rounded() / 10]
        if json { try printJSON(result) } else {
            print(String(format: "%d streams: decode %.1f tokens/s in all (%.1f per stream, median of %d), mean time to first token %.1f ms",
                         streams, r, r / Double(streams), repeats, t))
        }
    }
}

/// When each stream's tokens arrived (nanoseconds), from the tasks that read them.
private final class Times: @unchecked Sendable {
    private let lock = NSLock()
    private var stamps: [[UInt64]]
    init(_ streams: Int) { stamps = Array(repeating: [], count: streams) }
    func token(_ s: Int) { let t = DispatchTime.now().uptimeNanoseconds; lock.withLock { stamps[s].append(t) } }
    /// Each stream's first and last token time.
    var bounds: (first: [UInt64], last: [UInt64]) { lock.withLock { (stamps.map { $0.first! }, stamps.map { $0.last! }) } }
    /// Tokens that arrived after `t`.
    func countsAfter(_ t: UInt64) -> Int { lock.withLock { stamps.reduce(0) { $0 + $1.filter { $0 > t }.count } } }
}
