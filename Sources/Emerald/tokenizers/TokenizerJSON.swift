import Foundation

/// Reading and writing byte-level BPE tokenizers in the three common file forms:
/// - GPT-2's `encoder.json` + `vocab.bpe` (OpenAI's release);
/// - Hugging Face's `vocab.json` + `merges.txt` (the same content, other names);
/// - Hugging Face's `tokenizer.json` with a `BPE` model, a `ByteLevel`
///   pre-tokenizer (`add_prefix_space: false`, `use_regex: true`), no normalizer,
///   and a `ByteLevel` decoder. Other tokenizer types (WordPiece, Unigram,
///   SentencePiece-style BPE, …) are rejected with `EmeraldError.invalidTokenizer`.
extension ByteLevelBPETokenizer {
    // MARK: - tokenizer.json

    /// The tokenizer as Hugging Face `tokenizer.json` content, which
    /// `tokenizers.Tokenizer.from_file` loads and encodes identically.
    /// Special tokens are written as added tokens (and kept in the vocabulary, like GPT-2's).
    public func tokenizerJSON() -> [String: Any] {
        let special = specialContent
        var vocab: [String: Int] = [:]
        var keyOf = [String](repeating: "", count: vocabularySize)
        for id in 0..<vocabularySize {
            guard let bytes = tokenBytes(Int32(id)) else { continue }
            let key = special[Int32(id)] ?? ByteLevel.encode(bytes)
            vocab[key] = id
            keyOf[id] = key
        }
        let anySpace = merges.contains { keyOf[Int($0.left)].contains(" ") || keyOf[Int($0.right)].contains(" ") }
        let mergeList: [Any] = merges.map {
            anySpace ? [keyOf[Int($0.left)], keyOf[Int($0.right)]] as Any : (keyOf[Int($0.left)] + " " + keyOf[Int($0.right)]) as Any
        }
        let added: [[String: Any]] = specialTokens.sorted { $0.value < $1.value }.map {
            ["id": Int($0.value), "content": $0.key, "single_word": false, "lstrip": false, "rstrip": false,
             "normalized": false, "special": true]
        }
        let byteLevel: (Bool, Bool) -> [String: Any] = { prefix, trim in
            ["type": "ByteLevel", "add_prefix_space": prefix, "trim_offsets": trim, "use_regex": true]
        }
        return [
            "version": "1.0",
            "truncation": NSNull(),
            "padding": NSNull(),
            "added_tokens": added,
            "normalizer": NSNull(),
            "pre_tokenizer": byteLevel(false, true),
            "post_processor": byteLevel(true, false),
            "decoder": byteLevel(true, true),
            "model": [
                "type": "BPE",
                "dropout": NSNull(),
                "unk_token": NSNull(),
                "continuing_subword_prefix": "",
                "end_of_word_suffix": "",
                "fuse_unk": false,
                "byte_fallback": false,
                "vocab": vocab,
                "merges": mergeList,
            ] as [String: Any],
        ]
    }

    /// Reads Hugging Face `tokenizer.json` content (see the type's notes for what is accepted).
    public init(tokenizerJSON json: [String: Any], path: String) throws {
        func fail(_ reason: String) -> EmeraldError { EmeraldError.invalidTokenizer(path: path, reason: reason) }
        guard let model = json["model"] as? [String: Any] else { throw fail("it has no \"model\" section") }
        let type = model["type"] as? String ?? (model["merges"] != nil ? "BPE" : nil)
        guard type == "BPE" else {
            throw fail("its model is \(type ?? "of no known type"); Emerald loads only byte-level BPE tokenizers (model BPE with a ByteLevel pre-tokenizer)")
        }
        func typeName(_ v: Any?) -> String? {
            if v == nil || v is NSNull { return nil }
            return (v as? [String: Any])?["type"] as? String ?? "unknown"
        }
        guard typeName(json["pre_tokenizer"]) == "ByteLevel", let pre = json["pre_tokenizer"] as? [String: Any] else {
            throw fail("its pre-tokenizer is \(typeName(json["pre_tokenizer"]) ?? "missing"), not ByteLevel; Emerald loads only byte-level BPE tokenizers")
        }
        if pre["add_prefix_space"] as? Bool == true { throw fail("ByteLevel add_prefix_space=true is not supported") }
        if pre["use_regex"] as? Bool == false { throw fail("ByteLevel use_regex=false is not supported (GPT-2's pattern is required)") }
        if let n = typeName(json["normalizer"]) { throw fail("normalizer \(n) is not supported") }
        if let d = typeName(json["decoder"]), d != "ByteLevel" { throw fail("decoder \(d) is not supported (expected ByteLevel)") }
        if let p = typeName(json["post_processor"]), p != "ByteLevel" && !Self.isIdentityTemplate(json["post_processor"]) {
            throw fail("post-processor \(p) is not supported (only ByteLevel, or a TemplateProcessing that adds no tokens)")
        }
        for k in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let s = model[k] as? String, !s.isEmpty { throw fail("BPE \(k) \(s.debugDescription) is not supported") }
        }
        if model["byte_fallback"] as? Bool == true { throw fail("BPE byte_fallback is not supported") }
        if model["ignore_merges"] as? Bool == true { throw fail("BPE ignore_merges is not supported") }
        if let d = model["dropout"] as? Double, d > 0 { throw fail("BPE dropout is not supported") }
        guard let rawVocab = model["vocab"] as? [String: Any] else { throw fail("model.vocab is missing or not an object") }
        var vocab: [String: Int] = [:]
        vocab.reserveCapacity(rawVocab.count)
        for (k, v) in rawVocab {
            guard let id = v as? Int else { throw fail("model.vocab[\(k.debugDescription)] is not an integer id") }
            vocab[k] = id
        }
        guard let rawMerges = model["merges"] as? [Any] else { throw fail("model.merges is missing or not a list") }
        var merges: [(String, String)] = []
        merges.reserveCapacity(rawMerges.count)
        for (i, m) in rawMerges.enumerated() {
            if let s = m as? String {
                let parts = s.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { throw fail("merge rule \(i + 1) \(s.debugDescription) is not two tokens separated by a space") }
                merges.append((String(parts[0]), String(parts[1])))
            } else if let pair = m as? [String], pair.count == 2 {
                merges.append((pair[0], pair[1]))
            } else {
                throw fail("merge rule \(i + 1) is neither \"a b\" nor [\"a\", \"b\"]")
            }
        }
        var specials: [String: Int] = [:]
        for t in json["added_tokens"] as? [[String: Any]] ?? [] {
            guard let content = t["content"] as? String, let id = t["id"] as? Int else { throw fail("an added token lacks content or id") }
            specials[content] = id
            if vocab[content] == nil { vocab[content] = id }
        }
        try self.init(vocabulary: vocab, merges: merges, specialTokens: specials, path: path)
    }

    /// Whether a tokenizer.json with a BPE model is in the form this type reads (GPT-2's: a lone
    /// ByteLevel pre-tokenizer, no normalizer, no byte fallback, no template tokens); other
    /// forms go to `HuggingFaceBPETokenizer`.
    static func isGPT2Style(_ json: [String: Any]) -> Bool {
        guard let model = json["model"] as? [String: Any], (model["type"] as? String ?? "BPE") == "BPE",
              let pre = json["pre_tokenizer"] as? [String: Any], pre["type"] as? String == "ByteLevel" else { return false }
        if pre["add_prefix_space"] as? Bool == true || pre["use_regex"] as? Bool == false { return false }
        if !(json["normalizer"] == nil || json["normalizer"] is NSNull) { return false }
        if model["byte_fallback"] as? Bool == true || model["ignore_merges"] as? Bool == true { return false }
        if let p = json["post_processor"] as? [String: Any], p["type"] as? String != "ByteLevel", !isIdentityTemplate(p) { return false }
        for t in json["added_tokens"] as? [[String: Any]] ?? [] {
            for flag in ["single_word", "lstrip", "rstrip"] where t[flag] as? Bool == true { return false }
        }
        return true
    }

    /// transformers 5 saves GPT-2 tokenizers with `TemplateProcessing` "single": [$A], no special
    /// tokens — a no-op for encoding, so it is accepted; templates that add tokens are not.
    static func isIdentityTemplate(_ v: Any?) -> Bool {
        guard let p = v as? [String: Any], p["type"] as? String == "TemplateProcessing",
              let single = p["single"] as? [[String: Any]], single.count == 1,
              let seq = single[0]["Sequence"] as? [String: Any], seq["id"] as? String == "A" else { return false }
        return (p["special_tokens"] as? [String: Any])?.isEmpty ?? true
    }

    // MARK: - Files

    /// Loads a tokenizer from `path`: a tokenizer.json, a vocabulary JSON
    /// (`encoder.json` / `vocab.json`, with `vocab.bpe` / `merges.txt` beside it),
    /// or a folder holding one of those sets (a checkpoint folder works too).
    public static func load(path: String) throws -> ByteLevelBPETokenizer {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDir) else { throw EmeraldError.fileNotFound(path) }
        if isDir.boolValue {
            let dir = path.hasSuffix("/") ? String(path.dropLast()) : path
            if fm.fileExists(atPath: dir + "/tokenizer.json") { return try load(path: dir + "/tokenizer.json") }
            for (v, m) in [("encoder.json", "vocab.bpe"), ("vocab.json", "merges.txt")]
            where fm.fileExists(atPath: dir + "/" + v) && fm.fileExists(atPath: dir + "/" + m) {
                return try load(vocabularyPath: dir + "/" + v, mergesPath: dir + "/" + m)
            }
            throw EmeraldError.invalidTokenizer(path: path, reason: "the folder has no tokenizer.json, encoder.json + vocab.bpe, or vocab.json + merges.txt")
        }
        let dir = parentFolder(path)
        if path.hasSuffix(".bpe") || path.hasSuffix(".txt") {
            for v in ["encoder.json", "vocab.json"] where fm.fileExists(atPath: dir + "/" + v) {
                return try load(vocabularyPath: dir + "/" + v, mergesPath: path)
            }
            throw EmeraldError.invalidTokenizer(path: path, reason: "no encoder.json or vocab.json beside this merges file")
        }
        let json = try readJSONObject(path)
        // (GPT-2's vocabulary has a token "model", so test the value's type.)
        if json["model"] is [String: Any] {
            guard isGPT2Style(json) else {
                throw EmeraldError.invalidTokenizer(path: path, reason: "not GPT-2's byte-level form (load it with loadTokenizer, which reads Llama-style tokenizer.json files)")
            }
            return try ByteLevelBPETokenizer(tokenizerJSON: json, path: path)
        }
        for m in ["vocab.bpe", "merges.txt"] where fm.fileExists(atPath: dir + "/" + m) {
            return try load(vocabulary: json, vocabularyPath: path, mergesPath: dir + "/" + m)
        }
        throw EmeraldError.invalidTokenizer(path: path, reason: "not a tokenizer.json (no \"model\"), and no vocab.bpe or merges.txt beside it")
    }

    /// Loads GPT-2's `encoder.json` + `vocab.bpe` (or Hugging Face's `vocab.json` + `merges.txt`).
    /// `<|endoftext|>`, when in the vocabulary, is the special token.
    public static func load(vocabularyPath: String, mergesPath: String) throws -> ByteLevelBPETokenizer {
        try load(vocabulary: readJSONObject(vocabularyPath), vocabularyPath: vocabularyPath, mergesPath: mergesPath)
    }

    private static func load(vocabulary json: [String: Any], vocabularyPath: String, mergesPath: String) throws -> ByteLevelBPETokenizer {
        try requireRegularFile(mergesPath, limit: AtomicFile.maxJSONBytes)
        guard let data = FileManager.default.contents(atPath: mergesPath) else { throw EmeraldError.fileNotFound(mergesPath) }
        return try load(vocabulary: json, vocabularyPath: vocabularyPath, merges: data, mergesPath: mergesPath)
    }

    /// GPT-2-style files given as bytes: `vocabulary` an `encoder.json` / `vocab.json`,
    /// `merges` a `vocab.bpe` / `merges.txt`; `name` is used in errors.
    public static func load(vocabularyJSON vocabulary: Data, merges: Data, name: String) throws -> ByteLevelBPETokenizer {
        guard let json = try? JSONSerialization.jsonObject(with: vocabulary) as? [String: Any] else {
            throw EmeraldError.invalidTokenizer(path: name, reason: "the vocabulary is not a JSON object")
        }
        return try load(vocabulary: json, vocabularyPath: name, merges: merges, mergesPath: name)
    }

    /// The vocabulary object and the merges file's bytes; the paths name them in errors.
    static func load(vocabulary json: [String: Any], vocabularyPath: String, merges data: Data,
                     mergesPath: String) throws -> ByteLevelBPETokenizer {
        var vocab: [String: Int] = [:]
        vocab.reserveCapacity(json.count)
        for (k, v) in json {
            guard let id = v as? Int else {
                throw EmeraldError.invalidTokenizer(path: vocabularyPath, reason: "entry \(k.debugDescription) is not an integer id; expected a JSON object of token → id")
            }
            vocab[k] = id
        }
        guard let text = String(validating: data, as: UTF8.self) else {
            throw EmeraldError.invalidTokenizer(path: mergesPath, reason: "the merges file is not UTF-8 text")
        }
        var merges: [(String, String)] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = line.hasSuffix("\r") ? line.dropLast() : line[...]
            if line.isEmpty || (i == 0 && line.hasPrefix("#version")) { continue }
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw EmeraldError.invalidTokenizer(path: mergesPath, reason: "line \(i + 1) \(String(line.prefix(40)).debugDescription) is not two tokens separated by a space")
            }
            for p in parts where vocab[String(p)] == nil {
                throw EmeraldError.invalidTokenizer(path: mergesPath, reason: "line \(i + 1) (\(line)) references unknown token \(String(p).debugDescription), which is not in \(vocabularyPath)")
            }
            merges.append((String(parts[0]), String(parts[1])))
        }
        let specials = vocab["<|endoftext|>"].map { ["<|endoftext|>": $0] } ?? [:]
        return try ByteLevelBPETokenizer(vocabulary: vocab, merges: merges, specialTokens: specials, path: mergesPath)
    }

    /// Writes the tokenizer as a Hugging Face tokenizer.json (vocabulary in id order, like
    /// Hugging Face writes it). Serialised by hand: Foundation's sorted-keys JSON writer
    /// takes seconds on GPT-2's 50,257-entry vocabulary on Linux.
    public func save(to path: String) throws {
        try AtomicFile.write(tokenizerJSONData(), to: path)
    }

    /// The bytes of `tokenizerJSON()`, written in a fixed order (deterministic output).
    public func tokenizerJSONData() -> Data {
        let json = tokenizerJSON()
        let model = json["model"] as! [String: Any]
        let vocab = model["vocab"] as! [String: Int]
        var out = "{\n"
        func line(_ key: String, _ value: Any, last: Bool = false, indent: String = "  ") {
            out += indent + JSONText.string(key) + ": " + JSONText.value(value) + (last ? "\n" : ",\n")
        }
        for key in ["version", "truncation", "padding", "added_tokens", "normalizer", "pre_tokenizer", "post_processor", "decoder"] {
            line(key, json[key]!)
        }
        out += "  \"model\": {\n"
        for key in ["type", "dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", "byte_fallback"] {
            line(key, model[key]!, indent: "    ")
        }
        out += "    \"vocab\": {"
        for (i, (k, v)) in vocab.sorted(by: { $0.value < $1.value }).enumerated() {
            out += (i == 0 ? "\n" : ",\n") + "      " + JSONText.string(k) + ": " + String(v)
        }
        out += "\n    },\n    \"merges\": ["
        for (i, m) in (model["merges"] as! [Any]).enumerated() {
            out += (i == 0 ? "\n" : ",\n") + "      " + JSONText.value(m)
        }
        out += "\n    ]\n  }\n}\n"
        return Data(out.utf8)
    }

    static func readJSONObject(_ path: String) throws -> [String: Any] {
        try requireRegularFile(path, limit: AtomicFile.maxJSONBytes)
        guard let data = FileManager.default.contents(atPath: path) else { throw EmeraldError.fileNotFound(path) }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw EmeraldError.invalidTokenizer(path: path, reason: "not a JSON object")
        }
        return object
    }

    // MARK: - GPT-2

    /// GPT-2's tokenizer, from the `encoder.json` + `vocab.bpe` compiled into the binary
    /// (assets/gpt2, OpenAI's files under their modified MIT license): no download, no search.
    public static func gpt2() throws -> ByteLevelBPETokenizer { try gpt2Shipped.get() }

    private static let gpt2Shipped = Result { () throws -> ByteLevelBPETokenizer in
        let vocabulary = ShippedAsset.gpt2Encoder, merges = ShippedAsset.gpt2Merges
        guard let json = try? JSONSerialization.jsonObject(with: vocabulary.data) as? [String: Any] else {
            throw EmeraldError.invalidTokenizer(path: vocabulary.name, reason: "not a JSON object")
        }
        return try load(vocabulary: json, vocabularyPath: vocabulary.name, merges: merges.data, mergesPath: merges.name)
    }
}

/// A minimal JSON writer for the values `tokenizerJSON()` holds (compact, keys sorted).
public enum JSONText {
    /// `s` as a JSON string literal: quotes, backslashes and control characters escaped.
    public static func string(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 || u.value == 0x7F {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }

    static func value(_ v: Any) -> String {
        switch v {
        case is NSNull: return "null"
        case let b as Bool: return b ? "true" : "false"
        case let i as Int: return String(i)
        case let s as String: return string(s)
        case let a as [Any]: return "[" + a.map(value).joined(separator: ", ") + "]"
        case let d as [String: Any]:
            return "{" + d.keys.sorted().map { string($0) + ": " + value(d[$0]!) }.joined(separator: ", ") + "}"
        default: return string("\(v)")
        }
    }
}
