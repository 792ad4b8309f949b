import XCTest
import EmeraldCore

/// `GradientSink.merge`: the shards' gradients added into the leaves, threaded by slices.
final class GradientSinkTests: XCTestCase {
    /// Three sinks into a large leaf (threaded) and a small one, with and without an existing
    /// gradient: the result equals the serial sums in sink order, bit for bit, on 1–3 threads.
    func testMergeEqualsSerialSumsInSinkOrder() {
        let saved = ThreadPool.shared
        defer { ThreadPool.shared = saved }
        var rng = RandomGenerator(seed: 9)
        let sizes = [40_001, 70]
        for threads in 1...3 {
            GEMMBenchmark.usePool(threads: threads)
            let leaves = sizes.map { Tensor([Float](repeating: 0, count: $0), shape: [$0], requiresGrad: true) }
            let existing = Tensor.randn([sizes[0]], using: &rng)
            leaves[0].accumulateGrad(existing)  // the first shard's gradient, already in `grad`
            let sinks = (0..<3).map { _ in GradientSink() }
            var parts: [[Tensor]] = []
            for sink in sinks {
                let seeds = sizes.map { Tensor.randn([$0], using: &rng) }
                parts.append(seeds)
                sink.collect { for (leaf, g) in zip(leaves, seeds) { leaf.accumulateGrad(g) } }
            }
            XCTAssertTrue(leaves[0].grad!.scalars == existing.scalars, "a sink leaked into grad")
            XCTAssertNil(leaves[1].grad)
            GradientSink.merge(sinks)
            for (l, leaf) in leaves.enumerated() {
                var expected = l == 0 ? existing.scalars : parts[0][l].scalars
                for part in parts.dropFirst(l == 0 ? 0 : 1) {
                    for i in expected.indices { expected[i] += part[l].data[i] }
                }
                let got = leaf.grad!.scalars
                let wrong = got.indices.filter { got[$0] != expected[$0] }
                XCTAssertEqual(wrong.count, 0, "leaf \(l) on \(threads) threads: \(wrong.count) sums differ, first at \(wrong.first ?? -1)")
            }
            // Emptied: merging again changes nothing.
            let before = leaves.map { $0.grad!.scalars }
            GradientSink.merge(sinks)
            XCTAssertTrue(leaves.map { $0.grad!.scalars } == before, "a second merge changed the gradients")
        }
    }
}
