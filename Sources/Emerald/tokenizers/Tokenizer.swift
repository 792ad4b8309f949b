/// Text ⇄ token ids: `CharTokenizer` (the guide's) or `ByteLevelBPETokenizer` (GPT-2's).
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

/// Loads a tokenizer from its `tokenizer.json` form: Emerald's `{"type": "char", …}`,
/// or a Hugging Face tokenizer.json (it has a `"model"` section) for byte-level BPE.
public func loadTokenizer(json: [String: Any], path: String) throws -> any Tokenizer {
    if let model = json["model"] as? [String: Any], !(json["type"] is String) {
        if model["type"] as? String == "WordLevel" { return try CharTokenizer(huggingFaceJSON: json, path: path) }
        return try ByteLevelBPETokenizer(tokenizerJSON: json, path: path)
    }
    switch json["type"] as? String {
    case "char": return try CharTokenizer(json: json, path: path)
    case let t: throw EmeraldError.corruptCheckpoint(path: path, reason: "unknown tokenizer type \(t ?? "nil")")
    }
}
