import Foundation

/// Train and validation tokens for a run, from a text file, a folder written by `prepare`, or
/// (no path) the shipped book; text is split the guide's way (first 90% train).
public struct TrainingData {
    /// The tokenizer the ids are in.
    public var tokenizer: any Tokenizer
    /// Ids the model must cover.
    public var vocabularySize: Int
    /// Training tokens.
    public var train: any TokenSource
    /// Validation tokens.
    public var val: any TokenSource
    /// One line saying what was read, for logs.
    public var description: String

    /// Pretraining data: a text file gets a character vocabulary of its own (or, resuming, the
    /// checkpoint's `resumedTokenizer`, which must encode it); a prepared folder brings its
    /// tokenizer, which must be the resumed one's.
    public static func forTraining(_ path: String?, resumedTokenizer: (any Tokenizer)?) throws -> TrainingData {
        if let path, PreparedCorpus.isPrepared(path) {
            let corpus = try PreparedCorpus(directory: path)
            if let r = resumedTokenizer {
                try require(r.isSame(as: corpus.tokenizer), "the resumed checkpoint's tokenizer does not match the prepared corpus \(path)")
            }
            return TrainingData(
                tokenizer: corpus.tokenizer, vocabularySize: corpus.vocabularySize, train: corpus.train, val: corpus.val,
                description: "\(path): prepared corpus, vocabulary \(corpus.vocabularySize) (end-of-text id \(corpus.eotID)); "
                    + "train \(corpus.train.count), val \(corpus.val.count) tokens")
        }
        let text = try path.map { try TextCorpus.load(path: $0) } ?? Book.text()
        let chars: CharTokenizer
        if let r = resumedTokenizer {
            guard let t = r as? CharTokenizer else { throw EmeraldError.invalidArgument("the resumed checkpoint has no character tokenizer") }
            chars = t
        } else {
            chars = CharTokenizer(training: text)
        }
        let ids = try chars.encode(text)
        let split = trainValSplit(ids)
        return TrainingData(
            tokenizer: chars, vocabularySize: chars.vocabularySize, train: split.train, val: split.val,
            description: "\(path ?? Book.name): \(ids.count) characters, vocabulary \(chars.vocabularySize); "
                + "train \(split.train.count), val \(split.val.count) tokens")
    }

    /// Fine-tuning data in a pretrained model's `tokenizer` (a prepared folder must have been
    /// prepared with the same one).
    public static func forFinetuning(_ path: String?, tokenizer: any Tokenizer) throws -> TrainingData {
        if let path, PreparedCorpus.isPrepared(path) {
            let corpus = try PreparedCorpus(directory: path)
            try require(corpus.tokenizer.isSame(as: tokenizer),
                        "\(path) was prepared with a different tokenizer than the model's; prepare it with `tokenizer` pointing at the model folder")
            return TrainingData(tokenizer: tokenizer, vocabularySize: corpus.vocabularySize, train: corpus.train, val: corpus.val,
                                description: "\(path): prepared corpus; train \(corpus.train.count), val \(corpus.val.count) tokens")
        }
        let text = try path.map { try TextCorpus.load(path: $0) } ?? Book.text()
        let ids = try tokenizer.encode(text)
        let split = trainValSplit(ids)
        return TrainingData(tokenizer: tokenizer, vocabularySize: tokenizer.vocabularySize, train: split.train, val: split.val,
                            description: "\(path ?? Book.name): \(text.unicodeScalars.count) characters → \(ids.count) tokens; "
                                + "train \(split.train.count), val \(split.val.count)")
    }
}

extension Tokenizer {
    /// Whether `other` maps text to the same ids (same kind, same vocabulary and merges).
    public func isSame(as other: any Tokenizer) -> Bool {
        switch (self, other) {
        case let (x as CharTokenizer, y as CharTokenizer): return x == y
        case let (x as ByteLevelBPETokenizer, y as ByteLevelBPETokenizer): return x.tokenizerJSONData() == y.tokenizerJSONData()
        case let (x as HuggingFaceBPETokenizer, y as HuggingFaceBPETokenizer):
            return NSDictionary(dictionary: (try? x.serialized()) ?? [:]).isEqual(to: (try? y.serialized()) ?? [:])
        default: return false
        }
    }
}
