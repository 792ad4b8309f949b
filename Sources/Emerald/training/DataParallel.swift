import EmeraldCore

extension Batch {
    /// Sequences `range` of this batch.
    public func rows(_ range: Range<Int>) -> Batch {
        let t = blockSize
        return Batch(inputs: Array(inputs[range.lowerBound * t..<range.upperBound * t]),
                     targets: Array(targets[range.lowerBound * t..<range.upperBound * t]),
                     batchSize: range.count, blockSize: t)
    }
}

/// When training steps split their batch into data-parallel shards.
public enum DataParallel {
    /// Largest model sharded by default. Each extra shard keeps its own copy of the gradients,
    /// added into the first at the end of the step; past this size that pass (and the memory)
    /// costs more than per-op threading loses (`emerald bench train --versus one-shard`:
    /// 1.13× on 0.8M and 0.2M parameters, 1.03× on 11M, 0.96× on GPT-2's 124M).
    public nonisolated(unsafe) static var maxParameters = 32 << 20

    /// The shards a step uses: `requested` (at most one per thread and per sequence), or by
    /// default one per pool thread when the model is at most `maxParameters` and the batch
    /// has a sequence for every thread; otherwise 1 (the step threads each op instead).
    public static func shards(requested: Int?, parameterCount: Int, batchSize: Int,
                              threads: Int = ThreadPool.shared.threadCount) -> Int {
        if let requested { return Swift.min(requested, threads, batchSize) }
        return parameterCount <= maxParameters && batchSize >= threads ? threads : 1
    }
}

extension LanguageModel {
    /// Forward and backward of `batch`'s mean loss (times `scale`), with the batch split into
    /// `shards` slices of sequences that run at once, one per pool thread.
    ///
    /// Each shard runs its whole graph on one core, so a step pays no hand-off per op: for
    /// small models the per-op splits (hundreds of short kernels, each ending in a wait) cost
    /// more than they gain. Shards seed their backward with their share of the batch, send
    /// parameter gradients to their own `GradientSink` (the first shard writes `grad`), and
    /// the sinks are added into `grad` at the end: the result is the gradient of the whole
    /// batch's loss, as from `loss(batch).backward()`, up to float rounding.
    ///
    /// `firstRow`: where `batch` starts inside a larger batch split across processes
    /// (`ProcessGroup`), so dropout draws that batch's masks for these sequences.
    /// - Returns: the batch's mean loss.
    public func accumulateGradients(_ batch: Batch, shards: Int, scale: Float = 1, firstRow: Int = 0,
                                    rng: inout RandomGenerator) -> Float {
        let pool = ThreadPool.shared
        let n = Swift.min(shards, batch.batchSize, pool.availableThreads)
        if n <= 1 {
            func run() -> Float {
                let loss = self.loss(batch, rng: &rng)
                (scale == 1 ? loss : loss * scale).backward()
                return loss.item
            }
            return firstRow == 0 ? run() : ShardRows.run(rows: firstRow..<(firstRow + batch.batchSize), run)
        }
        let b = batch.batchSize
        let bounds = (0...n).map { b * $0 / n }
        // Every shard starts from the caller's generator: the same seeds for the same dropout
        // calls, with positions counted in the whole batch (`ShardRows`), give each shard the
        // unsharded step's masks for its sequences. The caller then continues from shard 0's.
        var generators = [RandomGenerator](repeating: rng, count: n)
        let sinks = (1..<n).map { _ in GradientSink() }
        var losses = [Float](repeating: 0, count: n)
        losses.withUnsafeMutableBufferPointer { lossBuffer in
            generators.withUnsafeMutableBufferPointer { generatorBuffer in
                let losses = lossBuffer, generators = generatorBuffer
                pool.run { w in
                    guard w < n else { return }
                    let rows = bounds[w]..<bounds[w + 1]
                    let part = batch.rows(rows)
                    let positions = (firstRow + rows.lowerBound)..<(firstRow + rows.upperBound)
                    let share = Float(part.batchSize) / Float(b)
                    func run() {
                        ShardRows.run(rows: positions) {
                            let loss = self.loss(part, rng: &generators[w])
                            (loss * (share * scale)).backward()
                            losses[w] = loss.item * share
                        }
                    }
                    if w == 0 { run() } else { sinks[w - 1].collect(run) }
                }
            }
        }
        rng = generators[0]
        GradientSink.merge(sinks)
        return losses.reduce(0, +)
    }
}
