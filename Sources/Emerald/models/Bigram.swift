/// Hyperparameters of the bigram model.
public struct BigramConfig: Equatable, Sendable, ModelConfiguration {
    /// V.
    public var vocabSize: Int
    /// A V×V model.
    public init(vocabSize: Int) { self.vocabSize = vocabSize }

    /// "bigram".
    public static let modelType = "bigram"
    enum CodingKeys: String, CodingKey { case vocab_size }
    /// Reads `vocab_size`.
    public init(from decoder: Decoder) throws {
        vocabSize = try decoder.container(keyedBy: CodingKeys.self).required(Int.self, .vocab_size)
    }
    /// Writes `vocab_size`.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(vocabSize, forKey: .vocab_size)
    }
    /// V in 1...2^16 (the table is V²).
    public func validate() throws {
        try require(vocabSize > 0 && vocabSize <= 1 << 16, field: "vocab_size", "must be in 1...\(1 << 16), got \(vocabSize)")
    }
    /// V.
    public var vocabularySize: Int { vocabSize }
    /// Only the last token matters.
    public var contextLength: Int? { 1 }
    /// A table initialised N(0, 1).
    public func makeModel(rng: inout RandomGenerator) -> any LanguageModel { BigramLanguageModel(self, rng: &rng) }
    /// V².
    public var minimumParameterCount: Double { Double(vocabSize) * Double(vocabSize) }
    /// V².
    public var parameterCount: Double { minimumParameterCount }
    /// The logits, their softmax and gradient.
    public func activationFloatsPerToken(blockSize: Int) -> Double { 3 * Double(vocabSize) }
    /// `Recipe.bigram`.
    public var trainingRecipe: TrainConfig { Recipe.bigram }
}

extension ModelConfig {
    /// The bigram table's configuration.
    public static func bigram(_ config: BigramConfig) -> ModelConfig { ModelConfig(config) }
}

/// The guide's first model: each token looks up the logits of the next one
/// in a V×V table, ignoring everything before it.
public final class BigramLanguageModel: Module, LanguageModel {
    /// (V, V): row i holds the next-token logits after token i.
    public let token_embedding_table: Embedding
    private let cfg: BigramConfig

    /// A table initialised N(0, 1), as `nn.Embedding` does.
    public init(_ config: BigramConfig, rng: inout RandomGenerator) {
        cfg = config
        token_embedding_table = Embedding(config.vocabSize, config.vocabSize, std: 1, rng: &rng)
    }

    /// `.bigram`.
    public var config: ModelConfig { .bigram(cfg) }
    /// Only the last token matters.
    public var contextLength: Int? { 1 }

    /// Table rows for each input id: (B·T, V), or (B, V) for each sequence's last id.
    /// The table needs no cache: the last id is all it reads.
    public func callAsFunction(_ ids: [Int32], batch: Int, time: Int, cache: KVCache?, lastOnly: Bool,
                               rng: inout RandomGenerator) -> Tensor {
        if lastOnly {
            return token_embedding_table((0..<batch).map { ids[$0 * time + time - 1] }, shape: [batch])
        }
        return token_embedding_table(ids, shape: [batch * time])
    }

    /// None: the table reads only the last id.
    public func makeCache(capacity: Int?) -> KVCache? { nil }
}
