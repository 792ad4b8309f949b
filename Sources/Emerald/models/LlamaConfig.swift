import Foundation

/// Llama-family hyperparameters, under the names of Hugging Face's `config.json` (`LlamaConfig`,
/// `Qwen2Config`, `MistralConfig`): the same file is Emerald's config.json for the family and
/// what a Hugging Face folder holds. Emerald-only fields: `qkv_bias` (Qwen2's biases on q/k/v
/// alone) and `residual_dropout` (dropout on the attention and MLP outputs while training).
public struct LlamaConfig: Equatable, Sendable {
    /// Tokens in the vocabulary (V).
    public var vocabSize: Int
    /// Width (C).
    public var hiddenSize: Int
    /// Width of the gated MLP.
    public var intermediateSize: Int
    /// Decoder layers.
    public var numHiddenLayers: Int
    /// Query heads.
    public var numAttentionHeads: Int
    /// Key/value heads (grouped-query attention when fewer than the query heads).
    public var numKeyValueHeads: Int
    /// Longest context.
    public var maxPositionEmbeddings: Int
    /// Channels per head (`head_dim`; C / heads unless the file says otherwise).
    public var headDim: Int
    /// RMSNorm epsilon.
    public var rmsNormEps: Float = 1e-6
    /// RoPE base θ.
    public var ropeTheta: Float = 10_000
    /// Llama 3's RoPE frequency scaling, if any.
    public var ropeScaling: RotaryEmbedding.Llama3Scaling?
    /// The LM head shares the token embedding matrix.
    public var tieWordEmbeddings = false
    /// Biases on q, k, v and o projections (Llama's `attention_bias`).
    public var attentionBias = false
    /// Biases on q, k and v only (Qwen2).
    public var qkvBias = false
    /// Biases in the MLP (`mlp_bias`).
    public var mlpBias = false
    /// Dropout on attention probabilities while training (`attention_dropout`).
    public var attentionDropout: Float = 0
    /// Dropout on each block's attention and MLP outputs while training (Emerald only).
    public var residualDropout: Float = 0
    /// Standard deviation of initial weights.
    public var initializerRange: Float = 0.02

    /// A config; head size C / heads unless given, as many key/value heads as query heads unless given.
    public init(vocabSize: Int, hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int, numAttentionHeads: Int,
                numKeyValueHeads: Int? = nil, maxPositionEmbeddings: Int, headDim: Int? = nil) {
        self.vocabSize = vocabSize; self.hiddenSize = hiddenSize; self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers; self.numAttentionHeads = numAttentionHeads
        self.numKeyValueHeads = numKeyValueHeads ?? numAttentionHeads
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.headDim = headDim ?? (numAttentionHeads > 0 ? hiddenSize / numAttentionHeads : 0)
    }

    /// Named shapes; the vocabulary comes from the tokenizer (or the preset's own, when it has one
    /// and `vocabSize` is nil).
    public static func preset(_ name: String, vocabSize: Int?) throws -> LlamaConfig {
        switch name {
        case "oz":  // GPT's oz preset in Llama form: 4 layers × 4 heads × 128, an MLP of as many weights
            var c = LlamaConfig(vocabSize: vocabSize ?? 65, hiddenSize: 128, intermediateSize: 344, numHiddenLayers: 4,
                                numAttentionHeads: 4, maxPositionEmbeddings: 128)
            c.tieWordEmbeddings = true; c.attentionDropout = 0.1; c.residualDropout = 0.1
            return c
        case "smollm2-135m":  // HuggingFaceTB/SmolLM2-135M's shape
            var c = LlamaConfig(vocabSize: vocabSize ?? 49152, hiddenSize: 576, intermediateSize: 1536, numHiddenLayers: 30,
                                numAttentionHeads: 9, numKeyValueHeads: 3, maxPositionEmbeddings: 8192)
            c.tieWordEmbeddings = true; c.rmsNormEps = 1e-5; c.ropeTheta = 100_000; c.initializerRange = 0.041666
            return c
        default:
            throw EmeraldError.invalidArgument("unknown Llama preset \"\(name)\"; choose one of \(presetNames.joined(separator: ", "))")
        }
    }

    /// Names accepted by `preset`.
    public static let presetNames = ["oz", "smollm2-135m"]

    /// Rejects shapes the model cannot be built with, naming the field.
    public func validate() throws {
        try require(vocabSize > 0 && vocabSize <= 1 << 24, field: "vocab_size", "must be in 1...\(1 << 24), got \(vocabSize)")
        try require(hiddenSize > 0 && hiddenSize <= 1 << 17, field: "hidden_size", "must be in 1...\(1 << 17), got \(hiddenSize)")
        try require(intermediateSize > 0 && intermediateSize <= 1 << 20, field: "intermediate_size",
                    "must be in 1...\(1 << 20), got \(intermediateSize)")
        try require(numHiddenLayers > 0 && numHiddenLayers <= 4096, field: "num_hidden_layers", "must be in 1...4096, got \(numHiddenLayers)")
        try require(numAttentionHeads > 0 && numAttentionHeads <= 4096, field: "num_attention_heads",
                    "must be in 1...4096, got \(numAttentionHeads)")
        try require(numKeyValueHeads > 0 && numKeyValueHeads <= numAttentionHeads, field: "num_key_value_heads",
                    "must be in 1...num_attention_heads (\(numAttentionHeads)), got \(numKeyValueHeads)")
        try require(numAttentionHeads % numKeyValueHeads == 0, field: "num_key_value_heads",
                    "\(numKeyValueHeads) does not divide num_attention_heads \(numAttentionHeads)")
        try require(headDim > 0 && headDim <= 1 << 12 && headDim % 2 == 0, field: "head_dim",
                    "must be even and in 2...\(1 << 12) (rotary embeddings turn channel pairs), got \(headDim)"
                        + (headDim == 0 ? " (hidden_size \(hiddenSize) / num_attention_heads \(numAttentionHeads))" : ""))
        try require(maxPositionEmbeddings > 0 && maxPositionEmbeddings <= 1 << 20, field: "max_position_embeddings",
                    "must be in 1...\(1 << 20), got \(maxPositionEmbeddings)")
        try require(rmsNormEps > 0, field: "rms_norm_eps", "must be positive, got \(rmsNormEps)")
        try require(ropeTheta > 1, field: "rope_theta", "must be above 1, got \(ropeTheta)")
        try require(attentionDropout >= 0 && attentionDropout < 1, field: "attention_dropout", "must be in [0, 1), got \(attentionDropout)")
        try require(residualDropout >= 0 && residualDropout < 1, field: "residual_dropout", "must be in [0, 1), got \(residualDropout)")
        if let s = ropeScaling {
            try require(s.factor > 0 && s.originalContext > 0 && s.lowFrequencyFactor > 0 && s.highFrequencyFactor > s.lowFrequencyFactor,
                        field: "rope_scaling", "needs factor > 0, original_max_position_embeddings > 0 and 0 < low_freq_factor < high_freq_factor")
        }
    }

    /// The rotary embedding of every layer.
    public var rope: RotaryEmbedding { RotaryEmbedding(headSize: headDim, theta: ropeTheta, scaling: ropeScaling) }
}

extension LlamaConfig: ModelConfiguration {
    /// "llama" (Qwen2 and Mistral folders load as this family too).
    public static let modelType = "llama"

    enum CodingKeys: String, CodingKey {
        case vocab_size, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads
        case max_position_embeddings, head_dim, rms_norm_eps, rope_theta, rope_scaling, rope_parameters, tie_word_embeddings
        case attention_bias, qkv_bias, mlp_bias, attention_dropout, residual_dropout, initializer_range, hidden_act
        case model_type, use_sliding_window, sliding_window, layer_types
    }

    /// `rope_scaling` (or transformers 5's `rope_parameters`): its type and the fields Emerald reads.
    struct RopeJSON: Decodable {
        var rope_type: String?, type: String?, rope_theta: Float?
        var factor: Float?, low_freq_factor: Float?, high_freq_factor: Float?, original_max_position_embeddings: Int?
    }

    /// Reads Emerald's config.json or a Hugging Face one (`model_type` llama, qwen2 or mistral).
    /// Options Emerald's Llama would not compute exactly are errors naming the option.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let heads = try c.required(Int.self, .num_attention_heads)
        self.init(vocabSize: try c.required(Int.self, .vocab_size), hiddenSize: try c.required(Int.self, .hidden_size),
                  intermediateSize: try c.required(Int.self, .intermediate_size),
                  numHiddenLayers: try c.required(Int.self, .num_hidden_layers), numAttentionHeads: heads,
                  numKeyValueHeads: try c.optional(Int?.self, .num_key_value_heads, nil),
                  maxPositionEmbeddings: try c.optional(Int.self, .max_position_embeddings, 2048),
                  headDim: try c.optional(Int?.self, .head_dim, nil))
        let type = try c.optional(String.self, .model_type, Self.modelType)
        rmsNormEps = try c.optional(Float.self, .rms_norm_eps, 1e-6)
        tieWordEmbeddings = try c.optional(Bool.self, .tie_word_embeddings, false)
        mlpBias = try c.optional(Bool.self, .mlp_bias, false)
        attentionDropout = try c.optional(Float.self, .attention_dropout, 0)
        residualDropout = try c.optional(Float.self, .residual_dropout, 0)
        initializerRange = try c.optional(Float.self, .initializer_range, 0.02)
        switch type {
        case "qwen2":  // q/k/v biases always, no o bias; sliding-window layers unsupported
            qkvBias = true
            guard !(try c.optional(Bool.self, .use_sliding_window, false)) else {
                throw ConfigDecoding.Problem(reason: "use_sliding_window true is not supported (Emerald attends to the whole context)")
            }
        case "mistral":
            if let w = try c.optional(Int?.self, .sliding_window, nil), w < maxPositionEmbeddings {
                throw ConfigDecoding.Problem(reason: "sliding_window \(w) (shorter than max_position_embeddings \(maxPositionEmbeddings)) is not supported")
            }
            attentionBias = try c.optional(Bool.self, .attention_bias, false)
        default:
            attentionBias = try c.optional(Bool.self, .attention_bias, false)
            qkvBias = try c.optional(Bool.self, .qkv_bias, false)
        }
        if let layers = try c.optional([String]?.self, .layer_types, nil), let other = layers.first(where: { $0 != "full_attention" }) {
            throw ConfigDecoding.Problem(reason: "layer_types \"\(other)\" is not supported (only full_attention)")
        }
        let act = try c.optional(String.self, .hidden_act, "silu")
        guard act == "silu" else { throw ConfigDecoding.Problem(reason: "hidden_act \"\(act)\" is not supported (Llama's MLP is SwiGLU: silu)") }
        // RoPE: transformers 4's rope_theta + rope_scaling, or transformers 5's rope_parameters.
        var rope: RopeJSON?
        if c.contains(.rope_parameters), (try? c.decodeNil(forKey: .rope_parameters)) == false {
            let r = try? c.decode(RopeJSON.self, forKey: .rope_parameters)
            guard let r, r.rope_type != nil || r.type != nil || r.rope_theta != nil else {
                throw ConfigDecoding.Problem(reason: "rope_parameters must be one object of rope_type and rope_theta (per-layer-type RoPE is not supported)")
            }
            rope = r
        }
        ropeTheta = try rope?.rope_theta ?? c.optional(Float.self, .rope_theta, 10_000)
        if rope == nil, c.contains(.rope_scaling), (try? c.decodeNil(forKey: .rope_scaling)) == false {
            do { rope = try c.decode(RopeJSON.self, forKey: .rope_scaling) } catch {
                throw ConfigDecoding.Problem(reason: "rope_scaling must be an object or null")
            }
        }
        if let rope {
            switch rope.rope_type ?? rope.type ?? "default" {
            case "default": break
            case "llama3":
                guard let f = rope.factor, let lo = rope.low_freq_factor, let hi = rope.high_freq_factor,
                      let n = rope.original_max_position_embeddings else {
                    throw ConfigDecoding.Problem(reason: "rope_scaling of type llama3 needs factor, low_freq_factor, high_freq_factor and original_max_position_embeddings")
                }
                ropeScaling = RotaryEmbedding.Llama3Scaling(factor: f, lowFrequencyFactor: lo, highFrequencyFactor: hi, originalContext: n)
            case let other:
                throw ConfigDecoding.Problem(reason: "rope_scaling type \"\(other)\" is not supported (Emerald supports llama3 scaling or none)")
            }
        }
    }

    /// Writes every field under Hugging Face's names (floats in their shortest decimal form),
    /// with RoPE as `rope_theta` + `rope_scaling`, which transformers 4 and 5 both read.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(vocabSize, forKey: .vocab_size); try c.encode(hiddenSize, forKey: .hidden_size)
        try c.encode(intermediateSize, forKey: .intermediate_size); try c.encode(numHiddenLayers, forKey: .num_hidden_layers)
        try c.encode(numAttentionHeads, forKey: .num_attention_heads); try c.encode(numKeyValueHeads, forKey: .num_key_value_heads)
        try c.encode(maxPositionEmbeddings, forKey: .max_position_embeddings); try c.encode(headDim, forKey: .head_dim)
        try c.encode(rmsNormEps.decimalDouble, forKey: .rms_norm_eps); try c.encode(ropeTheta.decimalDouble, forKey: .rope_theta)
        if let s = ropeScaling {
            var nested = c.nestedContainer(keyedBy: ScalingKeys.self, forKey: .rope_scaling)
            try nested.encode("llama3", forKey: .rope_type); try nested.encode(s.factor.decimalDouble, forKey: .factor)
            try nested.encode(s.lowFrequencyFactor.decimalDouble, forKey: .low_freq_factor)
            try nested.encode(s.highFrequencyFactor.decimalDouble, forKey: .high_freq_factor)
            try nested.encode(s.originalContext, forKey: .original_max_position_embeddings)
        } else {
            try c.encodeNil(forKey: .rope_scaling)
        }
        try c.encode(tieWordEmbeddings, forKey: .tie_word_embeddings); try c.encode(attentionBias, forKey: .attention_bias)
        try c.encode(qkvBias, forKey: .qkv_bias); try c.encode(mlpBias, forKey: .mlp_bias)
        try c.encode(attentionDropout.decimalDouble, forKey: .attention_dropout)
        try c.encode(residualDropout.decimalDouble, forKey: .residual_dropout)
        try c.encode(initializerRange.decimalDouble, forKey: .initializer_range); try c.encode("silu", forKey: .hidden_act)
    }

    enum ScalingKeys: String, CodingKey { case rope_type, factor, low_freq_factor, high_freq_factor, original_max_position_embeddings }

    /// V.
    public var vocabularySize: Int { vocabSize }
    /// `max_position_embeddings`.
    public var contextLength: Int? { maxPositionEmbeddings }

    /// A Llama with normal(0, initializer_range) weights.
    public func makeModel(rng: inout RandomGenerator) -> any LanguageModel { Llama(self, rng: &rng) }

    /// Weights per layer without biases, norms or the untied head: the least a file must hold.
    public var minimumParameterCount: Double {
        let c = Double(hiddenSize), q = Double(numAttentionHeads * headDim), kv = Double(numKeyValueHeads * headDim)
        return Double(numHiddenLayers) * (2 * c * q + 2 * c * kv + 3 * c * Double(intermediateSize)) + Double(vocabSize) * c
    }

    /// Every weight: embeddings, projections, biases, norms, and an untied head.
    public var parameterCount: Double {
        let c = Double(hiddenSize), q = Double(numAttentionHeads * headDim), kv = Double(numKeyValueHeads * headDim)
        let i = Double(intermediateSize)
        var layer = 2 * c * q + 2 * c * kv + 3 * c * i + 2 * c
        if attentionBias || qkvBias { layer += q + 2 * kv }
        if attentionBias { layer += c }
        if mlpBias { layer += 2 * i + c }
        return minimumParameterCount - Double(numHiddenLayers) * (2 * c * q + 2 * c * kv + 3 * c * i)
            + Double(numHiddenLayers) * layer + c + (tieWordEmbeddings ? 0 : Double(vocabSize) * c)
    }

    /// Per layer about 8·C + 4·q + 5·I + 2·H·T floats (norms, q/k/v and their rotations, the
    /// attention output, gate/up/SwiGLU, residuals, probabilities), and the logits with their
    /// softmax and gradient (3·V).
    public func activationFloatsPerToken(blockSize t: Int) -> Double {
        let q = Double(numAttentionHeads * headDim)
        return Double(numHiddenLayers) * (8 * Double(hiddenSize) + 4 * q + 5 * Double(intermediateSize)
            + 2 * Double(numAttentionHeads) * Double(t)) + 3 * Double(vocabSize)
    }

    /// Keys and values of every layer for the whole context.
    public var cacheFloats: Double {
        2 * Double(numHiddenLayers) * Double(maxPositionEmbeddings) * Double(numKeyValueHeads * headDim)
    }

    /// `Recipe.gpt` at this context.
    public var trainingRecipe: TrainConfig {
        var c = Recipe.gpt
        c.blockSize = maxPositionEmbeddings
        return c
    }

    /// Layers, heads, width, MLP, context.
    public var summary: String {
        let kv = numKeyValueHeads == numAttentionHeads ? "" : " (\(numKeyValueHeads) key/value)"
        return "\(numHiddenLayers) layers, \(numAttentionHeads) heads\(kv), \(hiddenSize) wide, MLP \(intermediateSize), "
            + "context \(maxPositionEmbeddings), RMSNorm, SwiGLU, RoPE θ \(ropeTheta.decimalDouble)"
            + (ropeScaling == nil ? "" : " (llama3 scaling)")
    }
}

extension ModelConfig {
    /// A Llama-family model's configuration.
    public static func llama(_ config: LlamaConfig) -> ModelConfig { ModelConfig(config) }
}
