import Foundation

/// A folder written by `emerald prepare`, opened for training: the tokenizer,
/// the model vocabulary size (end-of-text included) and memory-mapped
/// train/val token sources.
public struct PreparedCorpus {
    /// The folder.
    public let directory: String
    /// From `tokenizer.json`.
    public let tokenizer: any Tokenizer
    /// Ids the model must cover (tokenizer + end-of-text).
    public let vocabularySize: Int
    /// The document separator.
    public let eotID: Int32
    /// Training tokens (mmapped).
    public let train: ShardedTokens
    /// Validation tokens (mmapped).
    public let val: ShardedTokens
    /// The parsed manifest.
    public let manifest: [String: Any]

    /// Whether `path` is a folder with a `manifest.json`.
    public static func isPrepared(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
            && FileManager.default.fileExists(atPath: path + "/manifest.json")
    }

    /// Opens `directory`, checking the manifest against the tokenizer and every shard.
    public init(directory: String) throws {
        let mpath = directory + "/manifest.json"
        guard FileManager.default.fileExists(atPath: mpath) else {
            throw EmeraldError.fileNotFound("\(mpath) (run emerald prepare first, or let it finish)")
        }
        let m = try AtomicFile.readJSON(mpath)
        func bad(_ r: String) -> EmeraldError { .io("prepared corpus \(directory) is unusable: \(r)") }
        guard m["format"] as? String == "emerald-token-shards", m["version"] as? Int == 1 else {
            throw bad("manifest.json is not an emerald-token-shards version 1 manifest")
        }
        guard let vocab = m["vocab_size"] as? Int, vocab > 0, let eot = m["eot_id"] as? Int, eot >= 0, eot < vocab,
              let splits = m["splits"] as? [String: Any] else { throw bad("manifest.json lacks vocab_size, eot_id or splits") }
        let tpath = directory + "/tokenizer.json"
        let tok = try loadTokenizer(json: AtomicFile.readJSON(tpath), path: tpath)
        guard tok.vocabularySize == vocab else {
            throw bad("tokenizer.json has \(tok.vocabularySize) ids but the manifest's vocabulary is \(vocab)")
        }
        guard let tokEOT = (tok as? EndOfTextToken)?.endOfTextID, Int(tokEOT) == eot else {
            throw bad("tokenizer.json's end-of-text id differs from the manifest's eot_id \(eot)")
        }
        func source(_ name: String) throws -> ShardedTokens {
            guard let sp = splits[name] as? [String: Any], let list = sp["shards"] as? [[String: Any]],
                  let tokens = sp["tokens"] as? Int else { throw bad("manifest.json has no \(name) split") }
            var paths: [String] = [], counts: [Int] = []
            for e in list {
                guard let f = e["file"] as? String, !f.contains("/"), let n = e["tokens"] as? Int else {
                    throw bad("a \(name) shard entry lacks file or tokens")
                }
                paths.append(directory + "/" + f); counts.append(n)
            }
            let s = try ShardedTokens(paths: paths, expected: counts, vocabularySize: vocab)
            guard s.count == tokens else { throw bad("the \(name) shards hold \(s.count) tokens, the manifest says \(tokens)") }
            guard paths.isEmpty || s.width == (vocab <= 65536 ? 2 : 4) else { throw bad("\(name) shards have the wrong token width") }
            return s
        }
        self.directory = directory
        tokenizer = tok
        vocabularySize = vocab
        eotID = Int32(eot)
        train = try source("train")
        val = try source("val")
        manifest = m
    }
}
