/// The guide's character tokenizer: the vocabulary is the sorted set of the
/// corpus's Unicode scalars, one id each.
///
/// Scalars, not Swift `Character`s: a grapheme cluster would fold "\r\n" or
/// "e\u{301}" into one symbol and make the vocabulary depend on Unicode
/// segmentation rules. Text is normalised on reading (see `TextCorpus`), so
/// there is no "\r" in practice. Unknown characters are an error, naming the
/// first one, rather than silently mapped to an unknown token.
public struct CharTokenizer: Tokenizer, Equatable {
    /// id → scalar.
    public let vocabulary: [Unicode.Scalar]
    private let index: [Unicode.Scalar: Int32]

    /// Builds the vocabulary from `text`.
    public init(training text: String) {
        self.init(vocabulary: Set(text.unicodeScalars).sorted { $0.value < $1.value })
    }

    /// Uses the given id → scalar table.
    public init(vocabulary: [Unicode.Scalar]) {
        self.vocabulary = vocabulary
        var idx: [Unicode.Scalar: Int32] = [:]
        for (i, s) in vocabulary.enumerated() { idx[s] = Int32(i) }
        index = idx
    }

    /// Reads the form written by `serialized()`.
    public init(json: [String: Any], path: String) throws {
        guard let codes = json["vocab"] as? [Int] else {
            throw EmeraldError.corruptCheckpoint(path: path, reason: "char tokenizer has no vocab list")
        }
        var scalars: [Unicode.Scalar] = []
        for c in codes {
            guard c >= 0, c <= 0x10FFFF, let s = Unicode.Scalar(UInt32(c)) else {
                throw EmeraldError.corruptCheckpoint(path: path, reason: "vocab entry \(c) is not a Unicode scalar")
            }
            scalars.append(s)
        }
        guard Set(scalars).count == scalars.count, !scalars.isEmpty else {
            throw EmeraldError.corruptCheckpoint(path: path, reason: "char vocabulary is empty or has duplicates")
        }
        self.init(vocabulary: scalars)
    }

    /// Number of scalars in the vocabulary.
    public var vocabularySize: Int { vocabulary.count }

    /// One id per Unicode scalar.
    public func encode(_ text: String) throws -> [Int32] {
        var ids: [Int32] = []
        ids.reserveCapacity(text.utf8.count)
        for s in text.unicodeScalars {
            guard let id = index[s] else {
                let shown = s.properties.isWhitespace || s.value < 32 ? "U+\(String(s.value, radix: 16, uppercase: true))" : "'\(s)'"
                throw EmeraldError.unknownCharacter("character \(shown) is not in the model's vocabulary of \(vocabulary.count) characters")
            }
            ids.append(id)
        }
        return ids
    }

    /// Concatenates the scalars for `ids` (ids outside the vocabulary are skipped).
    public func decode(_ ids: [Int32]) -> String {
        var s = String.UnicodeScalarView()
        for id in ids where id >= 0 && Int(id) < vocabulary.count { s.append(vocabulary[Int(id)]) }
        return String(s)
    }

    /// `{"type": "char", "vocab": [code points]}` (code points survive any JSON tooling).
    public func serialized() throws -> [String: Any] {
        ["type": "char", "vocab": vocabulary.map { Int($0.value) }]
    }

    public static func == (a: CharTokenizer, b: CharTokenizer) -> Bool { a.vocabulary == b.vocabulary }
}
