import Foundation

extension ByteLevelBPETokenizer {
    /// Writes Hugging Face's `vocab.json` (token → id) and `merges.txt` (`#version` line,
    /// then one "left right" pair per line in rank order), which `GPT2Tokenizer` reads.
    public func writeVocabularyAndMerges(vocabularyPath: String, mergesPath: String) throws {
        var vocab: [String: Int] = [:]
        for id in 0..<vocabularySize {
            if let s = tokenString(Int32(id)) { vocab[s] = id }
        }
        try AtomicFile.write(try JSONSerialization.data(withJSONObject: vocab, options: [.sortedKeys]), to: vocabularyPath)
        var text = "#version: 0.2\n"
        for m in merges {
            guard let l = tokenString(m.left), let r = tokenString(m.right), !l.contains(" "), !r.contains(" ") else {
                throw EmeraldError.invalidTokenizer(path: mergesPath, reason: "a merge contains a space and cannot be written as merges.txt")
            }
            text += l + " " + r + "\n"
        }
        try AtomicFile.write(Data(text.utf8), to: mergesPath)
    }
}

extension CharTokenizer {
    /// The character vocabulary as a Hugging Face `tokenizers` file: a `WordLevel` model whose
    /// words are single Unicode scalars, a `Split` pre-tokenizer on every scalar (`[\s\S]`), and a
    /// `Fuse` decoder, so `PreTrainedTokenizerFast(tokenizer_file=…)` encodes and decodes exactly
    /// as Emerald does. Characters outside the vocabulary fail there too (no `<unk>` entry).
    public func huggingFaceTokenizerJSONData() throws -> Data {
        var vocab: [String: Int] = [:]
        for (i, s) in vocabulary.enumerated() { vocab[String(s)] = i }
        let json: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": [Any](),
            "normalizer": NSNull(),
            "pre_tokenizer": ["type": "Split", "pattern": ["Regex": "[\\s\\S]"], "behavior": "Isolated", "invert": false] as [String: Any],
            "post_processor": NSNull(), "decoder": ["type": "Fuse"],
            "model": ["type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"] as [String: Any],
        ]
        return try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
    }
}

extension CharTokenizer {
    /// Reads the WordLevel form written by `huggingFaceTokenizerJSONData()`: every word one
    /// Unicode scalar, ids dense from 0.
    public init(huggingFaceJSON json: [String: Any], path: String) throws {
        func fail(_ r: String) -> EmeraldError { .invalidTokenizer(path: path, reason: r) }
        guard let model = json["model"] as? [String: Any], model["type"] as? String == "WordLevel",
              let vocab = model["vocab"] as? [String: Int] else { throw fail("not a WordLevel tokenizer with a vocab") }
        var scalars = [Unicode.Scalar?](repeating: nil, count: vocab.count)
        for (word, id) in vocab {
            let u = Array(word.unicodeScalars)
            guard u.count == 1 else { throw fail("word \(word.debugDescription) is not a single character; only character-level WordLevel tokenizers are supported") }
            guard id >= 0 && id < vocab.count && scalars[id] == nil else { throw fail("ids must be 0..<\(vocab.count), each once") }
            scalars[id] = u[0]
        }
        self.init(vocabulary: scalars.map { $0! })
    }
}
