import Emerald
import Foundation
import XCTest

/// Llama-family models against `transformers` itself, and their caches, batches, conversions
/// and bad inputs.
///
/// Fixtures come from `scripts/reference/llama_fixtures.py`: tiny random `LlamaForCausalLM`
/// folders (grouped-query attention and an untied head; a tied head with llama3 RoPE scaling and
/// head_dim ≠ C/heads; one key/value head, sharded; bfloat16 weights) and a `Qwen2ForCausalLM`
/// (q/k/v biases, tied), each with transformers' logits, loss, gradients and greedy ids.
final class LlamaTests: XCTestCase {
    static let models = ["tiny-llama", "tiny-llama-tied", "tiny-llama-sharded", "tiny-llama-bf16", "tiny-qwen2"]
    private let fm = FileManager.default

    private func expected(_ name: String) throws -> [String: Tensor] {
        let url = try XCTUnwrap(Bundle.module.url(forResource: name + ".expected", withExtension: "safetensors",
                                                  subdirectory: "Fixtures/hf"), "run scripts/reference/llama_fixtures.py")
        return try SafeTensors.read(path: url.path).tensors
    }

    private func load(_ name: String) throws -> Llama {
        try XCTUnwrap(try Checkpoint.load(from: HFTests.folder(name)).model as? Llama, name)
    }

    /// A writable copy of a fixture folder.
    private func copy(_ name: String) throws -> String {
        let dst = TestSupport.tempDir() + "/" + name
        try fm.copyItem(atPath: try HFTests.folder(name), toPath: dst)
        return dst
    }

    private func editJSON(_ path: String, _ edit: (inout [String: Any]) -> Void) throws {
        var j = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        edit(&j)
        try JSONSerialization.data(withJSONObject: j).write(to: URL(fileURLWithPath: path))
    }

    private func expectError(_ dir: String, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Checkpoint.load(from: dir), file: file, line: line) { e in
            XCTAssertTrue(e is EmeraldError, "not an EmeraldError: \(e)", file: file, line: line)
            XCTAssertTrue("\(e)".contains(fragment), "\"\(e)\" lacks \"\(fragment)\"", file: file, line: line)
        }
    }

    func testConfigComesFromConfigJSON() throws {
        let a = try load("tiny-llama")
        XCTAssertEqual(a.cfg.numAttentionHeads, 4); XCTAssertEqual(a.cfg.numKeyValueHeads, 2); XCTAssertEqual(a.cfg.headDim, 8)
        XCTAssertNotNil(a.lm_head); XCTAssertNil(a.cfg.ropeScaling); XCTAssertEqual(a.cfg.rmsNormEps, 1e-5)
        let t = try load("tiny-llama-tied")
        XCTAssertNil(t.lm_head); XCTAssertEqual(t.cfg.headDim, 16)
        XCTAssertEqual(t.cfg.ropeScaling, RotaryEmbedding.Llama3Scaling(factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4,
                                                                        originalContext: 32))
        XCTAssertEqual(try load("tiny-llama-sharded").cfg.numKeyValueHeads, 1)
        XCTAssertEqual(try load("tiny-llama-sharded").cfg.ropeTheta, 500)
        let q = try load("tiny-qwen2")
        XCTAssertTrue(q.cfg.qkvBias); XCTAssertFalse(q.cfg.attentionBias); XCTAssertEqual(q.cfg.ropeTheta, 1e6)
        XCTAssertNotNil(q.model.layers[0].self_attn.q_proj.bias); XCTAssertNil(q.model.layers[0].self_attn.o_proj.bias)
    }

    /// Logits ≤ 1e-4, loss ≤ 1e-5, every gradient ≤ 1e-4 relative, for all five folders.
    func testLogitsLossAndGradientsMatchTransformers() throws {
        for name in Self.models {
            let model = try load(name)
            let ref = try expected(name)
            let idsT = try XCTUnwrap(ref["ids"])
            let (b, t) = (idsT.shape[0], idsT.shape[1])
            let ids = idsT.scalars.map { Int32($0) }
            var rng = RandomGenerator(seed: 0)
            model.eval()
            let logits = withNoGrad { model.logits(ids, batch: b, time: t, rng: &rng) }
            let dl = TestSupport.maxAbsDiff(logits.scalars, try XCTUnwrap(ref["logits"]).scalars)
            XCTAssertLessThanOrEqual(dl, 1e-4, "\(name): logits max abs diff \(dl)")

            // transformers' loss (labels = ids) is next-token cross-entropy over positions 0…T−2.
            var inputs: [Int32] = [], targets: [Int32] = []
            for r in 0..<b {
                inputs += ids[(r * t)..<(r * t + t - 1)]
                targets += ids[(r * t + 1)..<(r * t + t)]
            }
            model.train()  // no dropout in the fixtures: training mode computes the same function
            model.zeroGrad()
            let loss = model.logits(inputs, batch: b, time: t - 1, rng: &rng).crossEntropy(targets: targets)
            let refLoss = try XCTUnwrap(ref["loss"]).item
            XCTAssertEqual(loss.item, refLoss, accuracy: 1e-5, name)
            loss.backward()
            var checked = 0, worst = 0.0
            for (pname, p) in model.namedParameters() {
                let g = try XCTUnwrap(ref["grad." + pname], "\(name): transformers has no gradient for \(pname)")
                let mine = try XCTUnwrap(p.grad, "\(name): no gradient for \(pname)")
                XCTAssertEqual(mine.shape, g.shape, pname)
                let e = TestSupport.relativeError(mine.scalars, g.scalars)
                XCTAssertLessThanOrEqual(e, 1e-4, "\(name): gradient of \(pname) relative error \(e)")
                worst = max(worst, e)
                checked += 1
            }
            XCTAssertEqual(checked, ref.keys.filter { $0.hasPrefix("grad.") }.count, "\(name): every gradient compared")
            print(String(format: "%@: logits max |Δ| %.2e, loss |Δ| %.2e, worst gradient relative error %.2e (%d tensors)",
                         name, dl, abs(loss.item - refLoss), worst, checked))
        }
    }

    /// Greedy generation with the KV cache gives transformers' `generate` ids.
    func testGreedyGenerationMatchesTransformers() throws {
        for name in Self.models {
            let model = try load(name)
            let ref = try expected(name)
            let prompt = try XCTUnwrap(ref["generate_prompt"]).scalars.map { Int32($0) }
            let want = try XCTUnwrap(ref["generate_ids"]).scalars.map { Int32($0) }
            var rng = RandomGenerator(seed: 1)
            let got = try Generator.generate(model: model, prompt: prompt, maxNewTokens: want.count,
                                             options: SamplingOptions(temperature: 0), rng: &rng)
            XCTAssertEqual(got, want, name)
        }
    }

    /// A prompt then tokens one at a time through the KV cache give the uncached forward's logits
    /// at every position (past the scaled-RoPE fixture's original context, too).
    func testKVCacheDecodeEqualsUncachedForward() throws {
        for name in ["tiny-llama", "tiny-llama-tied", "tiny-qwen2"] {
            let model = try load(name)
            model.eval()
            let ids = TestSupport.ids(40, vocab: model.cfg.vocabSize, seed: 5)
            var rng = RandomGenerator(seed: 0)
            let full = withNoGrad { model.logits(ids, batch: 1, time: ids.count, rng: &rng) }.scalars
            let cache = try XCTUnwrap(model.makeCache())
            var cached = withNoGrad { model(Array(ids[0..<7]), cache: cache) }.scalars
            for id in ids[7...] { cached += withNoGrad { model([id], cache: cache) }.scalars }
            XCTAssertEqual(cache.length, ids.count)
            let d = TestSupport.maxAbsDiff(cached, full)
            XCTAssertLessThanOrEqual(d, 1e-5, "\(name): cached decode differs from the uncached forward by \(d)")
        }
    }

    /// One forward over several sequences (prompts of different lengths, then one token each)
    /// equals each sequence's own forward to the bit, in fp32, bf16 and int8.
    func testBatchedForwardEqualsEachSequenceAlone() throws {
        for name in ["tiny-llama", "tiny-qwen2"] {
            for precision in DecodePrecision.allCases {
                let m = try load(name)
                m.eval()
                m.setDecodePrecision(precision)
                let v = m.cfg.vocabSize
                let prompts = (0..<4).map { TestSupport.ids(2 + 5 * $0, vocab: v, seed: UInt64(20 + $0)) }
                let alone = prompts.map { _ in m.makeCache()! }, together = prompts.map { _ in m.makeCache()! }
                var want: [Float] = []
                for (p, cache) in zip(prompts, alone) { want += withNoGrad { m(p, cache: cache, lastOnly: true) }.scalars }
                let got = withNoGrad { m(prompts.flatMap { $0 }, caches: together, counts: prompts.map(\.count)) }
                XCTAssertEqual(got.shape, [prompts.count, v])
                XCTAssertEqual(got.scalars, want, "\(name) prefill, \(precision)")
                for step in 0..<3 {
                    let next = prompts.indices.map { Int32(($0 * 7 + step) % v) }
                    var one: [Float] = []
                    for (id, cache) in zip(next, alone) { one += withNoGrad { m([id], cache: cache, lastOnly: true) }.scalars }
                    let all = withNoGrad { m(next, caches: together, counts: Array(repeating: 1, count: next.count)) }
                    XCTAssertEqual(all.scalars, one, "\(name) decode step \(step), \(precision)")
                }
            }
        }
    }

    /// transformers 4's config form (rope_theta + rope_scaling) reads as transformers 5's
    /// rope_parameters does.
    func testLegacyRopeFieldsReadTheSame() throws {
        let dir = try copy("tiny-llama-tied")
        try editJSON(dir + "/config.json") { j in
            var p = j["rope_parameters"] as! [String: Any]
            j["rope_parameters"] = nil
            j["rope_theta"] = p.removeValue(forKey: "rope_theta")
            p["type"] = p.removeValue(forKey: "rope_type")
            j["rope_scaling"] = p
        }
        let a = try XCTUnwrap(try Checkpoint.load(from: dir).model as? Llama), b = try load("tiny-llama-tied")
        XCTAssertEqual(a.cfg, b.cfg)
    }

    func testBadInputsNameTheProblem() throws {
        var dir = try copy("tiny-llama-tied")
        try editJSON(dir + "/config.json") { j in
            j["rope_parameters"] = ["rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0]
        }
        expectError(dir, "rope_scaling type \"yarn\" is not supported")

        dir = try copy("tiny-llama-tied")
        try editJSON(dir + "/config.json") { j in
            j["rope_parameters"] = ["full_attention": ["rope_type": "default", "rope_theta": 10000.0]]
        }
        expectError(dir, "per-layer-type RoPE is not supported")

        dir = try copy("tiny-llama-tied")
        try editJSON(dir + "/config.json") { j in
            j["rope_parameters"] = nil
            j["rope_scaling"] = ["type": "linear", "factor": 2.0]
        }
        expectError(dir, "rope_scaling type \"linear\" is not supported")

        dir = try copy("tiny-llama")
        try editJSON(dir + "/config.json") { $0["num_key_value_heads"] = 3 }
        expectError(dir, "num_key_value_heads 3 does not divide num_attention_heads 4")

        dir = try copy("tiny-llama")
        try editJSON(dir + "/config.json") { $0["hidden_act"] = "gelu" }
        expectError(dir, "hidden_act \"gelu\" is not supported")

        dir = try copy("tiny-qwen2")
        try editJSON(dir + "/config.json") { $0["use_sliding_window"] = true }
        expectError(dir, "use_sliding_window true is not supported")

        dir = try copy("tiny-llama")
        try editJSON(dir + "/config.json") { $0["intermediate_size"] = 48 }
        expectError(dir, "tensor model.layers.0.mlp.gate_proj.weight has shape [64, 32]")

        // Missing and extra tensors, by name.
        dir = try copy("tiny-llama")
        var (tensors, meta) = try SafeTensors.read(path: dir + "/model.safetensors")
        tensors["model.layers.1.mlp.up_proj.weight"] = nil
        try SafeTensors.write(tensors.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, metadata: meta, to: dir + "/model.safetensors")
        expectError(dir, "missing tensor model.layers.1.mlp.up_proj.weight")

        dir = try copy("tiny-llama")
        (tensors, meta) = try SafeTensors.read(path: dir + "/model.safetensors")
        tensors["model.layers.0.self_attn.q_norm.weight"] = .ones([8])
        try SafeTensors.write(tensors.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, metadata: meta, to: dir + "/model.safetensors")
        expectError(dir, "unexpected tensor model.layers.0.self_attn.q_norm.weight: not part of LlamaForCausalLM")

        // A buffer old checkpoints carry is ignored.
        dir = try copy("tiny-llama")
        (tensors, meta) = try SafeTensors.read(path: dir + "/model.safetensors")
        tensors["model.layers.0.self_attn.rotary_emb.inv_freq"] = .ones([4])
        try SafeTensors.write(tensors.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, metadata: meta, to: dir + "/model.safetensors")
        XCTAssertNoThrow(try Checkpoint.load(from: dir))
    }

    /// HF → Emerald checkpoint → HF → Emerald keeps every weight bit for bit (bf16 widened once),
    /// and the export is the family's layout: Qwen2 exports as qwen2.
    func testConversionsAreLossless() throws {
        for name in ["tiny-llama", "tiny-llama-tied", "tiny-llama-bf16", "tiny-qwen2"] {
            let model = try load(name)
            let dir = TestSupport.tempDir()
            defer { try? fm.removeItem(atPath: dir) }
            try Checkpoint(model: model, tokenizer: nil).save(to: dir + "/emerald")
            let back = try Checkpoint.load(from: dir + "/emerald")
            XCTAssertEqual(back.model.config, model.config, name)
            _ = try HuggingFace.export(back, to: dir + "/hf")
            let config = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/hf/config.json"))) as? [String: Any])
            XCTAssertEqual(config["model_type"] as? String, name == "tiny-qwen2" ? "qwen2" : "llama", name)
            XCTAssertNil(config["qkv_bias"], name)
            let keys = Set(try SafeTensorsFile(path: dir + "/hf/model.safetensors").names)
            XCTAssertTrue(keys.contains("model.layers.1.self_attn.k_proj.weight"), name)
            XCTAssertEqual(keys.contains("lm_head.weight"), !model.cfg.tieWordEmbeddings, name)
            let again = try XCTUnwrap(try Checkpoint.load(from: dir + "/hf").model as? Llama)
            XCTAssertEqual(again.cfg, model.cfg, name)
            let a = model.namedParameters(), b = again.namedParameters()
            XCTAssertEqual(a.map(\.name), b.map(\.name))
            for (x, y) in zip(a, b) { XCTAssertEqual(x.tensor.scalars, y.tensor.scalars, "\(name): \(x.name)") }
        }
    }

    /// An Emerald Llama checkpoint with the family's own model_type loads as Emerald's (training
    /// state kept), a Llama trains (loss falls), and bf16/int8 decode copies stay close to fp32.
    func testTrainingResumeStateAndDecodePrecisions() throws {
        var c = LlamaConfig(vocabSize: 23, hiddenSize: 32, intermediateSize: 48, numHiddenLayers: 2, numAttentionHeads: 4,
                            numKeyValueHeads: 2, maxPositionEmbeddings: 16)
        c.residualDropout = 0.1; c.attentionDropout = 0.1
        try c.validate()
        var rng = RandomGenerator(seed: 9)
        let m = Llama(c, rng: &rng)
        let text = (0..<17).map { Int32(($0 * 5) % 23) }  // a cycle to learn
        let (inputs, targets) = (Array(text.dropLast()), Array(text.dropFirst()))
        func evalLoss() -> Float {
            m.eval(); defer { m.train() }
            return withNoGrad { m.logits(inputs, batch: 1, time: 16, rng: &rng).crossEntropy(targets: targets) }.item
        }
        let opt = AdamW(m.namedParameters(), betas: (0.9, 0.99), eps: 1e-8, weightDecay: 0.1)
        let first = evalLoss()
        for _ in 0..<30 {
            m.zeroGrad()
            m.logits(inputs, batch: 1, time: 16, rng: &rng).crossEntropy(targets: targets).backward()
            opt.step(lr: 1e-2)
        }
        let last = evalLoss()
        XCTAssertLessThan(last, first / 2, "training does not lower the loss (\(first) → \(last))")

        let dir = TestSupport.tempDir()
        defer { try? fm.removeItem(atPath: dir) }
        let state = TrainState(step: 30, bestValLoss: last, dataRNG: RandomGenerator(seed: 1), dropoutRNG: RandomGenerator(seed: 2))
        try Checkpoint(model: m, tokenizer: nil, state: state).save(to: dir + "/ckpt", optimizer: opt)
        let back = try Checkpoint.load(from: dir + "/ckpt")
        XCTAssertEqual(back.state?.step, 30)
        XCTAssertNotNil(back.moments)
        XCTAssertEqual(back.model.config, m.config)

        m.eval()
        let ids: [Int32] = [1, 5, 9, 2, 7]
        let reference = withNoGrad { m(ids, cache: m.makeCache()!, lastOnly: false) }.scalars
        for precision in [DecodePrecision.bf16, .int8] {
            m.setDecodePrecision(precision)
            let cache = m.makeCache()!
            var got: [Float] = []
            for id in ids { got += withNoGrad { m([id], cache: cache) }.scalars }
            XCTAssertLessThanOrEqual(TestSupport.maxAbsDiff(got, reference), 0.05, "\(precision)")
            XCTAssertNotEqual(got, reference, "\(precision) decode copies were not used")
        }
    }
}
