import ArgumentParser
import Emerald
import Foundation

/// `emerald tokenizer …`: train, convert and time byte-level BPE tokenizers.
struct TokenizerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Train, convert or benchmark byte-level BPE tokenizers.",
        subcommands: [TokenizerTrain.self, TokenizerConvert.self, TokenizerBench.self])
}

/// `emerald tokenizer train`: a byte-level BPE vocabulary from a corpus, saved as tokenizer.json.
struct TokenizerTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a byte-level BPE tokenizer (GPT-2's pre-tokenizer) and save it as a Hugging Face tokenizer.json.")

    @Option(help: "A UTF-8 text file, or a folder of them (read recursively).") var data: String
    @Option(help: "Total vocabulary size: 256 byte tokens + merges + special tokens.") var vocabSize: Int
    @Option(help: "Stop merging when the best pair occurs fewer times than this.") var minFrequency: Int = 2
    @Option(help: "Special token, given the last id (repeatable; default <|endoftext|>).") var special: [String] = []
    @Flag(help: "Add no special token.") var noSpecial = false
    @Option(help: "Threads for counting pre-tokens.") var threads: Int = 2
    @Option(help: "Output path of tokenizer.json.") var out: String

    func run() throws {
        try EmeraldCommand.guarded {
            let specials = noSpecial ? [] : (special.isEmpty ? ["<|endoftext|>"] : special)
            let trainer = BPETrainer(vocabularySize: vocabSize, minFrequency: minFrequency, specialTokens: specials, threads: threads)
            try trainer.validate()
            let start = Date()
            let texts = try BPETrainer.readCorpus(path: data)
            let tok = try trainer.train(texts: texts)
            try tok.save(to: out)
            let bytes = texts.reduce(0) { $0 + $1.utf8.count }
            let seconds = String(format: "%.2f", Date().timeIntervalSince(start))
            note("\(data): \(bytes) bytes → \(tok.vocabularySize) tokens (\(tok.merges.count) merges) in \(seconds) s; wrote \(out)")
            if tok.vocabularySize < vocabSize {
                note("note: stopped at \(tok.vocabularySize) tokens: no pair occurs \(minFrequency) times or more")
            }
        }
    }
}

/// `emerald tokenizer convert`: any supported tokenizer → tokenizer.json.
struct TokenizerConvert: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Write a byte-level BPE tokenizer (gpt2, encoder.json + vocab.bpe, vocab.json + merges.txt) as tokenizer.json.")

    @Option(help: "gpt2, a tokenizer.json, or a folder with encoder.json + vocab.bpe (or vocab.json + merges.txt).") var tokenizer: String
    @Option(help: "Output path of tokenizer.json.") var out: String

    func run() throws {
        try EmeraldCommand.guarded {
            guard let tok = try loadTokenizer(spec: tokenizer) as? ByteLevelBPETokenizer else {
                throw EmeraldError.invalidArgument("\(tokenizer) is not a byte-level BPE tokenizer")
            }
            try tok.save(to: out)
        }
    }
}

/// `emerald tokenizer bench`: single-thread encode speed.
struct TokenizerBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time single-thread encoding of a text file (repeated up to --megabytes); prints one JSON line.")

    @Option(help: "gpt2, a tokenizer.json, or a folder with the GPT-2 files.") var tokenizer: String = "gpt2"
    @Option(help: "UTF-8 text file to encode.") var data: String
    @Option(help: "Repeat the text until it is at least this many MB.") var megabytes: Double = 10
    @Option(help: "Timed repetitions (the best is reported).") var repeats: Int = 3
    @Option(help: "Batch mode: encode the text's paragraphs with encodeBatch on this many threads.") var threads: Int?

    func run() throws {
        try EmeraldCommand.guarded {
            try applyThreads(threads)
            try require(megabytes > 0 && megabytes <= 1000, "--megabytes must be in (0, 1000]")
            try require(repeats >= 1, "--repeats must be positive")
            guard let tok = try loadTokenizer(spec: tokenizer) as? ByteLevelBPETokenizer else {
                throw EmeraldError.invalidArgument("\(tokenizer) is not a byte-level BPE tokenizer")
            }
            let once = try TextCorpus.load(path: data)
            var text = once
            while Double(text.utf8.count) < megabytes * 1e6 { text += once }
            var best = Double.infinity
            var ids: [Int32] = []
            // Batch mode: the text cut at paragraph breaks into 16 documents per thread.
            let docs = threads.map { splitAtParagraphs(text, into: 16 * $0) } ?? []
            for _ in 0..<repeats {
                let t0 = DispatchTime.now().uptimeNanoseconds
                if threads != nil {
                    ids = tok.encodeBatch(docs).flatMap { $0 }
                } else {
                    ids = tok.encodeOrdinary(text)
                }
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            }
            let roundTrip = tok.decodeBytes(ids) == Array(text.utf8)
            let mb = Double(text.utf8.count) / 1e6
            print("{\"threads\": \(threads.map { String($0) } ?? "null"), \"bytes\": \(text.utf8.count), \"tokens\": \(ids.count), \"seconds\": \(String(format: "%.4f", best)), "
                + "\"mb_per_s\": \(String(format: "%.2f", mb / best)), \"round_trip\": \(roundTrip)}")
        }
    }
}

/// `text` cut into about `parts` pieces, each ending just after a "\n\n" (so the
/// pieces concatenate back to `text`).
func splitAtParagraphs(_ text: String, into parts: Int) -> [String] {
    let bytes = Array(text.utf8)
    let target = Swift.max(1, bytes.count / Swift.max(parts, 1))
    var pieces: [String] = [], start = 0, i = target
    while i < bytes.count - 1 {
        if bytes[i] == 0x0A && bytes[i + 1] == 0x0A {
            pieces.append(String(decoding: bytes[start..<(i + 2)], as: UTF8.self))
            start = i + 2
            i = start + target
        } else {
            i += 1
        }
    }
    pieces.append(String(decoding: bytes[start...], as: UTF8.self))
    return pieces
}
