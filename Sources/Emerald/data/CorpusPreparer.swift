import Foundation

/// Tokenizers that can separate documents: `emerald prepare` puts this id
/// after every document. A tokenizer without one cannot prepare corpora.
public protocol EndOfTextToken {
    /// The id that separates documents, if the vocabulary has one.
    var endOfTextID: Int32? { get }
}

extension CharTokenizer: EndOfTextToken {
    /// The reserved end-of-text character, U+0003 (ASCII "END OF TEXT").
    public static let endOfText = Unicode.Scalar(UInt8(3))

    /// The id of U+0003, which `emerald prepare` always puts in a char vocabulary
    /// (and removes from documents, so it only ever separates them).
    public var endOfTextID: Int32? { vocabulary.firstIndex(of: Self.endOfText).map { Int32($0) } }

    /// This vocabulary with U+0003 appended when missing (existing ids unchanged).
    public func withEndOfText() -> CharTokenizer {
        endOfTextID != nil ? self : CharTokenizer(vocabulary: vocabulary + [Self.endOfText])
    }
}

extension ByteLevelBPETokenizer: EndOfTextToken {
    /// GPT-2's `<|endoftext|>`.
    public var endOfTextID: Int32? { specialTokens["<|endoftext|>"] }
}

extension HuggingFaceBPETokenizer: EndOfTextToken {
    /// The file's end-of-text token: `<|endoftext|>` (SmolLM2, Qwen2), `<|end_of_text|>`
    /// (Llama 3) or `</s>` (Llama 2, TinyLlama).
    public var endOfTextID: Int32? { ["<|endoftext|>", "<|end_of_text|>", "</s>"].lazy.compactMap { addedTokens[$0] }.first }
}

/// Settings of `emerald prepare` (the CLI flags of the same names).
public struct PrepareOptions {
    /// Files or folders (walked recursively).
    public var inputs: [String]
    /// Output folder.
    public var output: String
    /// "char" (build the vocabulary from the inputs), or any `loadTokenizer(spec:)` value:
    /// `gpt2`, a tokenizer.json, or a folder holding one (a prepared corpus, a checkpoint).
    public var tokenizer = "char"
    /// Fraction of documents (not tokens) sent to validation, in [0, 1).
    public var valFraction = 0.1
    /// Fraction of documents kept, in (0, 1].
    public var sampleRate = 1.0
    /// Seed of the split and sample decisions.
    public var seed: UInt64 = 1337
    /// Reader/tokenizer threads.
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    /// Tokens per shard file.
    public var shardTokens = 100_000_000
    /// Documents that are not valid UTF-8.
    public var invalidUTF8 = InvalidUTF8Policy.skip
    /// JSON lines that are not an object with a string "text".
    public var badLines = BadLinePolicy.error
    /// How documents are divided between train and validation.
    public var valSplit = ValSplit.documents
    /// Receives warnings (an empty split), even when `log` is nil.
    public var warn: ((String) -> Void)?
    /// Receives progress lines (nil: silent).
    public var log: ((String) -> Void)?
    /// Seconds between progress lines.
    public var progressInterval = 5.0
    /// `--tokenizer char`: tokens held back before the vocabulary is guessed
    /// (see `CharIDs`): 4M (16 MiB held; memory does not grow with the corpus).
    /// Only speed depends on it, never the output.
    public var charGuessTokens = 1 << 22

    /// Defaults for `inputs` → `output`.
    public init(inputs: [String], output: String) {
        self.inputs = inputs
        self.output = output
    }

    /// Rejects out-of-range values, naming the flag.
    public func validate() throws {
        try require(valFraction >= 0 && valFraction < 1, field: "val_fraction", "must be in [0, 1), got \(valFraction)")
        try require(sampleRate > 0 && sampleRate <= 1, field: "sample_rate", "must be in (0, 1], got \(sampleRate)")
        try require(threads > 0 && threads <= 256, field: "threads", "must be in 1...256")
        try require(shardTokens > 0, field: "shard_tokens", "must be positive, got \(shardTokens)")
        try require(!output.isEmpty, field: "out", "needs a folder")
        try require(charGuessTokens >= 0, "charGuessTokens must not be negative")
    }
}

/// `--bad-lines`: what a malformed JSON line does.
public enum BadLinePolicy: String, CaseIterable, Sendable {
    /// Stop with an error naming the file and line.
    case error
    /// Drop the line, counted in the summary and manifest.
    case skip
}

/// `--val-split`: how documents are divided between the splits.
public enum ValSplit: String, CaseIterable, Sendable {
    /// Whole documents, each sent to validation with probability `valFraction` (seeded).
    case documents
    /// Every document's last `valFraction` of tokens go to validation, the rest to train: a
    /// validation split even from one or two documents.
    case tail
}

/// What a run produced (also written to `manifest.json`).
public struct PrepareSummary {
    /// Tokens per split, end-of-text tokens included.
    public var trainTokens = 0, valTokens = 0
    /// Documents per split.
    public var trainDocuments = 0, valDocuments = 0
    /// Documents read (every one, before any filtering).
    public var documentsRead = 0
    /// Dropped by `--sample-rate`.
    public var sampledOut = 0
    /// Empty after decoding.
    public var emptyDocuments = 0
    /// Not valid UTF-8 (skipped, or repaired under `replace`).
    public var invalidUTF8Documents = 0
    /// Malformed JSON lines skipped under `--bad-lines skip`.
    public var badLines = 0
    /// Document bytes (decompressed) and file bytes read.
    public var textBytes = 0, fileBytes = 0
    /// The model vocabulary (end-of-text included) and the end-of-text id.
    public var vocabularySize = 0, eotID: Int32 = 0
    /// Bytes per token in the shards.
    public var tokenWidth = 2
    /// Wall time.
    public var seconds = 0.0
    /// Documents kept (with `--val-split tail`, each counts in both splits but once here).
    public var keptDocuments = 0
}

/// `emerald prepare`: files → documents → tokens → shards + manifest, streaming
/// and in parallel (see `OrderedPipeline`), so peak memory does not depend on
/// the corpus size.
///
/// Per document, in input order (sorted paths, archive order within files):
/// bytes are decoded like `TextCorpus` (BOM dropped, CRLF → LF), invalid UTF-8
/// handled by `--invalid-utf8`, empty documents dropped; then `--sample-rate`
/// and `--val-fraction` decide (see `DocumentSplit`), and the document's tokens
/// followed by the end-of-text id go to that split's shards. The inputs are
/// read once, also for `--tokenizer char`, whose vocabulary is built on the
/// way (see `CharIDs`).
///
/// Outputs in `--out`: `tokenizer.json`, `train-NNNNNN.bin`, `val-NNNNNN.bin`
/// (see `TokenShard`), and `manifest.json`, written last — all into a temporary
/// sibling swapped in at the end, so a folder never mixes runs and a failed re-run
/// keeps the previous corpus; a folder holding anything else is refused.
public enum CorpusPreparer {
    /// Documents of at most this size travel between threads as bytes (larger tar members are read in place).
    static let blobLimit = 16 << 20

    /// Runs `options`: everything is written into a temporary sibling of `--out` and swapped in
    /// at the end (`OutputFolder`), so a failed or killed re-run leaves the previous corpus whole.
    @discardableResult
    public static func run(_ options: PrepareOptions) throws -> PrepareSummary {
        try options.validate()
        let folder = OutputFolder(options.output, kind: "prepared-corpus")
        try folder.requireWritable(recognised: isOlderPreparedCorpus)
        let lock = try folder.lock()
        defer { lock.release() }
        folder.removeLitter()
        var work = options
        work.output = folder.temporaryPath
        let fm = FileManager.default
        try? fm.removeItem(atPath: work.output)
        do { try fm.createDirectory(atPath: work.output, withIntermediateDirectories: true) } catch {
            throw EmeraldError.io("cannot create \(work.output) beside `out`: \(reason(error))")
        }
        do {
            let summary = try prepare(work, excluding: options.output)
            try folder.mark(work.output)
            try folder.replace(with: work.output)
            return summary
        } catch {
            try? fm.removeItem(atPath: work.output)
            throw error
        }
    }

    /// The whole run into `options.output` (a fresh temporary folder).
    static func prepare(_ options: PrepareOptions, excluding finalOutput: String) throws -> PrepareSummary {
        let started = Date()
        let (files, skippedFiles) = try DocumentReader.inputFiles(options.inputs, excluding: finalOutput)
        let totalFileBytes = files.reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: $1)[.size] as? Int) ?? 0) }
        if skippedFiles > 0 { options.log?("skipping \(skippedFiles) files with other extensions in the input folders") }

        var tokenizer: (any Tokenizer)?
        var tokenizerSource = "char"
        if options.tokenizer != "char" {
            tokenizer = try loadTokenizer(spec: options.tokenizer)
            tokenizerSource = options.tokenizer
        }

        let counter = ByteCounter()
        var summary = PrepareSummary()
        var tok: any Tokenizer
        var shards: (train: ShardList, val: ShardList)
        if var given = tokenizer {
            if let c = given as? CharTokenizer { given = c.withEndOfText() }
            guard let eot = (given as? EndOfTextToken)?.endOfTextID, eot >= 0, Int(eot) < given.vocabularySize else {
                throw EmeraldError.invalidArgument("tokenizer \(tokenizerSource) has no end-of-text token to separate documents")
            }
            tok = given
            setVocabulary(&summary, size: given.vocabularySize, eot: eot)
            try AtomicFile.writeJSON(try tok.serialized(), to: options.output + "/tokenizer.json")
            let pass = try writeShards(files, tokenizer: tok, options: options, counter: counter, totalBytes: totalFileBytes,
                                       summary: &summary)
            try requireTokens(summary)
            shards = (pass.train.shards, pass.val.shards)
        } else {
            let pass = try writeShards(files, tokenizer: nil, options: options, counter: counter, totalBytes: totalFileBytes,
                                       summary: &summary)
            tok = try finishCharShards(pass, options: options, summary: &summary)
            shards = (pass.train.shards, pass.val.shards)
        }
        summary.fileBytes = counter.value
        summary.seconds = Date().timeIntervalSince(started)
        if options.valFraction > 0 && summary.valTokens == 0 {
            options.warn?("warning: the validation split is empty: none of the \(summary.trainDocuments) documents was drawn "
                          + "for it (`val_fraction` \(options.valFraction)); `val_split` tail holds out the end of every document instead")
        }
        if summary.trainTokens == 0 {
            options.warn?("warning: the training split is empty: every kept document went to validation")
        }
        try writeManifest(options: options, files: files, tokenizer: tok, tokenizerSource: tokenizerSource, summary: summary,
                          shards: shards)
        return summary
    }

    // MARK: - Output folder

    /// Whether `name` is something `emerald prepare` writes.
    static func isOwnFile(_ name: String) -> Bool {
        if name == "manifest.json" || name == "tokenizer.json" || name.hasPrefix("manifest.json.tmp-")
            || name.hasPrefix("tokenizer.json.tmp-") || name == ".write-test" { return true }
        for split in ["train-", "val-"] where name.hasPrefix(split) {
            var rest = name.dropFirst(split.count)
            guard rest.count >= 6, rest.prefix(6).allSatisfy({ $0.isASCII && $0.isNumber }) else { return false }
            rest = rest.dropFirst(6)
            return rest == ".bin" || rest == ".bin.tmp"
        }
        return false
    }

    /// Whether `dir` is a prepared corpus of an Emerald without markers: only files `prepare`
    /// writes, and a manifest of Emerald's format or shards (an interrupted run).
    static func isOlderPreparedCorpus(_ dir: String) -> Bool {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: dir), entries.allSatisfy(isOwnFile) else { return false }
        if let m = try? AtomicFile.readJSON(dir + "/manifest.json") { return m["format"] as? String == "emerald-token-shards" }
        return entries.contains { $0.hasPrefix("train-") || $0.hasPrefix("val-") }
    }

    static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if let u = ns.userInfo[NSUnderlyingErrorKey] as? NSError, u.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(u.code)))
        }
        return ns.localizedDescription
    }

    // MARK: - Producing units

    /// Peels xz/gzip layers off a reader.
    static func unwrapCompression(_ reader: BufferedReader, name: String) throws -> (BufferedReader, String) {
        var r = reader, n = name
        for _ in 0..<4 {
            let head = try r.peek(6)
            if head.starts(with: DocumentReader.xzMagic) {
                r = BufferedReader(try XZStream(r, name: n)); n = DocumentReader.strippingCompression(n)
            } else if head.starts(with: DocumentReader.gzipMagic) {
                r = BufferedReader(try GzipStream(r, name: n)); n = DocumentReader.strippingCompression(n)
            } else { break }
        }
        return (r, n)
    }

    /// Reads exactly a member's bytes.
    static func readAll(_ stream: ByteStream, count: Int) throws -> [UInt8] {
        try [UInt8](unsafeUninitializedCapacity: count) { buf, n in
            n = 0
            while n < count {
                let k = try stream.read(into: UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(buf)[n..<count]))
                if k == 0 { break }
                n += k
            }
        }
    }

    /// Queues one unit per input file — and, for tar archives, one per member, so
    /// `openwebtext.tar.xz`'s subsets decompress in parallel. `handle` gets each
    /// document, then nil when its unit ends (to send what it batched).
    static func produceUnits<Item>(_ files: [String], counter: ByteCounter, producer: OrderedPipeline<Item>.Producer,
                                   handle: @escaping (RawDocument?, Int, OrderedPipeline<Item>.Emit) throws -> Void) throws {
        for path in files {
            if DocumentReader.isTarName(path) {
                let (reader, _) = try unwrapCompression(BufferedReader(try FileStream(path: path, counter: counter)), name: path)
                try TarReader(reader, name: path).forEachFile { member, stream in
                    let name = path + "/" + member.path
                    if member.size <= blobLimit {
                        let bytes = try readAll(stream, count: member.size)
                        try producer.add { slot, emit in
                            try DocumentReader.read(BufferedReader(MemoryStream(bytes), capacity: 1 << 16), name: name) { try handle($0, slot, emit) }
                            try handle(nil, slot, emit)
                        }
                    } else {
                        try producer.inline { slot, emit in
                            try DocumentReader.read(BufferedReader(stream), name: name) { try handle($0, slot, emit) }
                            try handle(nil, slot, emit)
                        }
                    }
                }
            } else {
                try producer.add { slot, emit in
                    try DocumentReader.read(BufferedReader(try FileStream(path: path, counter: counter)), name: path) {
                        try handle($0, slot, emit)
                    }
                    try handle(nil, slot, emit)
                }
            }
        }
    }

    /// Per-thread scratch (one thread uses a slot at a time, and a unit stays on one slot).
    final class SlotState: @unchecked Sendable {
        var decoder = DocumentDecoder()
        /// Outcomes not yet sent (see `TokenPass`), and their size.
        var batch: [Outcome] = []
        var batchBytes = 0
    }

    // MARK: - Vocabulary and the char finish

    static func setVocabulary(_ s: inout PrepareSummary, size: Int, eot: Int32) {
        s.vocabularySize = size
        s.eotID = eot
        s.tokenWidth = size <= 65536 ? 2 : 4
    }

    static func requireTokens(_ s: PrepareSummary) throws {
        guard s.trainTokens + s.valTokens > 0 else {
            throw EmeraldError.invalidArgument(
                "no documents kept out of \(s.documentsRead) read (all empty, invalid UTF-8 or sampled out)")
        }
    }

    /// After a char pass: sorts the vocabulary, writes `tokenizer.json` and
    /// completes the provisional shards (see `CharIDs`, `ProvisionalShards`).
    static func finishCharShards(_ pass: TokenPass, options: PrepareOptions, summary: inout PrepareSummary) throws -> CharTokenizer {
        let pending = pass.train.pending + pass.val.pending
        do {
            let chars = pass.chars!
            guard chars.count > 1 else { throw EmeraldError.invalidArgument("the inputs hold no text") }
            try requireTokens(summary)
            let started = Date()
            let (vocabulary, perm, unchangedBelow) = chars.finalVocabulary()
            let tok = CharTokenizer(vocabulary: vocabulary)
            setVocabulary(&summary, size: tok.vocabularySize, eot: tok.endOfTextID!)
            try AtomicFile.writeJSON(try tok.serialized(), to: options.output + "/tokenizer.json")
            let done = try ProvisionalShards.finish(pending, directory: options.output, perm: perm, unchangedBelow: unchangedBelow,
                                                    width: summary.tokenWidth, vocabularySize: summary.vocabularySize,
                                                    threads: options.threads, log: options.log,
                                                    interval: options.progressInterval)
            let what = done.shards == 0 ? "no shard needed new ids"
                : "rewrote \(done.shards) of \(pending.count) shards (\(PrepareProgress.count(Double(done.tokens))) tokens) for characters first seen late"
            options.log?("prepare ids: \(tok.vocabularySize) characters; \(what), done in "
                         + PrepareProgress.duration(Date().timeIntervalSince(started)))
            return tok
        } catch {
            for p in pending { unlink(options.output + "/" + p.file + ".tmp") }
            throw error
        }
    }

    // MARK: - Manifest

    static func writeManifest(options: PrepareOptions, files: [String], tokenizer: any Tokenizer, tokenizerSource: String,
                              summary s: PrepareSummary, shards: (train: ShardList, val: ShardList)) throws {
        func split(_ tokens: Int, _ docs: Int, _ shards: [(file: String, tokens: Int)]) -> [String: Any] {
            ["tokens": tokens, "documents": docs, "shards": shards.map { ["file": $0.file, "tokens": $0.tokens] as [String: Any] }]
        }
        let sources: [[String: Any]] = files.map {
            ["path": $0, "bytes": (try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int) ?? 0] as [String: Any]
        }
        let manifest: [String: Any] = [
            "format": "emerald-token-shards",
            "version": 1,
            "tokenizer": ["file": "tokenizer.json", "type": (try? tokenizer.serialized()["type"] as? String) ?? "unknown",
                          "source": tokenizerSource],
            "vocab_size": s.vocabularySize,
            "eot_id": Int(s.eotID),
            "dtype": s.tokenWidth == 2 ? "uint16" : "uint32",
            "shard_tokens": options.shardTokens,
            "splits": ["train": split(s.trainTokens, s.trainDocuments, shards.train),
                       "val": split(s.valTokens, s.valDocuments, shards.val)],
            "documents": ["read": s.documentsRead, "kept": s.keptDocuments, "sampled_out": s.sampledOut,
                          "empty": s.emptyDocuments, "invalid_utf8": s.invalidUTF8Documents, "bad_lines": s.badLines],
            "invalid_utf8_policy": options.invalidUTF8.rawValue,
            "bad_lines_policy": options.badLines.rawValue,
            "val_split": options.valSplit.rawValue,
            "val_fraction": options.valFraction,
            "sample_rate": options.sampleRate,
            "seed": options.seed <= UInt64(Int.max) ? Int(options.seed) as Any : String(options.seed) as Any,
            "text_bytes": s.textBytes,
            "file_bytes_read": s.fileBytes,
            "sources": sources,
            "seconds": (s.seconds * 1000).rounded() / 1000,
        ]
        try AtomicFile.writeJSON(manifest, to: options.output + "/manifest.json")
        let dfd = open(options.output, O_RDONLY)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }
}
