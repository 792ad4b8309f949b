import Emerald
import Foundation
import XCTest

/// llm.c-style reference test: Emerald's GPT against a PyTorch twin.
///
/// Fixtures come from `scripts/reference/gpt_twin.py` (see its header to
/// regenerate): random weights, one batch, PyTorch's logits, loss, every
/// parameter's gradient, and the losses of 10 AdamW steps on that batch.
final class GPTTwinTests: XCTestCase {
    /// Pre-LN, tied embeddings, GELU.
    func testPreLNTiedGELU() throws { try checkTwin("gpt_twin_pre") }

    /// Post-LN, untied LM head, ReLU.
    func testPostLNUntiedReLU() throws { try checkTwin("gpt_twin_post") }

    // MARK: - Helpers

    private struct Fixture {
        var config: GPTConfig
        var batch: Int, time: Int
        var lr: Float, beta1: Float, beta2: Float, eps: Float, weightDecay: Float
        var tensors: [String: Tensor]
    }

    private func loadFixture(_ name: String) throws -> Fixture {
        let url = try XCTUnwrap(
            Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures"),
            "fixture \(name).safetensors missing; run scripts/reference/gpt_twin.py")
        let (tensors, metadata) = try SafeTensors.read(path: url.path)
        let text = try XCTUnwrap(metadata["config"], "\(name) has no config metadata")
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        func int(_ k: String) throws -> Int { try XCTUnwrap(json[k] as? Int, "config lacks \(k)") }
        func float(_ k: String) throws -> Float { Float(try XCTUnwrap(json[k] as? Double, "config lacks \(k)")) }
        func bool(_ k: String) throws -> Bool { try XCTUnwrap(json[k] as? Bool, "config lacks \(k)") }
        func string(_ k: String) throws -> String { try XCTUnwrap(json[k] as? String, "config lacks \(k)") }
        let config = GPTConfig(
            vocabSize: try int("vocab_size"), blockSize: try int("n_positions"), nLayer: try int("n_layer"),
            nHead: try int("n_head"), nEmbd: try int("n_embd"), dropout: 0, bias: try bool("bias"),
            activation: try XCTUnwrap(Activation(rawValue: try string("activation"))),
            norm: try XCTUnwrap(NormPlacement(rawValue: try string("norm"))),
            tieWeights: try bool("tie_word_embeddings"))
        return Fixture(config: config, batch: try int("batch"), time: try int("time"),
                       lr: try float("lr"), beta1: try float("beta1"), beta2: try float("beta2"),
                       eps: try float("eps"), weightDecay: try float("weight_decay"), tensors: tensors)
    }

    private func ints(_ t: Tensor) -> [Int32] { t.scalars.map { Int32($0) } }

    private func checkTwin(_ name: String) throws {
        let fx = try loadFixture(name)
        let t = fx.tensors
        var rng = RandomGenerator(seed: 0)
        let model = GPT(fx.config, rng: &rng)

        // Same parameter set, then PyTorch's weights.
        let ours = Set(model.namedParameters().map(\.name))
        let params = Dictionary(uniqueKeysWithValues: t.compactMap { k, v in
            k.hasPrefix("param.") ? (String(k.dropFirst("param.".count)), v) : nil
        })
        XCTAssertEqual(ours, Set(params.keys), "parameter names differ from the PyTorch twin's")
        XCTAssertEqual(Set(t.keys.filter { $0.hasPrefix("grad.") }.map { String($0.dropFirst(5)) }), ours)
        try Checkpoint.load(params, into: model, path: name)

        let ids = ints(try XCTUnwrap(t["ids"]))
        let targets = ints(try XCTUnwrap(t["targets"]))
        XCTAssertEqual(ids.count, fx.batch * fx.time)

        // Forward.
        let logits = model.logits(ids, batch: fx.batch, time: fx.time, rng: &rng)
        let refLogits = try XCTUnwrap(t["logits"])
        XCTAssertEqual(logits.shape, refLogits.shape)
        let logitsErr = TestSupport.maxAbsDiff(logits.scalars, refLogits.scalars)
        let loss = logits.crossEntropy(targets: targets)
        let refLoss = try XCTUnwrap(t["loss"]).item
        let lossErr = abs(loss.item - refLoss)

        // Backward.
        loss.backward()
        var gradErr = 0.0, worst = ""
        for (pname, p) in model.namedParameters() {
            let ref = try XCTUnwrap(t["grad." + pname])
            let g = p.grad?.scalars ?? [Float](repeating: 0, count: p.count)
            XCTAssertEqual(ref.count, g.count, pname)
            let e = TestSupport.relativeError(g, ref.scalars)
            XCTAssertLessThanOrEqual(e, 1e-4, "gradient of \(pname): relative error \(e)")
            if e > gradErr { gradErr = e; worst = pname }
        }

        // Ten AdamW steps on the same batch; loss recorded before each step.
        let refLosses = try XCTUnwrap(t["adamw_losses"]).scalars
        let opt = AdamW(model.namedParameters(), betas: (fx.beta1, fx.beta2), eps: fx.eps, weightDecay: fx.weightDecay)
        var losses: [Float] = []
        for _ in refLosses.indices {
            model.zeroGrad()
            let l = model.logits(ids, batch: fx.batch, time: fx.time, rng: &rng).crossEntropy(targets: targets)
            losses.append(l.item)
            l.backward()
            opt.step(lr: fx.lr)
        }
        let adamErr = TestSupport.maxAbsDiff(losses, refLosses)

        func e(_ x: Double) -> String { String(format: "%.3e", x) }
        print("GPTTwin \(name): logits max|Δ| \(e(Double(logitsErr))), loss |Δ| \(e(Double(lossErr))), "
              + "grad max rel \(e(gradErr)) (\(worst)), AdamW losses max|Δ| \(e(Double(adamErr))) "
              + "(\(losses.first ?? 0) → \(losses.last ?? 0))")
        XCTAssertLessThanOrEqual(logitsErr, 1e-4, "logits")
        XCTAssertLessThanOrEqual(lossErr, 1e-5, "loss")
        XCTAssertEqual(losses.count, 10)
        for (i, (a, b)) in zip(losses, refLosses).enumerated() {
            XCTAssertLessThanOrEqual(abs(a - b), 1e-4, "AdamW loss before step \(i + 1): \(a) vs \(b)")
        }
    }
}
