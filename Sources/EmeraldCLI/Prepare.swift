import ArgumentParser
import Emerald
import Foundation

extension BadLinePolicy: ExpressibleByArgument {}
extension ValSplit: ExpressibleByArgument {}
extension InvalidUTF8Policy: ExpressibleByArgument {}

struct Prepare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Tokenize corpora (.txt, .jsonl, .xz, .gz, .tar, OpenWebText) into memory-mapped token shards.",
        discussion: """
            Inputs are files or folders (walked recursively, sorted). Each document — a text file, a tar \
            member, a JSON line's "text" — is decoded as UTF-8 (BOM dropped, CRLF → LF), sent whole to \
            train or val by a seeded hash of its index, and followed by an end-of-text token (for char: \
            U+0003, part of the sorted vocabulary). --out gets tokenizer.json, train-NNNNNN.bin, \
            val-NNNNNN.bin and manifest.json (written last); train with `emerald train --data DIR`.
            """)

    @Argument(help: "Input files or folders.") var inputs: [String] = []
    @Option(help: "Output folder (created; a previous prepare output there is replaced).") var out: String
    @Option(help: "char (vocabulary built from the inputs), gpt2, a tokenizer.json, or a folder holding one (a checkpoint, a prepared corpus) or encoder.json + vocab.bpe.")
    var tokenizer: String = "char"
    @Option(help: "Fraction for validation, in [0, 1): of documents, or with --val-split tail of each document's tokens.")
    var valFraction: Double = 0.1
    @Option(help: "documents (whole documents, drawn by a seeded hash) or tail (the end of every document: a validation split from few documents).")
    var valSplit: ValSplit = .documents
    @Option(help: "Fraction of documents kept, in (0, 1].") var sampleRate: Double = 1.0
    @Option(help: "Seed of the split and sample decisions.") var seed: UInt64 = 1337
    @Option(help: "Reader/tokenizer threads (default: all cores).") var threads: Int?
    @Option(help: "Tokens per shard file.") var shardTokens: Int = 100_000_000
    @Option(help: "Documents with invalid UTF-8: skip (drop, counted), replace (U+FFFD, counted) or error.")
    var invalidUtf8: InvalidUTF8Policy = .skip
    @Option(help: "JSON lines that are not an object with a string \"text\": error (stop, naming the line) or skip (drop, counted in the manifest).")
    var badLines: BadLinePolicy = .error
    @Flag(help: "No progress lines.") var quiet = false

    func run() throws {
        try EmeraldCommand.guarded {
            let policy = invalidUtf8
            var o = PrepareOptions(inputs: inputs, output: out)
            o.tokenizer = tokenizer
            o.valFraction = valFraction
            o.sampleRate = sampleRate
            o.seed = seed
            if let threads { o.threads = threads }
            o.shardTokens = shardTokens
            o.invalidUTF8 = policy
            o.badLines = badLines
            o.valSplit = valSplit
            o.warn = { note(flagsNamed(in: $0)) }
            if !quiet { o.log = note }
            let s = try CorpusPreparer.run(o)
            var dropped = s.invalidUTF8Documents > 0
                ? "; \(s.invalidUTF8Documents) documents with invalid UTF-8 (\(policy == .skip ? "skipped" : "repaired"))" : ""
            if s.badLines > 0 { dropped += "; \(s.badLines) malformed JSON lines skipped" }
            note("wrote \(out): train \(s.trainTokens) tokens (\(s.trainDocuments) documents), val \(s.valTokens) tokens "
                 + "(\(s.valDocuments) documents), vocabulary \(s.vocabularySize) (end-of-text id \(s.eotID)), "
                 + String(format: "%.1f s", s.seconds) + dropped)
        }
    }
}
