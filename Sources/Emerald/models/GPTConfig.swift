/// Where LayerNorm sits in a block.
public enum NormPlacement: String, Codable, Sendable, CaseIterable {
    /// x + f(LN(x)) — GPT-2, trains deep stacks stably.
    case pre
    /// LN(x + f(x)) — the guide's (and the original Transformer's) block.
    case post
}

/// GPT hyperparameters (nanoGPT's GPTConfig).
public struct GPTConfig: Equatable, Sendable {
    /// Tokens in the vocabulary (V).
    public var vocabSize: Int
    /// Longest context, the size of the position table.
    public var blockSize: Int
    /// Transformer blocks.
    public var nLayer: Int
    /// Attention heads per block.
    public var nHead: Int
    /// Width (C).
    public var nEmbd: Int
    /// Dropout on embeddings, attention output and MLP output while training.
    public var dropout: Float = 0
    /// Biases in Linear layers and LayerNorms.
    public var bias = true
    /// MLP activation.
    public var activation: Activation = .gelu
    /// Pre- or post-LN blocks.
    public var norm: NormPlacement = .pre
    /// LM head shares the token embedding matrix.
    public var tieWeights = true
    /// LayerNorm epsilon.
    public var layerNormEpsilon: Float = 1e-5

    /// A config; unspecified options take GPT-2's choices.
    public init(vocabSize: Int, blockSize: Int, nLayer: Int, nHead: Int, nEmbd: Int, dropout: Float = 0,
                bias: Bool = true, activation: Activation = .gelu, norm: NormPlacement = .pre,
                tieWeights: Bool = true, layerNormEpsilon: Float = 1e-5) {
        self.vocabSize = vocabSize; self.blockSize = blockSize; self.nLayer = nLayer; self.nHead = nHead
        self.nEmbd = nEmbd; self.dropout = dropout; self.bias = bias; self.activation = activation
        self.norm = norm; self.tieWeights = tieWeights; self.layerNormEpsilon = layerNormEpsilon
    }

    /// Named presets; the vocabulary comes from the tokenizer.
    public static func preset(_ name: String, vocabSize: Int) throws -> GPTConfig {
        switch name {
        case "oz":  // the book on 2 cores in minutes
            return GPTConfig(vocabSize: vocabSize, blockSize: 128, nLayer: 4, nHead: 4, nEmbd: 128, dropout: 0.1)
        case "baby":  // the guide's/Karpathy's "baby GPT"
            return GPTConfig(vocabSize: vocabSize, blockSize: 256, nLayer: 6, nHead: 6, nEmbd: 384, dropout: 0.2)
        case "gpt2":
            return GPTConfig(vocabSize: vocabSize, blockSize: 1024, nLayer: 12, nHead: 12, nEmbd: 768)
        case "gpt2-medium":
            return GPTConfig(vocabSize: vocabSize, blockSize: 1024, nLayer: 24, nHead: 16, nEmbd: 1024)
        default:
            throw EmeraldError.invalidArgument("unknown preset \"\(name)\"; choose one of \(presetNames.joined(separator: ", "))")
        }
    }

    /// Names accepted by `preset`.
    public static let presetNames = ["oz", "baby", "gpt2", "gpt2-medium"]

    /// Rejects shapes the model cannot be built with.
    public func validate() throws {
        // Upper bounds far past any model a machine can hold: they keep products of sizes
        // (parameter counts, buffer lengths) from overflowing before the memory estimate.
        try require(vocabSize > 0 && vocabSize <= 1 << 24, field: "vocab_size", "must be in 1...\(1 << 24), got \(vocabSize)")
        try require(blockSize > 0 && blockSize <= 1 << 20, field: "block_size", "must be in 1...\(1 << 20), got \(blockSize)")
        try require(nLayer > 0 && nLayer <= 4096, field: "n_layer", "must be in 1...4096, got \(nLayer)")
        try require(nHead > 0 && nHead <= 4096, field: "n_head", "must be in 1...4096, got \(nHead)")
        try require(nEmbd > 0 && nEmbd <= 1 << 17, field: "n_embd", "must be in 1...\(1 << 17), got \(nEmbd)")
        try require(nEmbd % nHead == 0, field: "n_embd", "\(nEmbd) is not divisible by n_head \(nHead)")
        try require(dropout >= 0 && dropout < 1, field: "dropout", "must be in [0, 1), got \(dropout)")
        try require(layerNormEpsilon > 0, field: "layer_norm_epsilon", "must be positive")
    }

    /// Forward FLOPs per token, excluding attention: 2·(non-embedding params + V·C).
    public var matmulFlopsPerToken: Double {
        let c = Double(nEmbd)
        return 2 * (Double(nLayer) * 12 * c * c + Double(vocabSize) * c)
    }

    /// Training FLOPs per token (forward + backward ≈ 3× forward), attention included (PaLM appendix B).
    public func trainingFlopsPerToken(contextLength t: Int) -> Double {
        3 * (matmulFlopsPerToken + 2 * Double(nLayer) * Double(t) * Double(nEmbd))
    }
}

/// config.json: Hugging Face GPT-2's names where they exist.
extension GPTConfig: ModelConfiguration {
    /// "gpt".
    public static let modelType = "gpt"

    enum CodingKeys: String, CodingKey {
        case vocab_size, n_positions, n_layer, n_head, n_embd, dropout, bias, activation, norm
        case tie_word_embeddings, layer_norm_epsilon
    }

    /// Reads config.json; absent options take GPT-2's choices.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(vocabSize: try c.required(Int.self, .vocab_size), blockSize: try c.required(Int.self, .n_positions),
                  nLayer: try c.required(Int.self, .n_layer), nHead: try c.required(Int.self, .n_head),
                  nEmbd: try c.required(Int.self, .n_embd))
        dropout = try c.optional(Float.self, .dropout, 0)
        bias = try c.optional(Bool.self, .bias, true)
        tieWeights = try c.optional(Bool.self, .tie_word_embeddings, true)
        layerNormEpsilon = try c.optional(Float.self, .layer_norm_epsilon, 1e-5)
        let act = try c.optional(String.self, .activation, Activation.gelu.rawValue)
        guard let a = Activation(rawValue: act) else { throw ConfigDecoding.Problem(reason: "unknown activation \(act)") }
        activation = a
        let n = try c.optional(String.self, .norm, NormPlacement.pre.rawValue)
        guard let placement = NormPlacement(rawValue: n) else { throw ConfigDecoding.Problem(reason: "unknown norm \(n)") }
        norm = placement
    }

    /// Writes every field (floats in their shortest decimal form).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(vocabSize, forKey: .vocab_size); try c.encode(blockSize, forKey: .n_positions)
        try c.encode(nLayer, forKey: .n_layer); try c.encode(nHead, forKey: .n_head); try c.encode(nEmbd, forKey: .n_embd)
        try c.encode(dropout.decimalDouble, forKey: .dropout); try c.encode(bias, forKey: .bias)
        try c.encode(activation.rawValue, forKey: .activation); try c.encode(norm.rawValue, forKey: .norm)
        try c.encode(tieWeights, forKey: .tie_word_embeddings)
        try c.encode(layerNormEpsilon.decimalDouble, forKey: .layer_norm_epsilon)
    }

    /// V.
    public var vocabularySize: Int { vocabSize }
    /// The position table's length.
    public var contextLength: Int? { blockSize }

    /// A GPT with GPT-2's initialisation.
    public func makeModel(rng: inout RandomGenerator) -> any LanguageModel { GPT(self, rng: &rng) }

    /// 12·L·C² + (V + T)·C.
    public var minimumParameterCount: Double {
        let w = Double(nEmbd)
        return 12 * Double(nLayer) * w * w + (Double(vocabSize) + Double(blockSize)) * w
    }

    /// Blocks (with biases and LayerNorms), embeddings, and an untied head.
    public var parameterCount: Double {
        let w = Double(nEmbd), v = Double(vocabSize), t = Double(blockSize), l = Double(nLayer)
        return 12 * l * w * w + 13 * l * w + (v + t) * w + (tieWeights ? 0 : v * w)
    }

    /// Per layer about 16·C + 2·H·T floats (q, k, v, attention output, the 4·C MLP both
    /// sides, LayerNorms, residuals, the attention probabilities), and the logits with their
    /// softmax and gradient (3·V).
    public func activationFloatsPerToken(blockSize t: Int) -> Double {
        Double(nLayer) * (16 * Double(nEmbd) + 2 * Double(nHead) * Double(t)) + 3 * Double(vocabSize)
    }

    /// Keys and values of every layer for the whole context.
    public var cacheFloats: Double { 2 * Double(nLayer) * Double(blockSize) * Double(nEmbd) }

    /// `Recipe.gpt` at this context.
    public var trainingRecipe: TrainConfig {
        var c = Recipe.gpt
        c.blockSize = blockSize
        return c
    }

    /// Layers, heads, width, block, LayerNorm placement, activation.
    public var summary: String {
        "\(nLayer) layers, \(nHead) heads, \(nEmbd) wide, block \(blockSize), \(norm.rawValue)-LN, \(activation.rawValue)"
    }
}

extension ModelConfig {
    /// A GPT's configuration.
    public static func gpt(_ config: GPTConfig) -> ModelConfig { ModelConfig(config) }
}
