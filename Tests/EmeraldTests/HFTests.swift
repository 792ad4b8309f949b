import Emerald
import Foundation
import XCTest

/// Hugging Face GPT-2 folders against `transformers` itself.
///
/// Fixtures come from `scripts/reference/hf_fixtures.py`: tiny random GPT-2 models saved
/// by `save_pretrained` (tied, gelu_new, tokenizer.json), in the hub checkpoints' layout
/// (no `transformer.` prefix, attn.bias / masked_bias buffers, untied head, relu, eps 1e-6,
/// vocab.json + merges.txt) and sharded (index + 4 shards), each with transformers'
/// logits, loss, gradients, one AdamW step and a greedy generation.
final class HFTests: XCTestCase {
    static let models = ["tiny-gpt2", "tiny-gpt2-hub", "tiny-gpt2-sharded"]

    static func folder(_ name: String) throws -> String {
        try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures/hf"),
                      "fixture \(name) missing; run scripts/reference/hf_fixtures.py").path
    }

    private func expected(_ name: String) throws -> (t: [String: Tensor], meta: [String: String]) {
        let url = try XCTUnwrap(Bundle.module.url(forResource: name + ".expected", withExtension: "safetensors",
                                                  subdirectory: "Fixtures/hf"))
        let r = try SafeTensors.read(path: url.path)
        return (r.tensors, r.metadata)
    }

    private func load(_ name: String) throws -> (GPT, Checkpoint) {
        let ckpt = try Checkpoint.load(from: Self.folder(name))
        return (try XCTUnwrap(ckpt.model as? GPT), ckpt)
    }

    func testConfigComesFromConfigJSON() throws {
        let (a, _) = try load("tiny-gpt2")
        XCTAssertEqual(a.cfg, GPTConfig(vocabSize: 300, blockSize: 32, nLayer: 2, nHead: 4, nEmbd: 32, dropout: 0,
                                        activation: .gelu, tieWeights: true, layerNormEpsilon: 1e-5))
        XCTAssertNil(a.lm_head)
        let (b, _) = try load("tiny-gpt2-hub")
        XCTAssertEqual(b.cfg.activation, .relu)
        XCTAssertEqual(b.cfg.layerNormEpsilon, 1e-6)
        XCTAssertFalse(b.cfg.tieWeights)
        XCTAssertNotNil(b.lm_head)
    }

    /// Logits ≤ 1e-4, loss ≤ 1e-5, gradients ≤ 1e-4 relative, one AdamW step, all three layouts.
    func testLogitsLossGradientsAndAdamWMatchTransformers() throws {
        for name in Self.models {
            let (model, _) = try load(name)
            let (ref, meta) = try expected(name)
            let idsT = try XCTUnwrap(ref["ids"])
            let (b, t) = (idsT.shape[0], idsT.shape[1])
            let ids = idsT.scalars.map { Int32($0) }
            var rng = RandomGenerator(seed: 0)
            model.eval()
            let logits = withNoGrad { model.logits(ids, batch: b, time: t, rng: &rng) }
            let dl = TestSupport.maxAbsDiff(logits.scalars, try XCTUnwrap(ref["logits"]).scalars)
            XCTAssertLessThanOrEqual(dl, 1e-4, "\(name): logits max abs diff \(dl)")

            // transformers' loss (labels = ids) is next-token CE over positions 0…T−2.
            var inputs: [Int32] = [], targets: [Int32] = []
            for r in 0..<b {
                inputs += ids[(r * t)..<(r * t + t - 1)]
                targets += ids[(r * t + 1)..<(r * t + t)]
            }
            model.train()  // dropout is 0 in the fixtures: training mode computes the same function
            model.zeroGrad()
            let loss = model.logits(inputs, batch: b, time: t - 1, rng: &rng).crossEntropy(targets: targets)
            let refLoss = try XCTUnwrap(ref["loss"]).item
            XCTAssertEqual(loss.item, refLoss, accuracy: 1e-5, name)
            loss.backward()

            let exported = Dictionary(uniqueKeysWithValues: GPT2Family.gradients(of: model))
            var checked = 0
            var worst = 0.0
            for (key, g) in ref where key.hasPrefix("grad.") {
                let hfName = String(key.dropFirst("grad.".count))
                let mine = try XCTUnwrap(exported[hfName], "\(name): no gradient for \(hfName)")
                XCTAssertEqual(mine.shape, g.shape, hfName)
                let e = TestSupport.relativeError(mine.scalars, g.scalars)
                XCTAssertLessThanOrEqual(e, 1e-4, "\(name): gradient of \(hfName) relative error \(e)")
                worst = max(worst, e)
                checked += 1
            }
            print(String(format: "%@: logits max |Δ| %.2e, loss |Δ| %.2e, worst gradient relative error %.2e",
                         name, dl, abs(loss.item - refLoss), worst))
            XCTAssertEqual(checked, model.namedParameters().count, "\(name): every parameter's gradient compared")

            let opt = AdamW(model.namedParameters(), betas: (Float(meta["beta1"]!)!, Float(meta["beta2"]!)!),
                            eps: Float(meta["eps"]!)!, weightDecay: Float(meta["weight_decay"]!)!)
            opt.step(lr: Float(meta["lr"]!)!)
            let after = Dictionary(uniqueKeysWithValues: GPT2Family.tensors(of: model))
            let c = model.cfg.nEmbd
            for (key, p) in ref where key.hasPrefix("after_step.") {
                let hfName = String(key.dropFirst("after_step.".count))
                var mine = try XCTUnwrap(after[hfName]).scalars, theirs = p.scalars
                if hfName.hasSuffix("attn.c_attn.bias") {
                    // The key bias adds q·b to every score of a row, which softmax ignores: its true
                    // gradient is 0, so both sides hold rounding noise (checked tiny) that Adam's
                    // g/√v normalisation turns into arbitrary ±lr steps. Compare q and v only.
                    let gk = try XCTUnwrap(ref["grad." + hfName]).scalars[c..<(2 * c)]
                    XCTAssertLessThan(gk.map(abs).max()!, 1e-5, "\(name): key-bias gradient is not ~0")
                    mine.removeSubrange(c..<(2 * c)); theirs.removeSubrange(c..<(2 * c))
                }
                let d = TestSupport.maxAbsDiff(mine, theirs)
                XCTAssertLessThanOrEqual(d, 1e-5, "\(name): \(hfName) after one AdamW step differs by \(d)")
            }
            model.eval()
            let lossAfter = withNoGrad { model.logits(inputs, batch: b, time: t - 1, rng: &rng).crossEntropy(targets: targets) }
            XCTAssertEqual(lossAfter.item, try XCTUnwrap(ref["loss_after_step"]).item, accuracy: 1e-4, name)
        }
    }

    /// Greedy generation with the KV cache gives transformers' `generate` ids.
    func testGreedyGenerationMatchesTransformers() throws {
        for name in Self.models {
            let (model, _) = try load(name)
            let (ref, _) = try expected(name)
            let prompt = try XCTUnwrap(ref["generate_prompt"]).scalars.map { Int32($0) }
            let want = try XCTUnwrap(ref["generate_ids"]).scalars.map { Int32($0) }
            var rng = RandomGenerator(seed: 1)
            let got = try Generator.generate(model: model, prompt: prompt, maxNewTokens: want.count,
                                         options: SamplingOptions(temperature: 0), rng: &rng)
            XCTAssertEqual(got, want, name)
        }
    }

    /// tokenizer.json and vocab.json + merges.txt encode like the tokenizers library.
    func testTokenizerFromTheFolder() throws {
        for name in Self.models {
            let (_, ckpt) = try load(name)
            let (ref, meta) = try expected(name)
            let tok = try XCTUnwrap(ckpt.tokenizer, name)
            let text = try XCTUnwrap(meta["text"])
            XCTAssertEqual(try tok.encode(text), try XCTUnwrap(ref["text_ids"]).scalars.map { Int32($0) }, name)
            XCTAssertEqual(tok.decode(try tok.encode(text)), text)
        }
    }

    /// HF → Emerald → HF → Emerald keeps every weight bit for bit, and the exported folder
    /// has the files and keys transformers expects.
    func testConversionsAreLossless() throws {
        for name in Self.models {
            let (model, ckpt) = try load(name)
            let dir = TestSupport.tempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try Checkpoint(model: model, tokenizer: ckpt.tokenizer).save(to: dir + "/emerald")
            let back = try Checkpoint.load(from: dir + "/emerald")
            _ = try HuggingFace.export(back, to: dir + "/hf")
            let files = Set(try FileManager.default.contentsOfDirectory(atPath: dir + "/hf"))
            XCTAssertTrue(files.isSuperset(of: ["config.json", "model.safetensors", "generation_config.json",
                                                "tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json"]), "\(files)")
            let keys = Set(try SafeTensorsFile(path: dir + "/hf/model.safetensors").names)
            XCTAssertTrue(keys.contains("transformer.h.1.attn.c_attn.weight"))
            XCTAssertEqual(keys.contains("lm_head.weight"), !model.cfg.tieWeights)
            let again = try XCTUnwrap(try Checkpoint.load(from: dir + "/hf").model as? GPT)
            XCTAssertEqual(again.cfg, model.cfg)
            let a = model.namedParameters(), b = again.namedParameters()
            XCTAssertEqual(a.map(\.name), b.map(\.name))
            for (x, y) in zip(a, b) { XCTAssertEqual(x.tensor.scalars, y.tensor.scalars, "\(name): \(x.name)") }
            // vocab.json + merges.txt written by Emerald read back to the same tokenizer.
            let tok = try ByteLevelBPETokenizer.load(vocabularyPath: dir + "/hf/vocab.json", mergesPath: dir + "/hf/merges.txt")
            let text = try XCTUnwrap(try expected(name).meta["text"])
            XCTAssertEqual(tok.encode(text), try XCTUnwrap(ckpt.tokenizer).encode(text))
        }
    }

    /// An Emerald-trained char model exports with a WordLevel tokenizer.json; post-LN is refused.
    func testExportOfEmeraldModels() throws {
        let dir = TestSupport.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rng = RandomGenerator(seed: 3)
        let chars = CharTokenizer(training: "Dorothy é\n")
        let gpt = GPT(TestSupport.tinyGPT(vocab: chars.vocabularySize), rng: &rng)
        _ = try HuggingFace.export(Checkpoint(model: gpt, tokenizer: chars), to: dir + "/char")
        let tj = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/char/tokenizer.json"))) as? [String: Any])
        let model = try XCTUnwrap(tj["model"] as? [String: Any])
        XCTAssertEqual(model["type"] as? String, "WordLevel")
        XCTAssertEqual((model["vocab"] as? [String: Int])?["é"], try chars.encode("é")[0].asInt)
        let back = try XCTUnwrap(try Checkpoint.load(from: dir + "/char").model as? GPT)
        for (x, y) in zip(gpt.namedParameters(), back.namedParameters()) { XCTAssertEqual(x.tensor.scalars, y.tensor.scalars) }

        // Bias-free models export with zero biases and compute the same logits after reimport.
        var c = TestSupport.tinyGPT(vocab: 7)
        c.bias = false
        let nb = GPT(c, rng: &rng)
        _ = try HuggingFace.export(Checkpoint(model: nb, tokenizer: nil), to: dir + "/nobias")
        let nb2 = try XCTUnwrap(try Checkpoint.load(from: dir + "/nobias").model as? GPT)
        let ids: [Int32] = [1, 2, 3, 4, 5, 6]
        nb.eval(); nb2.eval()
        let l1 = withNoGrad { nb.logits(ids, batch: 1, time: 6, rng: &rng) }.scalars
        let l2 = withNoGrad { nb2.logits(ids, batch: 1, time: 6, rng: &rng) }.scalars
        XCTAssertLessThanOrEqual(TestSupport.maxAbsDiff(l1, l2), 1e-6)

        let post = GPT(TestSupport.tinyGPT(norm: .post), rng: &rng)
        XCTAssertThrowsError(try HuggingFace.export(Checkpoint(model: post, tokenizer: nil), to: dir + "/post")) {
            XCTAssertTrue("\($0)".contains("post-LN"), "\($0)")
        }
    }
}

extension Int32 { fileprivate var asInt: Int { Int(self) } }
