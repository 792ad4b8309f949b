/// Text ⇄ token ids. Char-level today; byte-level BPE plugs in here.
public protocol Tokenizer: Sendable {
    /// Number of distinct ids.
    var vocabularySize: Int { get }
    /// Ids for `text`; throws on text the vocabulary cannot represent.
    func encode(_ text: String) throws -> [Int32]
    /// Text for `ids`.
    func decode(_ ids: [Int32]) -> String
    /// A JSON-serialisable description, saved in checkpoints as `tokenizer.json`.
    func serialized() throws -> [String: Any]
}

/// Loads a tokenizer from its `tokenizer.json` form.
public func loadTokenizer(json: [String: Any], path: String) throws -> any Tokenizer {
    switch json["type"] as? String {
    case "char": return try CharTokenizer(json: json, path: path)
    case let t: throw EmeraldError.corruptCheckpoint(path: path, reason: "unknown tokenizer type \(t ?? "nil")")
    }
}
