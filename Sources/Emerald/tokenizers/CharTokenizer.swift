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
                throw EmeraldError.unknownCharacter("character \(describeScalar(s)) is not in the model's vocabulary of \(vocabulary.count) characters")
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

/// `U+0078 'x'` for a visible character; `U+FEFF ZERO WIDTH NO-BREAK SPACE` for one that would
/// print as nothing (controls, spaces, format characters), so a message never hides it.
public func describeScalar(_ s: Unicode.Scalar) -> String {
    let hex = String(s.value, radix: 16, uppercase: true)
    let code = "U+" + String(repeating: "0", count: Swift.max(0, 4 - hex.count)) + hex
    let p = s.properties
    let invisible = p.isWhitespace || p.generalCategory == .control || p.generalCategory == .format
        || p.generalCategory == .unassigned || p.generalCategory == .surrogate || p.generalCategory == .privateUse
        || p.generalCategory == .lineSeparator || p.generalCategory == .paragraphSeparator || p.isDefaultIgnorableCodePoint
    guard invisible else { return "\(code) '\(s)'" }
    let controls: [UInt32: String] = [0: "NULL", 9: "CHARACTER TABULATION", 0xA: "LINE FEED", 0xB: "LINE TABULATION",
                                      0xC: "FORM FEED", 0xD: "CARRIAGE RETURN", 0x1B: "ESCAPE", 0x7F: "DELETE"]
    if let name = p.name ?? p.nameAlias ?? controls[s.value] { return "\(code) \(name)" }
    return code
}
