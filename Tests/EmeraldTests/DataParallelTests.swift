import XCTest
import EmeraldCore
import Emerald

/// Data-parallel shards give the gradient of the whole batch.
final class DataParallelTests: XCTestCase {
    private func gradients(shards: Int, threads: Int, batch: Int, scale: Float = 1, twice: Bool = false,
                           dropout: Float = 0) -> (Float, [[Float]]) {
        let saved = ThreadPool.shared
        GEMMBenchmark.usePool(threads: threads)
        defer { ThreadPool.shared = saved }
        var cfg = TestSupport.tinyGPT()
        cfg.dropout = dropout
        let model = ModelConfig.gpt(cfg).makeModel(seed: 5)
        let ids = TestSupport.ids(batch * 9, vocab: cfg.vocabSize)
        let b = Batch(inputs: (0..<batch).flatMap { r in ids[(r * 9)..<(r * 9 + 8)] },
                      targets: (0..<batch).flatMap { r in ids[(r * 9 + 1)..<(r * 9 + 9)] },
                      batchSize: batch, blockSize: 8)
        var rng = RandomGenerator(seed: 1)
        model.zeroGrad()
        var loss = model.accumulateGradients(b, shards: shards, scale: scale, rng: &rng)
        if twice { loss = model.accumulateGradients(b, shards: shards, scale: scale, rng: &rng) }
        return (loss, model.parameters.map { $0.grad?.scalars ?? [] })
    }

    func testShardsMatchOneBackward() {
        let (l1, g1) = gradients(shards: 1, threads: 1, batch: 5)
        for (shards, threads) in [(2, 2), (3, 3), (3, 2), (2, 3)] {
            let (l, g) = gradients(shards: shards, threads: threads, batch: 5)
            XCTAssertEqual(l, l1, accuracy: 1e-5, "\(shards) shards on \(threads) threads")
            XCTAssertEqual(g.count, g1.count)
            for (a, b) in zip(g, g1) {
                XCTAssertEqual(a.count, b.count, "a parameter lost its gradient")
                XCTAssertLessThan(TestSupport.maxAbsDiff(a, b), 1e-5, "\(shards) shards on \(threads) threads")
            }
        }
    }

    /// With dropout, each shard draws the unsharded step's masks for its sequences (same seeds,
    /// positions counted in the whole batch), so sharding still changes only the rounding.
    func testShardsDrawTheUnshardedDropoutMasks() {
        let (l1, g1) = gradients(shards: 1, threads: 1, batch: 5, twice: true, dropout: 0.3)
        for (shards, threads) in [(2, 2), (3, 3)] {
            let (l, g) = gradients(shards: shards, threads: threads, batch: 5, twice: true, dropout: 0.3)
            XCTAssertEqual(l, l1, accuracy: 1e-5, "\(shards) shards")
            for (a, b) in zip(g, g1) { XCTAssertLessThan(TestSupport.maxAbsDiff(a, b), 1e-5, "\(shards) shards") }
        }
        let (l0, _) = gradients(shards: 1, threads: 1, batch: 5, twice: true)
        XCTAssertGreaterThan(abs(l0 - l1), 1e-3, "dropout 0.3 should change the loss")
    }

    /// Accumulating twice (scaled) adds onto existing gradients, as micro-batches do.
    func testShardsAccumulateOntoExistingGradients() {
        let (_, g1) = gradients(shards: 1, threads: 1, batch: 4, scale: 0.5, twice: true)
        let (_, g2) = gradients(shards: 2, threads: 2, batch: 4, scale: 0.5, twice: true)
        let (_, once) = gradients(shards: 1, threads: 1, batch: 4)
        for ((a, b), c) in zip(zip(g1, g2), once) {
            XCTAssertLessThan(TestSupport.maxAbsDiff(a, b), 1e-5)
            XCTAssertLessThan(TestSupport.maxAbsDiff(a, c), 1e-5)  // 2 × 0.5 × the same batch
        }
    }
}
