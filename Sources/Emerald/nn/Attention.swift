import EmeraldCore
import Foundation

/// Masked multi-head self-attention over queries, keys and values already projected: the
/// part every decoder family shares. GPT-2 passes column ranges of its packed `c_attn`
/// output; Llama-family models pass three projections, fewer key/value heads than query heads
/// (grouped-query attention) and a rotary embedding.
public struct Attention: Sendable {
    /// Query heads.
    public let heads: Int
    /// Key/value heads; each serves `heads / kvHeads` query heads.
    public let kvHeads: Int
    /// Rotary position embedding applied to queries and keys, if the family uses one.
    public let rope: RotaryEmbedding?

    /// Attention with `heads` query heads sharing `kvHeads` key/value heads.
    public init(heads: Int, kvHeads: Int? = nil, rope: RotaryEmbedding? = nil) {
        self.heads = heads
        self.kvHeads = kvHeads ?? heads
        self.rope = rope
    }

    /// q (B, T, heads·hs), k and v (B, T, kvHeads·hs) → (B, T, heads·hs).
    ///
    /// Without a cache: causal attention within the T positions (training, scoring, prompts),
    /// with `dropout` on the probabilities. With one (B = 1, no gradient): the new positions
    /// are appended to `cache` and attend to everything it holds up to themselves.
    public func callAsFunction(q: Columns, k: Columns, v: Columns, start: Int = 0, cache: LayerKVCache?,
                               dropout: Float = 0, seed: UInt64 = 0) -> Tensor {
        var (q, k) = (q, k)
        if let rope {
            q = rope(q.materialized, heads: heads, start: start).allColumns
            k = rope(k.materialized, heads: kvHeads, start: start).allColumns
        }
        guard let cache else {
            return .causalAttention(q: q, k: k, v: v, heads: heads, kvHeads: kvHeads, dropout: dropout, seed: seed)
        }
        precondition(q.tensor.rank < 3 || q.tensor.shape[0] == 1, "a KV cache holds one sequence, not \(q.tensor.shape[0])")
        let y = cache.attend(q: q, k: k, v: v, heads: heads)
        return y.reshaped(Array(q.tensor.shape.dropLast()) + [y.shape[1]])
    }

    /// Several sequences decoded together (no gradient): q (rows, heads·hs), k and v (rows,
    /// kvHeads·hs), where sequence s owns the next `counts[s]` rows, at the positions after
    /// `caches[s]`'s, which they extend and attend to. → (rows, heads·hs), each sequence's rows
    /// as `callAsFunction(q:k:v:cache:)` gives them alone.
    public func callAsFunction(q: Columns, k: Columns, v: Columns, caches: [LayerKVCache], counts: [Int]) -> Tensor {
        var (q, k) = (q, k)
        if let rope, caches.count == 1 {
            // One sequence (a prompt, or decoding alone): its rows as they are.
            q = rope(q.materialized, heads: heads, start: caches[0].length).allColumns
            k = rope(k.materialized, heads: kvHeads, start: caches[0].length).allColumns
        } else if let rope {
            // Each sequence's rows from its own position.
            var row = 0
            var qs: [Tensor] = [], ks: [Tensor] = []
            for (cache, n) in zip(caches, counts) {
                let rows = row..<(row + n)
                qs.append(rope(q.materialized.slice(axis: 0, rows), heads: heads, start: cache.length))
                ks.append(rope(k.materialized.slice(axis: 0, rows), heads: kvHeads, start: cache.length))
                row += n
            }
            q = Tensor.concat(qs, axis: 0).allColumns
            k = Tensor.concat(ks, axis: 0).allColumns
        }
        return LayerKVCache.attend(caches, counts: counts, q: q, k: k, v: v, heads: heads)
    }
}

/// Rotary position embedding: frequencies ω_i = θ^(−2i/hs) per channel pair of a head,
/// optionally rescaled as Llama 3 does for long contexts.
public struct RotaryEmbedding: Sendable, Equatable {
    /// ω_0 … ω_{hs/2−1}.
    public let inverseFrequencies: [Float]

    /// Llama 3's frequency scaling (`rope_scaling` with `rope_type: "llama3"`).
    public struct Llama3Scaling: Sendable, Equatable, Codable {
        /// `factor`: how much longer the context became.
        public var factor: Float
        /// `low_freq_factor`, `high_freq_factor`.
        public var lowFrequencyFactor: Float, highFrequencyFactor: Float
        /// `original_max_position_embeddings`.
        public var originalContext: Int
        /// The four fields of Llama 3's `rope_scaling`.
        public init(factor: Float, lowFrequencyFactor: Float, highFrequencyFactor: Float, originalContext: Int) {
            self.factor = factor; self.lowFrequencyFactor = lowFrequencyFactor
            self.highFrequencyFactor = highFrequencyFactor; self.originalContext = originalContext
        }
    }

    /// Frequencies for heads of `headSize` channels with base `theta` (`rope_theta`).
    public init(headSize: Int, theta: Float = 10_000, scaling: Llama3Scaling? = nil) {
        precondition(headSize > 0 && headSize % 2 == 0, "rotary embedding needs an even head size, got \(headSize)")
        // As transformers: 1 / θ^(arange(0, hs, 2) / hs) in float32.
        var inv = (0..<(headSize / 2)).map { i in 1 / powf(theta, Float(2 * i) / Float(headSize)) }
        if let s = scaling {
            let lowWavelength = Float(s.originalContext) / s.lowFrequencyFactor
            let highWavelength = Float(s.originalContext) / s.highFrequencyFactor
            inv = inv.map { f in
                let wavelength = 2 * Float.pi / f
                if wavelength < highWavelength { return f }
                if wavelength > lowWavelength { return f / s.factor }
                let smooth = (Float(s.originalContext) / wavelength - s.lowFrequencyFactor)
                    / (s.highFrequencyFactor - s.lowFrequencyFactor)
                return (1 - smooth) * f / s.factor + smooth * f
            }
        }
        inverseFrequencies = inv
    }

    /// `x` (…, T, heads·hs) with its rows at positions `start ..< start + T` rotated.
    public func callAsFunction(_ x: Tensor, heads: Int, start: Int) -> Tensor {
        x.rotaryEmbedding(heads: heads, start: start, inverseFrequencies: inverseFrequencies)
    }
}

extension Columns {
    /// These columns as a tensor of their own (the tensor itself when it is all of them).
    var materialized: Tensor {
        range.count == tensor.shape.last! ? tensor : tensor.slice(axis: -1, range)
    }
}
