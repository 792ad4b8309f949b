import Emerald
import XCTest

final class GPTTests: XCTestCase {
    func testParameterNamesFollowHuggingFaceGPT2() {
        var rng = RandomGenerator(seed: 1)
        let tied = GPT(TestSupport.tinyGPT(), rng: &rng)
        let names = tied.namedParameters().map(\.name)
        XCTAssertEqual(names.first, "transformer.wte.weight")
        XCTAssertTrue(names.contains("transformer.wpe.weight"))
        XCTAssertTrue(names.contains("transformer.h.1.attn.c_attn.weight"))
        XCTAssertTrue(names.contains("transformer.h.0.mlp.c_proj.bias"))
        XCTAssertTrue(names.contains("transformer.ln_f.bias"))
        XCTAssertFalse(names.contains("lm_head.weight"), "tied models store no lm_head, like save_pretrained")
        let untied = GPT(TestSupport.tinyGPT(tie: false), rng: &rng)
        XCTAssertTrue(untied.namedParameters().map(\.name).contains("lm_head.weight"))
        XCTAssertEqual(tied.parameters.count, 2 + 2 * 12 + 2)
    }

    /// Cached generation must see exactly what the full forward sees.
    func testKVCacheMatchesUncachedLogits() {
        for norm in NormPlacement.allCases {
            var rng = RandomGenerator(seed: 3)
            let cfg = TestSupport.tinyGPT(norm: norm)
            let model = GPT(cfg, rng: &rng)
            model.eval()
            let ids = TestSupport.ids(11, vocab: cfg.vocabSize)
            let full = withNoGrad { model.logits(ids, batch: 1, time: ids.count, rng: &rng) }.scalars
            let cache = try! XCTUnwrap(model.makeCache())
            var cached = withNoGrad { model(Array(ids[..<6]), cache: cache) }.scalars
            for i in 6..<ids.count { cached += withNoGrad { model([ids[i]], cache: cache) }.scalars }
            XCTAssertEqual(cache.length, ids.count)
            XCTAssertLessThan(TestSupport.maxAbsDiff(full, cached), 1e-5, "norm \(norm)")
            let last = withNoGrad { model([ids[0]], cache: model.makeCache()!, lastOnly: true) }
            XCTAssertEqual(last.shape, [1, cfg.vocabSize])
            // lastOnly without a cache: each sequence's last row of the full logits.
            let two = TestSupport.ids(10, vocab: cfg.vocabSize)
            let all = withNoGrad { model.logits(two, batch: 2, time: 5, rng: &rng) }.scalars
            let lasts = withNoGrad { model(two, batch: 2, time: 5, cache: nil, lastOnly: true, rng: &rng) }
            XCTAssertEqual(lasts.shape, [2, cfg.vocabSize])
            // (Up to rounding: a 2-row product takes the few-rows GEMM path, 10 rows the packed one.)
            let expected = Array(all[(4 * cfg.vocabSize)..<(5 * cfg.vocabSize)] + all[(9 * cfg.vocabSize)...])
            XCTAssertLessThan(TestSupport.maxAbsDiff(lasts.scalars, expected), 1e-6)
        }
    }

    /// Decode copies (bf16, int8): products without gradient of ≤ `Tensor.rowInvariantRows` rows
    /// (a prompt, a token, a batch of sequences' tokens) read them for the Linear weights and
    /// the LM head; longer products read fp32. Token by token, an untied model's logits equal
    /// those of a twin whose Linear weights hold the copy's values in fp32 (int8 with fp32
    /// activations); `.fp32` restores the fp32 results exactly.
    func testDecodeCopiesReadRoundedWeights() {
        for precision in [DecodePrecision.bf16, .int8] {
            for tie in [true, false] {
                var rng = RandomGenerator(seed: 9)
                let cfg = TestSupport.tinyGPT(tie: tie)
                let model = GPT(cfg, rng: &rng)
                model.eval()
                let ids = TestSupport.ids(8, vocab: cfg.vocabSize)
                func decode(_ m: GPT, prompt: Int) -> (prompt: [Float], next: [Float]) {
                    let cache = m.makeCache()!
                    let p = withNoGrad { m(Array(ids[..<prompt]), cache: cache) }.scalars
                    var next: [Float] = []
                    for id in ids[prompt...] { next += withNoGrad { m([id], cache: cache) }.scalars }
                    return (p, next)
                }
                let what = "\(precision) tie \(tie)"
                let fp32 = decode(model, prompt: 7), fp32Steps = decode(model, prompt: 1)
                model.setDecodePrecision(precision)
                XCTAssertEqual(model.decodeCopies.count, cfg.nLayer * 4 + 1, what)
                let copied = decode(model, prompt: 7)
                let promptMoved = TestSupport.maxAbsDiff(copied.prompt, fp32.prompt)
                XCTAssertGreaterThan(promptMoved, 0, "a 7-token prompt reads the copies, \(what)")
                XCTAssertLessThan(promptMoved, 0.05, what)
                // More rows than a decode batch: fp32.
                let layer = model.transformer.h[0].mlp.c_fc
                let wide = Tensor.randn([Tensor.rowInvariantRows + 1, cfg.nEmbd], std: 1, using: &rng)
                let viaCopy = withNoGrad { layer(wide) }.scalars
                XCTAssertEqual(viaCopy, wide.linear(weight: layer.weight, bias: layer.bias).scalars, what)
                let moved = TestSupport.maxAbsDiff(copied.next, fp32.next)
                XCTAssertGreaterThan(moved, 0, "the copies are read, \(what)")
                XCTAssertLessThan(moved, 0.05, what)
                if !tie {
                    var rng2 = RandomGenerator(seed: 9)
                    let twin = GPT(cfg, rng: &rng2)
                    twin.eval()
                    for (name, t) in twin.namedParameters() where t.rank == 2 && !name.hasPrefix("transformer.w") {
                        let (rows, cols) = (t.shape[0], t.shape[1])
                        let q = Q8Matrix(t)
                        for r in 0..<rows {
                            for c in 0..<cols {
                                let w = t.data[r * cols + c]
                                t.data[r * cols + c] = precision == .bf16 ? BF16Matrix.widen(BF16Matrix.round(w)) : q.value(row: r, col: c)
                            }
                        }
                    }
                    // int8's integer products also round x to 8 bits (the exact products are
                    // checked in BF16Tests), so its twin agrees to that rounding only.
                    let a = decode(model, prompt: 1), b = decode(twin, prompt: 1)
                    XCTAssertLessThan(TestSupport.maxAbsDiff(a.prompt + a.next, b.prompt + b.next), precision == .bf16 ? 1e-5 : 2e-2, what)
                }
                model.setDecodePrecision(.fp32)
                XCTAssertEqual(decode(model, prompt: 1).next, fp32Steps.next, what)
            }
        }
    }

    /// `pick` draws what sorting every logit drew (the implementation before the heap), for
    /// GPT-2's vocabulary size, with and without top-k and top-p, seed by seed.
    func testPickMatchesSortingEveryLogit() {
        func sortingPick(_ o: SamplingOptions, _ logits: [Float], _ rng: inout RandomGenerator) -> Int {
            var candidates = logits.enumerated().map { (index: $0.offset, value: $0.element / o.temperature) }
            if let k = o.topK, k < candidates.count {
                candidates = Array(candidates.sorted { $0.value > $1.value || ($0.value == $1.value && $0.index < $1.index) }.prefix(k))
            }
            let m = candidates.map(\.value).max() ?? 0
            // The same exponentials as `pick` (their accuracy: `testSamplingExponentials`).
            var probs = candidates.map(\.value)
            probs.withUnsafeMutableBufferPointer { Sampling.exponentiate($0.baseAddress!, $0.count, minus: m) }
            if let p = o.topP, p < 1 {
                let order = probs.indices.sorted { probs[$0] > probs[$1] || (probs[$0] == probs[$1] && $0 < $1) }
                let total = probs.reduce(0.0) { $0 + Double($1) }
                var acc = 0.0, keep = Set<Int>()
                for i in order { keep.insert(i); acc += Double(probs[i]); if acc >= Double(p) * total { break } }
                for i in probs.indices where !keep.contains(i) { probs[i] = 0 }
            }
            return candidates[Sampling.multinomial(probs, using: &rng)].index
        }
        var gen = RandomGenerator(seed: 23)
        for options in [SamplingOptions(temperature: 0.8), SamplingOptions(temperature: 1.3, topK: 40),
                        SamplingOptions(temperature: 0.7, topP: 0.9), SamplingOptions(temperature: 1, topK: 50, topP: 0.95),
                        SamplingOptions(temperature: 1, topK: 60_000)] {
            for round in 0..<20 {
                let logits = (0..<50_257).map { _ in gen.nextNormal() * Float(1 + round % 4) }
                var a = RandomGenerator(seed: UInt64(round)), b = a
                XCTAssertEqual(options.pick(logits, rng: &a), sortingPick(options, logits, &b), "\(options) round \(round)")
            }
        }
    }

    /// `pick`'s exponentials and maximum against Double libm and a plain scan, on a
    /// vocabulary-sized row (both threads) and on short rows (the tail lanes).
    func testSamplingExponentials() {
        var gen = RandomGenerator(seed: 4)
        for n in [50_257, 40, 7, 1] {
            var x = (0..<n).map { _ in gen.nextNormal() * 6 }
            let m = Sampling.maximum(x, n)
            XCTAssertEqual(m, x.max()!, "n \(n)")
            let exact = x.map { Foundation.exp(Double($0 - m)) }
            x.withUnsafeMutableBufferPointer { Sampling.exponentiate($0.baseAddress!, n, minus: m) }
            var worst = 0.0
            for i in 0..<n { worst = max(worst, abs(Double(x[i]) - exact[i]) / exact[i]) }
            XCTAssertLessThan(worst, 4e-7, "n \(n): relative error \(worst)")
        }
        XCTAssertEqual(Sampling.maximum([1, .nan, 3, 2], 4), 3)
        let finite = (0..<21).map { Float($0) - 10 }
        XCTAssertTrue(Sampling.allFinite(finite, 21))
        for bad: Float in [.nan, .infinity, -.infinity] {
            for at in [0, 7, 8, 20] {  // vector lanes and the scalar tail
                var x = finite
                x[at] = bad
                XCTAssertFalse(Sampling.allFinite(x, 21), "\(bad) at \(at)")
            }
        }
        XCTAssertEqual(Sampling.maximum([], 0), -.infinity)
    }

    /// The fused kernel equals the guide's per-head composition, values and gradients:
    /// with a tiny head (scalar edges), and with heads of 16 and 32 over two and three row
    /// blocks (whole micro-kernel tiles, keys seen by more than one block).
    func testFusedAttentionEqualsReferenceHeads() {
        for (b, t, c, heads) in [(2, 7, 12, 3), (2, 40, 48, 3), (1, 70, 64, 2)] {
            fusedAttentionMatchesReference(b: b, t: t, c: c, heads: heads)
        }
    }

    private func fusedAttentionMatchesReference(b: Int, t: Int, c: Int, heads: Int) {
        let hs = c / heads
        var rng = RandomGenerator(seed: 5)
        let mha = MultiHeadAttention(nEmbd: c, count: heads, headSize: hs, bias: true, rng: &rng)
        // Biases are zero-initialised; make them matter.
        for p in mha.parameters { for i in 0..<p.count { p.data[i] = rng.nextNormal() * 0.3 } }
        // Pack per-head projections into one c_attn (3C, C): queries, keys, values, head-major.
        let wq = Tensor.concat(mha.heads.map { $0.query.weight }, axis: 0)
        let wk = Tensor.concat(mha.heads.map { $0.key.weight }, axis: 0)
        let wv = Tensor.concat(mha.heads.map { $0.value.weight }, axis: 0)
        let wAttn = Tensor.concat([wq, wk, wv], axis: 0).detached()
        let bAttn = Tensor.concat([Tensor.concat(mha.heads.map { $0.query.bias! }, axis: 0),
                                   Tensor.concat(mha.heads.map { $0.key.bias! }, axis: 0),
                                   Tensor.concat(mha.heads.map { $0.value.bias! }, axis: 0)], axis: 0).detached()
        wAttn.requiresGrad = true; bAttn.requiresGrad = true

        let x1 = Tensor.randn([b, t, c], using: &rng, requiresGrad: true)
        let x2 = x1.copy(); x2.requiresGrad = true
        let r = Tensor.randn([b, t, c], using: &rng)
        let ref = mha(x1)
        let fused = x2.linear(weight: wAttn, bias: bAttn).causalSelfAttention(heads: heads)
            .linear(weight: mha.proj.weight, bias: mha.proj.bias)
        // Relative to each tensor's largest entry: sums of t·hs products round differently.
        let shape = "b \(b) t \(t) c \(c) heads \(heads)"
        func close(_ x: [Float], _ y: [Float], _ what: String) {
            let scale = max(1, x.map { abs($0) }.max() ?? 0)
            XCTAssertLessThan(TestSupport.maxAbsDiff(x, y), 1e-5 * scale, "\(what), \(shape)")
        }
        close(ref.scalars, fused.scalars, "output")
        (ref * r).sum().backward()
        let refProjGrad = mha.proj.weight.grad!.scalars
        mha.proj.weight.grad = nil
        (fused * r).sum().backward()
        close(x1.grad!.scalars, x2.grad!.scalars, "dx")
        close(refProjGrad, mha.proj.weight.grad!.scalars, "dW proj")
        let wqGrad = Tensor.concat(mha.heads.map { $0.query.weight.grad! }, axis: 0).scalars
        close(wqGrad, Array(wAttn.grad!.scalars[0..<(c * c)]), "dW query")
    }

    /// The attention-dropout mask drops with probability p and scales the rest by 1/(1−p):
    /// with uniform probabilities and V = 1, row i's output is the mean of i+1 keep
    /// factors, whose mean is 1 and whose variance is p/(1−p).
    func testAttentionDropoutRateAndScale() {
        let (t, c) = (512, 8)
        for p: Float in [0.5, 0.2] {
            var qkv = [Float](repeating: 0, count: t * 3 * c)
            for i in 0..<t { for j in 0..<c { qkv[i * 3 * c + 2 * c + j] = 1 } }  // q = k = 0, v = 1
            let out = withNoGrad { Tensor(qkv, shape: [1, t, 3 * c]).causalSelfAttention(heads: 1, dropout: p, seed: 7) }
            var mean = 0.0, variance = 0.0
            for i in 256..<t {
                let o = Double(out.data[i * c])
                mean += o / 256
                variance += (o - 1) * (o - 1) * Double(i + 1) / 256
            }
            XCTAssertEqual(mean, 1, accuracy: 0.01, "p \(p)")
            XCTAssertEqual(variance, Double(p / (1 - p)), accuracy: 0.3 * Double(p / (1 - p)), "p \(p)")
        }
    }

    /// Attention-probability dropout: the mask is a pure function of the seed, and
    /// backward (which regenerates it) matches central finite differences.
    func testAttentionDropoutGradientMatchesFiniteDifferences() {
        var rng = RandomGenerator(seed: 11)
        let (b, t, c, heads) = (2, 9, 8, 2)
        let qkv = Tensor.randn([b, t, 3 * c], using: &rng, requiresGrad: true)
        let r = Tensor.randn([b, t, c], using: &rng)
        func loss(_ x: Tensor) -> Tensor { (x.causalSelfAttention(heads: heads, dropout: 0.3, seed: 42) * r).sum() }
        let same = withNoGrad { loss(qkv).item }
        XCTAssertEqual(same, withNoGrad { loss(qkv).item }, "same seed, same mask")
        let other = withNoGrad { (qkv.causalSelfAttention(heads: heads, dropout: 0.3, seed: 43) * r).sum().item }
        XCTAssertNotEqual(same, other, "another seed drops other positions")
        let plain = withNoGrad { (qkv.causalSelfAttention(heads: heads) * r).sum().item }
        XCTAssertNotEqual(same, plain)
        loss(qkv).backward()
        let analytic = qkv.grad!.scalars
        var worst: Float = 0, scale: Float = 1
        let eps: Float = 1e-2
        for i in stride(from: 0, to: qkv.count, by: 7) {
            let saved = qkv.data[i]
            qkv.data[i] = saved + eps
            let up = withNoGrad { loss(qkv).item }
            qkv.data[i] = saved - eps
            let down = withNoGrad { loss(qkv).item }
            qkv.data[i] = saved
            worst = max(worst, abs((up - down) / (2 * eps) - analytic[i]))
            scale = max(scale, abs(analytic[i]))
        }
        XCTAssertLessThan(worst, 1e-2 * scale)
        // A second backward into the same leaf accumulates (the kernel's non-fresh path):
        // T = 40 spans two query blocks, so key rows are reached by more than one block.
        let long = Tensor.randn([b, 40, 3 * c], using: &rng, requiresGrad: true)
        let r2 = Tensor.randn([b, 40, c], using: &rng)
        (long.causalSelfAttention(heads: heads) * r2).sum().backward()
        let once = long.grad!.scalars
        (long.causalSelfAttention(heads: heads) * r2).sum().backward()
        for (twice, g) in zip(long.grad!.scalars, once) { XCTAssertEqual(twice, 2 * g, accuracy: 1e-5 * max(1, abs(g))) }
    }

    /// A split smaller than evalIters batches is scored exactly once over a sweep; a larger
    /// one by evalIters random batches.
    func testEstimateLossSweepsASmallSplit() throws {
        let tokens = TestSupport.ids(2_000, vocab: 11)
        let (train, val) = trainValSplit(tokens)  // 1,800 and 200 tokens
        var cfg = TrainConfig()
        cfg.batchSize = 4; cfg.blockSize = 8; cfg.evalIters = 10  // 320 tokens per estimate
        let model = ModelConfig.gpt(TestSupport.tinyGPT(dropout: 0.1)).makeModel(seed: 3)
        let trainer = try Trainer(model: model, tokenizer: CharTokenizer(training: "abcdefghijk"), train: train, val: val, config: cfg)
        let (tr, va) = trainer.estimateLoss()
        model.eval()
        let sweep = withNoGrad { () -> Float in
            var rng = RandomGenerator(seed: 0), sum: Float = 0, rows = 0
            for b in Batcher.sweep(val, batchSize: 4, blockSize: 8) {
                sum += model.loss(b, rng: &rng).item * Float(b.batchSize); rows += b.batchSize
            }
            return sum / Float(rows)
        }
        XCTAssertEqual(va, sweep, accuracy: 1e-5)
        // The training split (1,800 > 320 tokens) is sampled: 10 batches seeded from the config.
        let sampled = withNoGrad { () -> Float in
            var rng = RandomGenerator(seed: 0), sum: Float = 0
            var batches = try! Batcher(source: train, batchSize: 4, blockSize: 8, seed: cfg.seed &+ 3)
            for _ in 0..<10 { sum += model.loss(batches.next(), rng: &rng).item }
            return sum / 10
        }
        XCTAssertEqual(tr, sampled, accuracy: 1e-5)
        XCTAssertNotEqual(tr, va)
    }

    /// N micro-batches of B give the same update as one batch of N·B.
    func testGradientAccumulationEqualsLargerBatch() throws {
        let tokens = TestSupport.ids(600, vocab: 11)
        let (train, val) = trainValSplit(tokens)
        func losses(batch: Int, accum: Int) throws -> [Float] {
            var cfg = TrainConfig()
            cfg.steps = 6; cfg.batchSize = batch; cfg.gradAccum = accum; cfg.blockSize = 8
            cfg.learningRate = 1e-2; cfg.minLearningRate = 1e-3; cfg.gradClip = 1; cfg.evalInterval = 3; cfg.evalIters = 2
            let model = ModelConfig.gpt(TestSupport.tinyGPT()).makeModel(seed: 9)
            let trainer = try Trainer(model: model, tokenizer: CharTokenizer(training: "abcdefghijk"), train: train, val: val, config: cfg)
            trainer.log = { _ in }
            var out: [Float] = []
            for _ in 0..<cfg.steps { out.append(trainer.trainStep().loss) }
            return out + model.parameters.flatMap { $0.scalars }
        }
        let big = try losses(batch: 8, accum: 1)
        let accumulated = try losses(batch: 4, accum: 2)
        XCTAssertLessThan(TestSupport.maxAbsDiff(big, accumulated), 2e-5)
    }

    /// A run stopped and resumed from its checkpoint reproduces the uninterrupted run exactly.
    func testResumeReproducesUninterruptedRun() throws {
        let text = String(repeating: "the wizard of oz and dorothy went down the yellow brick road. ", count: 40)
        let tok = CharTokenizer(training: text)
        let (train, val) = trainValSplit(try tok.encode(text))
        var cfg = TrainConfig()
        cfg.steps = 20; cfg.batchSize = 4; cfg.blockSize = 16; cfg.learningRate = 3e-3; cfg.minLearningRate = 3e-4
        cfg.warmupSteps = 3; cfg.evalInterval = 5; cfg.evalIters = 2; cfg.gradClip = 1
        let gptCfg = TestSupport.tinyGPT(vocab: tok.vocabularySize, dropout: 0.1)

        let dirA = TestSupport.tempDir(), dirB = TestSupport.tempDir()
        let a = try Trainer(model: ModelConfig.gpt(gptCfg).makeModel(seed: 1), tokenizer: tok, train: train, val: val, config: cfg)
        a.outputDirectory = dirA; a.log = { _ in }
        try a.run()

        let b1 = try Trainer(model: ModelConfig.gpt(gptCfg).makeModel(seed: 1), tokenizer: tok, train: train, val: val, config: cfg)
        b1.outputDirectory = dirB; b1.log = { _ in }
        try b1.run(stopAfter: 10)
        XCTAssertEqual(b1.step, 10)

        let ckpt = try Checkpoint.load(from: dirB + "/checkpoint")
        let b2 = try Trainer(model: ckpt.model, tokenizer: ckpt.tokenizer!, train: train, val: val, config: cfg)
        b2.outputDirectory = dirB; b2.log = { _ in }
        try b2.resume(from: ckpt)
        try b2.run()
        XCTAssertEqual(a.history.map(\.step), b2.history.map(\.step))
        XCTAssertEqual(a.history.map(\.train_loss), b2.history.map(\.train_loss))
        XCTAssertEqual(a.history.map(\.val_loss), b2.history.map(\.val_loss))
        XCTAssertEqual(a.model.parameters.flatMap(\.scalars), b2.model.parameters.flatMap(\.scalars))
    }

    func testPresetsAndValidation() throws {
        XCTAssertEqual(try GPTConfig.preset("oz", vocabSize: 80).nEmbd, 128)
        XCTAssertEqual(try GPTConfig.preset("gpt2", vocabSize: 50257).nLayer, 12)
        XCTAssertThrowsError(try GPTConfig.preset("gpt5", vocabSize: 80))
        var c = TestSupport.tinyGPT()
        c.nHead = 5
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("not divisible")) }
    }
}
