/// A Llama-family decoder (Llama 2/3, Qwen2, Mistral, SmolLM2): RMSNorm before attention and
/// MLP, rotary position embeddings, grouped-query attention, a SwiGLU MLP, no position table.
///
/// Parameter names equal Hugging Face `LlamaForCausalLM`'s (`model.embed_tokens.weight`,
/// `model.layers.0.self_attn.q_proj.weight`, …, `lm_head.weight`), Linear weights (out, in)
/// like `torch.nn.Linear`, so a folder's tensors load under their own names.
public final class Llama: Module, LanguageModel {
    /// Embeddings, layers and the final norm.
    public let model: Model
    /// Output projection; nil when tied to `model.embed_tokens`.
    public let lm_head: Linear?
    /// Hyperparameters.
    public let cfg: LlamaConfig

    /// Weights drawn N(0, initializer_range²); the projections into the residual stream
    /// (o_proj, down_proj) scaled by 1/√(2·layers) as GPT-2 does, for training from scratch.
    public init(_ config: LlamaConfig, rng: inout RandomGenerator) {
        cfg = config
        model = Model(config, rng: &rng)
        lm_head = config.tieWordEmbeddings ? nil
            : Linear(config.hiddenSize, config.vocabSize, bias: false, std: config.initializerRange, rng: &rng)
    }

    /// `.llama`.
    public var config: ModelConfig { .llama(cfg) }
    /// `max_position_embeddings`.
    public var contextLength: Int? { cfg.maxPositionEmbeddings }

    /// The forward pass: logits (B·T, V) for ids (B, T), or (B, V) for each sequence's last
    /// position when `lastOnly`. With `cache` (B = 1, no gradient) the ids sit after the
    /// cached positions, which they extend.
    public func callAsFunction(_ ids: [Int32], batch: Int, time: Int, cache: KVCache?, lastOnly: Bool,
                               rng: inout RandomGenerator) -> Tensor {
        if let cache {
            precondition(batch == 1, "a KV cache holds one sequence, not \(batch)")
            return head(model(ids, caches: [cache], counts: [time], rng: &rng), lastOf: lastOnly ? [time] : nil)
        }
        precondition(time <= cfg.maxPositionEmbeddings, "sequence of \(time) exceeds the context of \(cfg.maxPositionEmbeddings)")
        var x = model(ids, batch: batch, time: time, rng: &rng)  // (B, T, C)
        if lastOnly && time > 1 { x = x.slice(axis: 1, (time - 1)..<time) }
        return head(x.reshaped([lastOnly ? batch : batch * time, cfg.hiddenSize]), lastOf: nil)
    }

    /// Several sequences in one forward: the weights are read once for all of them.
    public func callAsFunction(_ ids: [Int32], caches: [KVCache], counts: [Int]) -> Tensor {
        var rng = RandomGenerator(seed: 0)
        return head(model(ids, caches: caches, counts: counts, rng: &rng), lastOf: counts)
    }

    /// Logits for rows (N, C) of hidden states, or for the last row of each run of `lastOf`.
    private func head(_ x: Tensor, lastOf counts: [Int]?) -> Tensor {
        let x = x.lastRows(ofRuns: counts)
        return lm_head?(x) ?? model.embed_tokens.asLinear(x)
    }

    /// An empty cache of `num_key_value_heads` heads for every layer, `capacity` positions (at
    /// most, and by default, the context).
    public func makeCache(capacity: Int?) -> KVCache? {
        let capacity = capacity ?? cfg.maxPositionEmbeddings
        precondition(capacity > 0 && capacity <= cfg.maxPositionEmbeddings,
                     "a cache of \(capacity) positions for a context of \(cfg.maxPositionEmbeddings)")
        return KVCache(layers: cfg.numHiddenLayers, kvHeads: cfg.numKeyValueHeads, headSize: cfg.headDim, capacity: capacity,
                       storage: KVCache.storage(for: decodePrecision, on: model.embed_tokens.weight.backend),
                       on: model.embed_tokens.weight.backend)
    }

    /// The precision of the weight copies (`setDecodePrecision`); caches made after it keep
    /// keys and values as `KVCache.storage(for:on:)` says.
    public private(set) var decodePrecision = DecodePrecision.fp32

    /// Gives every Linear a weight copy in `precision` for generation, and the token
    /// embedding too when it doubles as the LM head.
    public override func setDecodePrecision(_ precision: DecodePrecision) {
        super.setDecodePrecision(precision)
        decodePrecision = precision
        if lm_head == nil { model.embed_tokens.setDecodePrecision(asHead: precision) }
    }

    /// The trunk: everything but the LM head (Hugging Face's `LlamaModel`).
    public final class Model: Module {
        /// Token embeddings (V, C).
        public let embed_tokens: Embedding
        /// Decoder layers.
        public let layers: [DecoderLayer]
        /// Final RMSNorm.
        public let norm: RMSNorm
        let context: Int

        init(_ c: LlamaConfig, rng: inout RandomGenerator) {
            embed_tokens = Embedding(c.vocabSize, c.hiddenSize, std: c.initializerRange, rng: &rng)
            let rope = c.rope
            var layers: [DecoderLayer] = []
            for _ in 0..<c.numHiddenLayers { layers.append(DecoderLayer(c, rope: rope, rng: &rng)) }
            self.layers = layers
            norm = RMSNorm(c.hiddenSize, eps: c.rmsNormEps)
            context = c.maxPositionEmbeddings
        }

        /// Hidden states (B, T, C) after `norm`, for positions 0 ..< T.
        public func callAsFunction(_ ids: [Int32], batch: Int, time: Int, rng: inout RandomGenerator) -> Tensor {
            var x = embed_tokens(ids, shape: [batch, time])
            for layer in layers { x = layer(x, rng: &rng) }
            return norm(x)
        }

        /// Hidden states (N, C) after `norm` for sequences that extend their caches: sequence s
        /// owns the next `counts[s]` of the N ids, at the positions after `caches[s]`'s.
        public func callAsFunction(_ ids: [Int32], caches: [KVCache], counts: [Int], rng: inout RandomGenerator) -> Tensor {
            precondition(caches.count == counts.count && counts.reduce(0, +) == ids.count, "\(ids.count) ids for counts \(counts)")
            for (cache, n) in zip(caches, counts) {
                precondition(cache.length + n <= context, "sequence of \(cache.length + n) exceeds the context of \(context)")
            }
            var x = embed_tokens(ids, shape: [ids.count])
            for (i, layer) in layers.enumerated() {
                x = layer(x, caches: caches.map { $0.layers[i] }, counts: counts, rng: &rng)
            }
            return norm(x)
        }
    }

    /// Pre-norm attention then pre-norm MLP, each with a residual connection.
    public final class DecoderLayer: Module {
        /// Grouped-query self-attention with rotary embeddings.
        public let self_attn: SelfAttention
        /// The gated MLP.
        public let mlp: MLP
        /// RMSNorm before attention.
        public let input_layernorm: RMSNorm
        /// RMSNorm before the MLP.
        public let post_attention_layernorm: RMSNorm

        init(_ c: LlamaConfig, rope: RotaryEmbedding, rng: inout RandomGenerator) {
            self_attn = SelfAttention(c, rope: rope, rng: &rng)
            mlp = MLP(c, rng: &rng)
            input_layernorm = RMSNorm(c.hiddenSize, eps: c.rmsNormEps)
            post_attention_layernorm = RMSNorm(c.hiddenSize, eps: c.rmsNormEps)
        }

        /// (B, T, C) → (B, T, C); with caches, (N, C) rows of several sequences.
        public func callAsFunction(_ x: Tensor, caches: [LayerKVCache] = [], counts: [Int] = [],
                                   rng: inout RandomGenerator) -> Tensor {
            let h = x + self_attn(input_layernorm(x), caches: caches, counts: counts, rng: &rng)
            return h + mlp(post_attention_layernorm(h), rng: &rng)
        }
    }

    /// Queries, keys and values from three projections (fewer key/value heads than query heads
    /// under grouped-query attention), rotated by position, attended in one fused kernel.
    public final class SelfAttention: Module {
        /// (heads·hd, C).
        public let q_proj: Linear
        /// (kvHeads·hd, C).
        public let k_proj: Linear
        /// (kvHeads·hd, C).
        public let v_proj: Linear
        /// (C, heads·hd): mixes the heads' outputs.
        public let o_proj: Linear
        let attention: Attention
        /// Dropout on attention probabilities (inside the fused kernel).
        let dropout: Float
        let resid_dropout: Dropout

        init(_ c: LlamaConfig, rope: RotaryEmbedding, rng: inout RandomGenerator) {
            let q = c.numAttentionHeads * c.headDim, kv = c.numKeyValueHeads * c.headDim
            let qkvBias = c.attentionBias || c.qkvBias, std = c.initializerRange
            q_proj = Linear(c.hiddenSize, q, bias: qkvBias, std: std, rng: &rng)
            k_proj = Linear(c.hiddenSize, kv, bias: qkvBias, std: std, rng: &rng)
            v_proj = Linear(c.hiddenSize, kv, bias: qkvBias, std: std, rng: &rng)
            o_proj = Linear(q, c.hiddenSize, bias: c.attentionBias, std: std / Float(2 * c.numHiddenLayers).squareRoot(), rng: &rng)
            attention = Attention(heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads, rope: rope)
            dropout = c.attentionDropout
            resid_dropout = Dropout(c.residualDropout)
        }

        /// (B, T, C) → (B, T, C); with caches, each sequence's rows of (N, C) attend to its
        /// cached positions too, rotated from its own position.
        public func callAsFunction(_ x: Tensor, caches: [LayerKVCache] = [], counts: [Int] = [],
                                   rng: inout RandomGenerator) -> Tensor {
            let p = isTraining ? dropout : 0
            let (q, k, v) = (q_proj(x).allColumns, k_proj(x).allColumns, v_proj(x).allColumns)
            let y = caches.isEmpty
                ? attention(q: q, k: k, v: v, cache: nil, dropout: p, seed: p > 0 ? rng.next() : 0)
                : attention(q: q, k: k, v: v, caches: caches, counts: counts)
            return resid_dropout(o_proj(y), rng: &rng)
        }
    }

    /// down(silu(gate(x)) ⊙ up(x)).
    public final class MLP: Module {
        /// (I, C).
        public let gate_proj: Linear
        /// (I, C).
        public let up_proj: Linear
        /// (C, I).
        public let down_proj: Linear
        let dropout: Dropout

        init(_ c: LlamaConfig, rng: inout RandomGenerator) {
            let std = c.initializerRange
            gate_proj = Linear(c.hiddenSize, c.intermediateSize, bias: c.mlpBias, std: std, rng: &rng)
            up_proj = Linear(c.hiddenSize, c.intermediateSize, bias: c.mlpBias, std: std, rng: &rng)
            down_proj = Linear(c.intermediateSize, c.hiddenSize, bias: c.mlpBias,
                               std: std / Float(2 * c.numHiddenLayers).squareRoot(), rng: &rng)
            dropout = Dropout(c.residualDropout)
        }

        /// (…, C) → (…, C).
        public func callAsFunction(_ x: Tensor, rng: inout RandomGenerator) -> Tensor {
            dropout(down_proj(.swiglu(gate: gate_proj(x), up: up_proj(x))), rng: &rng)
        }
    }
}
