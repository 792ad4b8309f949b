import Foundation

/// A model family's hyperparameters: a Codable value saved as Emerald's `config.json`,
/// which builds the family's model. Families are registered by name in `ModelRegistry`;
/// nothing else in Emerald lists them.
public protocol ModelConfiguration: Codable, Sendable {
    /// `model_type` in config.json ("gpt", "bigram").
    static var modelType: String { get }
    /// Tokens in the vocabulary.
    var vocabularySize: Int { get }
    /// Longest context the model reads; nil when unbounded.
    var contextLength: Int? { get }
    /// Throws `invalidSetting` naming the field of a value the model cannot be built with.
    func validate() throws
    /// A freshly initialised model.
    func makeModel(rng: inout RandomGenerator) -> any LanguageModel
    /// The fewest parameters a model of this config holds: checked against a weights file's
    /// size before anything is allocated.
    var minimumParameterCount: Double { get }
    /// Parameters (float32 weights) of the model.
    var parameterCount: Double { get }
    /// Floats of activations one training token keeps for backward at context `blockSize`.
    func activationFloatsPerToken(blockSize: Int) -> Double
    /// Floats of a key/value cache for the whole context (0 without one).
    var cacheFloats: Double { get }
    /// The training recipe for this family (`Recipe`), its block size the model's context.
    var trainingRecipe: TrainConfig { get }
    /// A short description of the shape for logs ("4 layers, 4 heads, 128 wide").
    var summary: String { get }
}

extension ModelConfiguration {
    /// No cache.
    public var cacheFloats: Double { 0 }
    /// Nothing beyond the model type.
    public var summary: String { "" }
}

/// Which model a checkpoint holds, and its hyperparameters: one family's configuration.
public struct ModelConfig: Sendable, Equatable, CustomStringConvertible {
    /// The family's configuration value.
    public let family: any ModelConfiguration

    /// Wraps a family's configuration.
    public init(_ family: any ModelConfiguration) { self.family = family }

    /// `model_type` in config.json.
    public var modelType: String { type(of: family).modelType }
    /// Vocabulary size.
    public var vocabularySize: Int { family.vocabularySize }

    /// The configuration as `T`, when it is one.
    public func `as`<T: ModelConfiguration>(_ type: T.Type) -> T? { family as? T }

    /// A freshly initialised model, its weights drawn from `seed`.
    public func makeModel(seed: UInt64) -> any LanguageModel {
        var rng = RandomGenerator(seed: seed)
        return family.makeModel(rng: &rng)
    }

    /// config.json's bytes: the family's fields plus `model_type`, keys sorted.
    public func jsonData() throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try enc.encode(Tagged(config: self))
    }

    /// Reads config.json: its `model_type` picks the family from `ModelRegistry`.
    public init(jsonData data: Data, path: String) throws {
        func bad(_ r: String) -> EmeraldError { .corruptCheckpoint(path: path, reason: r) }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw bad("config.json is not a JSON object")
        }
        guard let type = object["model_type"] as? String else { throw bad("config.json has no \"model_type\"") }
        guard let family = ModelRegistry.family(type) else {
            throw bad("unknown model_type \"\(type)\" (Emerald knows \(ModelRegistry.familyNames.joined(separator: ", ")))")
        }
        let config: any ModelConfiguration
        do { config = try JSONDecoder().decode(family, from: data) } catch { throw bad(ConfigDecoding.describe(error)) }
        do { try config.validate() } catch let e as EmeraldError { throw bad(e.description) }
        self.init(config)
    }

    /// Same family and the same fields.
    public static func == (a: ModelConfig, b: ModelConfig) -> Bool {
        (try? a.jsonData()) == (try? b.jsonData())
    }

    /// The config as JSON on one line.
    public var description: String {
        (try? jsonData()).flatMap { String(data: $0, encoding: .utf8) }?.split(separator: "\n")
            .map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ") ?? modelType
    }

    /// `model_type` written next to the family's own fields.
    private struct Tagged: Encodable {
        let config: ModelConfig
        enum Key: CodingKey { case model_type }
        func encode(to encoder: Encoder) throws {
            try config.family.encode(to: encoder)
            var c = encoder.container(keyedBy: Key.self)
            try c.encode(config.modelType, forKey: .model_type)
        }
    }
}

/// The model families Emerald can build and load, by `model_type`. A new family is one
/// file with a `ModelConfiguration` and its model, plus one `register` call here (or by an
/// application at start-up).
public enum ModelRegistry {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var families: [String: any ModelConfiguration.Type] = [
        GPTConfig.modelType: GPTConfig.self,
        BigramConfig.modelType: BigramConfig.self,
        LlamaConfig.modelType: LlamaConfig.self,
    ]

    /// Makes `family` loadable by its `model_type`.
    public static func register(_ family: any ModelConfiguration.Type) {
        lock.withLock { families[family.modelType] = family }
    }

    /// The family of `modelType`, if registered.
    public static func family(_ modelType: String) -> (any ModelConfiguration.Type)? {
        lock.withLock { families[modelType] }
    }

    /// Registered `model_type`s, sorted.
    public static var familyNames: [String] { lock.withLock { families.keys.sorted() } }
}

/// Readable messages for config files decoded with `Codable`.
enum ConfigDecoding {
    /// One problem in a config file, already worded ("needs an integer \"n_layer\"").
    struct Problem: Error { let reason: String }

    /// The reason to show for a decoding failure: the field and what it must be.
    static func describe(_ error: Error) -> String {
        switch error {
        case let p as Problem: return p.reason
        case let e as EmeraldError: return e.description
        case DecodingError.keyNotFound(let key, _): return "config.json needs \"\(key.stringValue)\""
        case DecodingError.typeMismatch(let type, let ctx), DecodingError.valueNotFound(let type, let ctx):
            return "\"\(ctx.codingPath.map(\.stringValue).joined(separator: "."))\" must be \(kind(type))"
        case DecodingError.dataCorrupted(let ctx):
            let field = ctx.codingPath.map(\.stringValue).joined(separator: ".")
            return field.isEmpty ? "config.json is not valid JSON" : "\"\(field)\" is not a valid value"
        default: return "config.json cannot be read"
        }
    }

    static func kind(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: return "an integer"
        case is Bool.Type: return "true or false"
        case is Float.Type, is Double.Type: return "a number"
        case is String.Type: return "a string"
        default: return "\(type)"
        }
    }
}

extension KeyedDecodingContainer {
    /// The value at `key`, or a `ConfigDecoding.Problem` saying the file needs one.
    func required<T: Decodable>(_ type: T.Type, _ key: Key) throws -> T {
        guard let v = try? decodeIfPresent(type, forKey: key) else {
            throw ConfigDecoding.Problem(reason: "config.json needs \(ConfigDecoding.kind(type)) \"\(key.stringValue)\"")
        }
        return v
    }

    /// The value at `key` (null counts as absent), or `fallback`; a value of the wrong type is
    /// a `ConfigDecoding.Problem` naming the key.
    func optional<T: Decodable>(_ type: T.Type, _ key: Key, _ fallback: T) throws -> T {
        do { return try decodeIfPresent(type, forKey: key) ?? fallback } catch {
            throw ConfigDecoding.Problem(reason: "\"\(key.stringValue)\" must be \(ConfigDecoding.kind(type))")
        }
    }
}
