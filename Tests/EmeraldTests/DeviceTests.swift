import Emerald
import EmeraldTestSupport
import XCTest

/// A whole model on another device: every op of a GPT's training step and of cached decoding
/// goes through that device's backend. The device here is `HostTwinBackend` (the CPU's
/// kernels under another device id, counted), so the results must equal the CPU's exactly.
final class DeviceTests: XCTestCase {
    private static let twin: HostTwinBackend = {
        let b = HostTwinBackend(.cuda(8))
        Backends.register(b)
        return b
    }()

    func testTrainingStepAndDecodingOnAnotherDeviceEqualTheCPU() throws {
        let twin = Self.twin
        let cfg = TestSupport.tinyGPT(dropout: 0.1)
        func model() -> GPT { var rng = RandomGenerator(seed: 21); return GPT(cfg, rng: &rng) }
        let cpu = model(), moved = model()
        moved.to(.cuda(8))
        XCTAssertTrue(moved.parameters.allSatisfy { $0.device == .cuda(8) })
        let before = twin.calls

        // Two training steps each (dropout on, AdamW, clipping).
        let ids = TestSupport.ids(2 * 9, vocab: cfg.vocabSize)
        let batch = Batch(inputs: Array(ids[0..<16]), targets: Array(ids[2..<18]), batchSize: 2, blockSize: 8)
        func train(_ m: GPT) -> [Float] {
            let opt = AdamW(m.namedParameters(), betas: (0.9, 0.95), weightDecay: 0.1)
            var rng = RandomGenerator(seed: 5)
            var losses: [Float] = []
            for _ in 0..<2 {
                opt.zeroGrad()
                let loss = m.loss(batch, rng: &rng)
                loss.backward()
                losses.append(loss.item)
                opt.step(lr: 1e-2, clippingGradientNormTo: 1)
            }
            return losses
        }
        XCTAssertEqual(train(moved), train(cpu))
        for ((name, a), (_, b)) in zip(cpu.namedParameters(), moved.namedParameters()) {
            XCTAssertEqual(a.scalars, b.scalars, name)
        }
        XCTAssertTrue(moved.parameters.allSatisfy { $0.device == .cuda(8) })

        // Greedy decoding with the KV cache on the device.
        var r1 = RandomGenerator(seed: 1), r2 = RandomGenerator(seed: 1)
        let prompt = Array(ids[0..<4])
        let a = try Generator.generate(model: cpu, prompt: prompt, maxNewTokens: 6, options: SamplingOptions(temperature: 0), rng: &r1)
        let b = try Generator.generate(model: moved, prompt: prompt, maxNewTokens: 6, options: SamplingOptions(temperature: 0), rng: &r2)
        XCTAssertEqual(a, b)

        for op in ["gemm", "attentionForward", "attentionBackward", "cachedAttention", "layerNormForward", "layerNormBackward",
                   "softmaxCrossEntropy", "crossEntropyBackward", "gatherRows", "scatterAddRows", "unary", "unaryBackward",
                   "dropout", "addRows", "adamW", "sumOfSquares", "sample"] {
            XCTAssertGreaterThan(twin.calls[op] ?? 0, before[op] ?? 0, "\(op) did not run on the model's device")
        }
    }

    /// A Llama (RMSNorm, SwiGLU, rotary, grouped-query attention, dropout) trains two steps and
    /// decodes on the device, equal to the CPU; its new op pairs run there.
    func testLlamaOnAnotherDeviceEqualsTheCPU() throws {
        let twin = Self.twin
        var cfg = LlamaConfig(vocabSize: 13, hiddenSize: 16, intermediateSize: 40, numHiddenLayers: 2, numAttentionHeads: 4,
                              numKeyValueHeads: 2, maxPositionEmbeddings: 16)
        cfg.attentionDropout = 0.1; cfg.residualDropout = 0.1
        func model() -> Llama { var rng = RandomGenerator(seed: 22); return Llama(cfg, rng: &rng) }
        let cpu = model(), moved = model()
        moved.to(.cuda(8))
        let before = twin.calls
        let ids = TestSupport.ids(18, vocab: cfg.vocabSize)
        let batch = Batch(inputs: Array(ids[0..<16]), targets: Array(ids[2..<18]), batchSize: 2, blockSize: 8)
        func train(_ m: Llama) -> [Float] {
            let opt = AdamW(m.namedParameters(), betas: (0.9, 0.95), weightDecay: 0.1)
            var rng = RandomGenerator(seed: 5)
            return (0..<2).map { _ in
                opt.zeroGrad()
                let loss = m.loss(batch, rng: &rng)
                loss.backward()
                opt.step(lr: 1e-2, clippingGradientNormTo: 1)
                return loss.item
            }
        }
        XCTAssertEqual(train(moved), train(cpu))
        for ((name, a), (_, b)) in zip(cpu.namedParameters(), moved.namedParameters()) { XCTAssertEqual(a.scalars, b.scalars, name) }
        var r1 = RandomGenerator(seed: 1), r2 = RandomGenerator(seed: 1)
        let prompt = Array(ids[0..<4])
        XCTAssertEqual(try Generator.generate(model: moved, prompt: prompt, maxNewTokens: 6, options: SamplingOptions(temperature: 0), rng: &r2),
                       try Generator.generate(model: cpu, prompt: prompt, maxNewTokens: 6, options: SamplingOptions(temperature: 0), rng: &r1))
        for op in ["rmsNormForward", "rmsNormBackward", "swigluForward", "swigluBackward", "rotary", "attentionForward",
                   "attentionBackward", "cachedAttention"] {
            XCTAssertGreaterThan(twin.calls[op] ?? 0, before[op] ?? 0, "\(op) did not run on the model's device")
        }
    }
}
