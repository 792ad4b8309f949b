/// A decoder-only Transformer: GPT-2's architecture, nanoGPT's shape.
///
/// Parameter names equal Hugging Face GPT-2's (`transformer.wte.weight`,
/// `transformer.h.0.attn.c_attn.weight`, …), with Linear weights stored
/// (out, in) like `torch.nn.Linear` (HF's Conv1D stores (in, out)).
public final class GPT: Module, LanguageModel {
    /// Embeddings, blocks and the final LayerNorm.
    public let transformer: Transformer
    /// Output projection; nil when tied to `transformer.wte`.
    public let lm_head: Linear?
    /// Hyperparameters.
    public let cfg: GPTConfig

    /// GPT-2 initialisation: N(0, 0.02), residual projections scaled by 1/√(2·n_layer).
    public init(_ config: GPTConfig, rng: inout RandomGenerator) {
        cfg = config
        transformer = Transformer(config, rng: &rng)
        lm_head = config.tieWeights ? nil : Linear(config.nEmbd, config.vocabSize, bias: false, rng: &rng)
    }

    /// `.gpt`.
    public var config: ModelConfig { .gpt(cfg) }
    /// The position table's length.
    public var contextLength: Int? { cfg.blockSize }

    /// The forward pass: logits (B·T, V) for ids (B, T), or (B, V) for each sequence's last
    /// position when `lastOnly`. With `cache` (B = 1, no gradient) the ids sit after the
    /// cached positions, which they extend.
    public func callAsFunction(_ ids: [Int32], batch: Int, time: Int, cache: KVCache?, lastOnly: Bool,
                               rng: inout RandomGenerator) -> Tensor {
        if let cache {
            precondition(batch == 1, "a KV cache holds one sequence, not \(batch)")
            return head(transformer(ids, caches: [cache], counts: [time], rng: &rng), lastOf: lastOnly ? [time] : nil)
        }
        precondition(time <= cfg.blockSize, "sequence of \(time) exceeds the context of \(cfg.blockSize)")
        var x = transformer(ids, batch: batch, time: time, rng: &rng)  // (B, T, C)
        if lastOnly && time > 1 { x = x.slice(axis: 1, (time - 1)..<time) }
        return head(x.reshaped([lastOnly ? batch : batch * time, cfg.nEmbd]), lastOf: nil)
    }

    /// Several sequences in one forward: the weights are read once for all of them.
    public func callAsFunction(_ ids: [Int32], caches: [KVCache], counts: [Int]) -> Tensor {
        var rng = RandomGenerator(seed: 0)
        return head(transformer(ids, caches: caches, counts: counts, rng: &rng), lastOf: counts)
    }

    /// Logits for rows (N, C) of hidden states, or for the last row of each run of `lastOf`.
    private func head(_ x: Tensor, lastOf counts: [Int]?) -> Tensor {
        let x = x.lastRows(ofRuns: counts)
        return lm_head?(x) ?? transformer.wte.asLinear(x)
    }

    /// An empty cache for every block's attention, `capacity` positions (at most, and by
    /// default, the context).
    public func makeCache(capacity: Int?) -> KVCache? {
        let capacity = capacity ?? cfg.blockSize
        precondition(capacity > 0 && capacity <= cfg.blockSize, "a cache of \(capacity) positions for a context of \(cfg.blockSize)")
        return KVCache(layers: cfg.nLayer, kvHeads: cfg.nHead, headSize: cfg.nEmbd / cfg.nHead, capacity: capacity,
                       storage: KVCache.storage(for: decodePrecision, on: transformer.wte.weight.backend),
                       on: transformer.wte.weight.backend)
    }

    /// The precision of the weight copies (`setDecodePrecision`); caches made after it keep
    /// keys and values as `KVCache.storage(for:on:)` says.
    public private(set) var decodePrecision = DecodePrecision.fp32

    /// Gives every Linear a weight copy in `precision` for generation, and the token
    /// embedding too when it doubles as the LM head.
    public override func setDecodePrecision(_ precision: DecodePrecision) {
        super.setDecodePrecision(precision)
        decodePrecision = precision
        if lm_head == nil { transformer.wte.setDecodePrecision(asHead: precision) }
    }

    /// The trunk: everything but the LM head.
    public final class Transformer: Module {
        /// Token embeddings (V, C).
        public let wte: Embedding
        /// Position embeddings (block size, C).
        public let wpe: Embedding
        /// Blocks.
        public let h: [Block]
        /// Final LayerNorm.
        public let ln_f: LayerNorm
        let drop: Dropout

        init(_ c: GPTConfig, rng: inout RandomGenerator) {
            wte = Embedding(c.vocabSize, c.nEmbd, rng: &rng)
            wpe = Embedding(c.blockSize, c.nEmbd, rng: &rng)
            var blocks: [Block] = []
            for _ in 0..<c.nLayer { blocks.append(Block(c, rng: &rng)) }
            h = blocks
            ln_f = LayerNorm(c.nEmbd, eps: c.layerNormEpsilon, bias: c.bias)
            drop = Dropout(c.dropout)
        }

        /// Hidden states (B, T, C) after `ln_f`, for positions 0 ..< T.
        public func callAsFunction(_ ids: [Int32], batch: Int, time: Int, rng: inout RandomGenerator) -> Tensor {
            let tok = wte(ids, shape: [batch, time])
            let pos = wpe.weight.slice(axis: 0, 0..<time)
            var x = drop(tok + pos, rng: &rng)
            for block in h { x = block(x, rng: &rng) }
            return ln_f(x)
        }

        /// Hidden states (N, C) after `ln_f` for sequences that extend their caches: sequence s
        /// owns the next `counts[s]` of the N ids, at the positions after `caches[s]`'s.
        public func callAsFunction(_ ids: [Int32], caches: [KVCache], counts: [Int], rng: inout RandomGenerator) -> Tensor {
            precondition(caches.count == counts.count && counts.reduce(0, +) == ids.count, "\(ids.count) ids for counts \(counts)")
            var positions: [Int32] = []
            positions.reserveCapacity(ids.count)
            for (cache, n) in zip(caches, counts) {
                precondition(cache.length + n <= wpe.weight.shape[0],
                             "sequence of \(cache.length + n) exceeds the context of \(wpe.weight.shape[0])")
                for p in cache.length..<(cache.length + n) { positions.append(Int32(p)) }
            }
            var x = drop(wte(ids, shape: [ids.count]) + wpe(positions, shape: [ids.count]), rng: &rng)
            for (i, block) in h.enumerated() {
                x = block(x, caches: caches.map { $0.layers[i] }, counts: counts, rng: &rng)
            }
            return ln_f(x)
        }
    }

    /// Attention then MLP, each with a residual connection.
    public final class Block: Module {
        /// LayerNorm before (pre-LN) or after (post-LN) attention.
        public let ln_1: LayerNorm
        /// Masked multi-head self-attention.
        public let attn: CausalSelfAttention
        /// LayerNorm around the MLP.
        public let ln_2: LayerNorm
        /// Position-wise feed-forward network.
        public let mlp: MLP
        let norm: NormPlacement

        init(_ c: GPTConfig, rng: inout RandomGenerator) {
            ln_1 = LayerNorm(c.nEmbd, eps: c.layerNormEpsilon, bias: c.bias)
            attn = CausalSelfAttention(c, rng: &rng)
            ln_2 = LayerNorm(c.nEmbd, eps: c.layerNormEpsilon, bias: c.bias)
            mlp = MLP(c, rng: &rng)
            norm = c.norm
        }

        /// (B, T, C) → (B, T, C); with caches, (N, C) rows of several sequences (see
        /// `Transformer.callAsFunction(_:caches:counts:rng:)`).
        public func callAsFunction(_ x: Tensor, caches: [LayerKVCache] = [], counts: [Int] = [],
                                   rng: inout RandomGenerator) -> Tensor {
            switch norm {
            case .pre:
                let y = x + attn(ln_1(x), caches: caches, counts: counts, rng: &rng)
                return y + mlp(ln_2(y), rng: &rng)
            case .post:
                let y = ln_1(x + attn(x, caches: caches, counts: counts, rng: &rng))
                return ln_2(y + mlp(y, rng: &rng))
            }
        }
    }

    /// Keys, queries and values from one projection; heads attend in one fused kernel.
    public final class CausalSelfAttention: Module {
        /// (3C, C): queries, keys, values.
        public let c_attn: Linear
        /// (C, C): mixes the heads' outputs.
        public let c_proj: Linear
        let attention: Attention
        /// Dropout on attention probabilities (inside the fused kernel) and on the output.
        let dropout: Float
        let resid_dropout: Dropout

        init(_ c: GPTConfig, rng: inout RandomGenerator) {
            c_attn = Linear(c.nEmbd, 3 * c.nEmbd, bias: c.bias, rng: &rng)
            c_proj = Linear(c.nEmbd, c.nEmbd, bias: c.bias, std: 0.02 / Float(2 * c.nLayer).squareRoot(), rng: &rng)
            attention = Attention(heads: c.nHead)
            dropout = c.dropout
            resid_dropout = Dropout(c.dropout)
        }

        /// (B, T, C) → (B, T, C); with caches, each sequence's rows of (N, C) attend to its
        /// cached positions too.
        public func callAsFunction(_ x: Tensor, caches: [LayerKVCache] = [], counts: [Int] = [],
                                   rng: inout RandomGenerator) -> Tensor {
            let p = isTraining ? dropout : 0
            let qkv = c_attn(x), c = qkv.shape.last! / 3
            // GPT-2 packs queries, keys and values in one projection: attention reads the
            // three column ranges in place.
            let (q, k, v) = (qkv.columns(0..<c), qkv.columns(c..<(2 * c)), qkv.columns((2 * c)..<(3 * c)))
            let y = caches.isEmpty
                ? attention(q: q, k: k, v: v, cache: nil, dropout: p, seed: p > 0 ? rng.next() : 0)
                : attention(q: q, k: k, v: v, caches: caches, counts: counts)
            return resid_dropout(c_proj(y), rng: &rng)
        }
    }

    /// Linear → activation → Linear, 4× wide.
    public final class MLP: Module {
        /// (4C, C).
        public let c_fc: Linear
        /// (C, 4C).
        public let c_proj: Linear
        let act: Activation
        let dropout: Dropout

        init(_ c: GPTConfig, rng: inout RandomGenerator) {
            c_fc = Linear(c.nEmbd, 4 * c.nEmbd, bias: c.bias, rng: &rng)
            c_proj = Linear(4 * c.nEmbd, c.nEmbd, bias: c.bias, std: 0.02 / Float(2 * c.nLayer).squareRoot(), rng: &rng)
            act = c.activation
            dropout = Dropout(c.dropout)
        }

        /// (B, T, C) → (B, T, C).
        public func callAsFunction(_ x: Tensor, rng: inout RandomGenerator) -> Tensor {
            dropout(c_proj(act(c_fc(x))), rng: &rng)
        }
    }
}
