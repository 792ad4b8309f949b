import Foundation

/// Text ⇄ token ids: `CharTokenizer` (the guide's), `ByteLevelBPETokenizer` (GPT-2's) or
/// `HuggingFaceBPETokenizer` (Llama 2/3, Qwen2, SmolLM2 tokenizer.json files).
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
/// or a Hugging Face tokenizer.json (it has a `"model"` section): GPT-2's form (a lone `ByteLevel`
/// pre-tokenizer, no normalizer) gives a `ByteLevelBPETokenizer`, other BPE forms (Llama 3, Qwen2,
/// SmolLM2, Llama 2 / TinyLlama) a `HuggingFaceBPETokenizer`.
public func loadTokenizer(json: [String: Any], path: String) throws -> any Tokenizer {
    if let model = json["model"] as? [String: Any], !(json["type"] is String) {
        if model["type"] as? String == "WordLevel" { return try CharTokenizer(huggingFaceJSON: json, path: path) }
        if ByteLevelBPETokenizer.isGPT2Style(json) { return try ByteLevelBPETokenizer(tokenizerJSON: json, path: path) }
        return try HuggingFaceBPETokenizer(tokenizerJSON: json, path: path)
    }
    switch json["type"] as? String {
    case "char": return try CharTokenizer(json: json, path: path)
    case let t: throw EmeraldError.corruptCheckpoint(path: path, reason: "unknown tokenizer type \(t ?? "nil")")
    }
}

/// The one resolver of `--tokenizer` values, for every command: `gpt2` (GPT-2's tokenizer,
/// compiled into the binary), a tokenizer.json (Emerald's or Hugging Face's), a folder holding
/// one (a checkpoint, a training run's best/ or checkpoint/, a prepared corpus), or a folder
/// with `encoder.json` + `vocab.bpe` (or `vocab.json` + `merges.txt`).
public func loadTokenizer(spec: String) throws -> any Tokenizer {
    let fm = FileManager.default
    if spec == "gpt2" && !fm.fileExists(atPath: spec) { return try ByteLevelBPETokenizer.gpt2() }
    var path = spec
    var isDir: ObjCBool = false
    if fm.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
        for sub in ["", "/best", "/checkpoint"] where fm.fileExists(atPath: path + sub + "/tokenizer.json") {
            path = path + sub + "/tokenizer.json"
            break
        }
    }
    if path.hasSuffix(".json"), (try? requireRegularFile(path, limit: AtomicFile.maxJSONBytes)) != nil, let data = fm.contents(atPath: path),
       let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any], json["type"] is String {
        return try loadTokenizer(json: json, path: path)  // Emerald's char tokenizer
    }
    if path.hasSuffix(".json"), (try? requireRegularFile(path, limit: AtomicFile.maxJSONBytes)) != nil, let data = fm.contents(atPath: path),
       let json = try? JSONSerialization.jsonObject(with: HuggingFaceBPETokenizer.escapingByteOrderMarks(data)) as? [String: Any],
       json["model"] is [String: Any],
       !ByteLevelBPETokenizer.isGPT2Style(json) {
        return try loadTokenizer(json: json, path: path)  // Llama-style tokenizer.json
    }
    return try ByteLevelBPETokenizer.load(path: path)
}
