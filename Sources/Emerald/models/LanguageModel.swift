/// A next-token predictor the trainer, sampler and checkpoints work with.
public protocol LanguageModel: Module {
    /// Hyperparameters, saved as `config.json`.
    var config: ModelConfig { get }
    /// Longest context the model can read; nil when unbounded.
    var contextLength: Int? { get }
    /// The model's one forward pass: logits `(B·T, V)` for ids `(B, T)`, or `(B, V)` for
    /// each sequence's last position when `lastOnly`; `rng` drives dropout in training mode.
    /// With a `cache` (from `makeCache()`; one sequence, B = 1, no gradient) the ids follow
    /// the positions already cached, and are added to it.
    func callAsFunction(_ ids: [Int32], batch: Int, time: Int, cache: KVCache?, lastOnly: Bool,
                        rng: inout RandomGenerator) -> Tensor
    /// An empty cache for this model's attention layers holding up to `capacity` positions
    /// (nil: the whole context); nil for models that keep none.
    func makeCache(capacity: Int?) -> KVCache?
    /// Several sequences in one forward (evaluation mode, no gradient): sequence s's
    /// `counts[s]` new ids (consecutive in `ids`) follow `caches[s]`'s positions and extend it.
    /// Returns (S, V): the logits at each sequence's last new position, equal to what the
    /// one-sequence forward gives it alone.
    func callAsFunction(_ ids: [Int32], caches: [KVCache], counts: [Int]) -> Tensor
}

extension LanguageModel {
    /// An empty cache as long as the model's context; nil for models that keep none.
    public func makeCache() -> KVCache? { makeCache(capacity: nil) }

    /// One sequence at a time, for models without a batched forward of their own.
    public func callAsFunction(_ ids: [Int32], caches: [KVCache], counts: [Int]) -> Tensor {
        var row = 0
        let parts = zip(caches, counts).map { cache, n in
            defer { row += n }
            return self(Array(ids[row..<(row + n)]), cache: cache, lastOnly: true)
        }
        return parts.count == 1 ? parts[0] : .concat(parts, axis: 0)
    }

    /// Logits `(B·T, V)` for ids `(B, T)`, no cache.
    public func logits(_ ids: [Int32], batch: Int, time: Int, rng: inout RandomGenerator) -> Tensor {
        self(ids, batch: batch, time: time, cache: nil, lastOnly: false, rng: &rng)
    }

    /// Logits for one sequence's new `ids` after `cache`'s positions (every row, or the last
    /// when `lastOnly`), in evaluation mode (no dropout is drawn).
    public func callAsFunction(_ ids: [Int32], cache: KVCache, lastOnly: Bool = false) -> Tensor {
        var rng = RandomGenerator(seed: 0)
        return self(ids, batch: 1, time: ids.count, cache: cache, lastOnly: lastOnly, rng: &rng)
    }

    /// Mean cross-entropy of the next-token predictions.
    public func loss(_ batch: Batch, rng: inout RandomGenerator) -> Tensor {
        logits(batch.inputs, batch: batch.batchSize, time: batch.blockSize, rng: &rng)
            .crossEntropy(targets: batch.targets)
    }
}

extension Tensor {
    /// The last row of each run of `counts` consecutive rows of (N, C): (runs, C) — each
    /// sequence's last position in a multi-sequence forward; the rows themselves when `counts`
    /// is nil or every run is one row.
    func lastRows(ofRuns counts: [Int]?) -> Tensor {
        guard let counts, counts.contains(where: { $0 != 1 }) else { return self }
        var ends: [Int32] = [], row = 0
        for n in counts { row += n; ends.append(Int32(row - 1)) }
        return indexSelect(ends, shape: [ends.count])
    }
}
