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

    /// config.json fields (Hugging Face GPT-2 names where they exist).
    public func json() -> [String: Any] {
        ["model_type": "gpt", "vocab_size": vocabSize, "n_positions": blockSize, "n_layer": nLayer,
         "n_head": nHead, "n_embd": nEmbd, "dropout": dropout.decimalDouble, "bias": bias,
         "activation": activation.rawValue, "norm": norm.rawValue, "tie_word_embeddings": tieWeights,
         "layer_norm_epsilon": layerNormEpsilon.decimalDouble]
    }

    /// Parses `json()`'s output.
    public init(json: [String: Any], path: String) throws {
        func int(_ k: String) throws -> Int {
            guard let v = json[k] as? Int else {
                throw EmeraldError.corruptCheckpoint(path: path, reason: "config.json needs an integer \"\(k)\"")
            }
            return v
        }
        self.init(vocabSize: try int("vocab_size"), blockSize: try int("n_positions"), nLayer: try int("n_layer"),
                  nHead: try int("n_head"), nEmbd: try int("n_embd"))
        dropout = Float(json["dropout"] as? Double ?? 0)
        bias = json["bias"] as? Bool ?? true
        tieWeights = json["tie_word_embeddings"] as? Bool ?? true
        layerNormEpsilon = Float(json["layer_norm_epsilon"] as? Double ?? 1e-5)
        if let a = json["activation"] as? String {
            guard let act = Activation(rawValue: a) else { throw EmeraldError.corruptCheckpoint(path: path, reason: "unknown activation \(a)") }
            activation = act
        }
        if let n = json["norm"] as? String {
            guard let p = NormPlacement(rawValue: n) else { throw EmeraldError.corruptCheckpoint(path: path, reason: "unknown norm \(n)") }
            norm = p
        }
        do { try validate() } catch let e as EmeraldError {
            throw EmeraldError.corruptCheckpoint(path: path, reason: e.description)
        }
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
