import ArgumentParser
import Emerald
import Foundation

/// `emerald eval`: perplexity over a whole file.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Perplexity of a model over a whole text, with a sliding window (like llama-perplexity).",
        discussion: """
            Windows of --window tokens (default: the model's context) start every --stride tokens \
            (default: half a window); each scores only tokens no earlier window scored, so every token \
            after the first is predicted exactly once, with at least window − stride tokens of context \
            past the first window (with --stride equal to --window, the windows are disjoint and each \
            one's first token, which has no context in it, is skipped, as in Hugging Face's recipe). Without --data, the text is the shipped book's validation tenth — \
            the split `emerald train` reports val loss on.
            """)

    @OptionGroup var source: ModelSource
    @Option(help: "UTF-8 text file, or a folder from `emerald prepare` (its validation split) (default: the shipped book's validation tenth).")
    var data: String?
    @Option(help: "Tokens per forward pass (default: the model's context; 512 for a bigram).") var window: Int?
    @Option(help: "Tokens between window starts (default: half a window).") var stride: Int?
    @Option(help: "Score at most this many tokens from the start of the text.") var maxTokens: Int?
    @Flag(help: "Print one JSON object: loss, perplexity, tokens, windows, window, stride.") var json = false
    @Option(help: "Worker threads (default: all cores).") var threads: Int?

    func run() throws {
        try EmeraldCommand.guarded {
            try applyThreads(threads)
            if let maxTokens { try require(maxTokens >= 2, "--max-tokens must be at least 2, got \(maxTokens)") }
            let ckpt = try source.load()
            let context = ckpt.model.contextLength.flatMap { $0 > 1 ? $0 : nil }
            let window = self.window ?? context ?? 512
            if let context { try require(window <= context, "--window \(window) exceeds the model's context of \(context)") }
            let stride = self.stride ?? Swift.max(1, window / 2)
            var tokens: any TokenSource
            let name: String
            if let data, PreparedCorpus.isPrepared(data) {
                let corpus = try PreparedCorpus(directory: data)
                if let t = ckpt.tokenizer {
                    try require(t.isSame(as: corpus.tokenizer), "\(data) was prepared with another tokenizer than the model's")
                }
                tokens = corpus.val
                name = "\(data) (validation split)"
            } else {
                let tokenizer = try ckpt.requireTokenizer("eval needs it to read --data")
                if let data {
                    tokens = TokenArray(try tokenizer.encode(try TextCorpus.load(path: data)))
                    name = data
                } else {
                    tokens = trainValSplit(try tokenizer.encode(try Book.text())).val
                    name = "\(Book.name), validation tenth"
                }
            }
            if let maxTokens, maxTokens < tokens.count { tokens = Prefix(base: tokens, count: maxTokens) }
            let progress = isatty(2) == 1 && !json
            let start = Date()
            let r = try Perplexity.evaluate(model: ckpt.model, source: tokens, window: window, stride: stride) { done, all in
                guard progress else { return }
                FileHandle.standardError.write(Data(String(format: "\r\u{1B}[2Kscored %d/%d tokens (%.0f%%)", done, all,
                                                           100 * Double(done) / Double(all)).utf8))
            }
            if progress { FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8)) }
            let seconds = Date().timeIntervalSince(start)
            if json {
                print("{\"loss\": \(r.loss), \"perplexity\": \(r.perplexity), \"tokens\": \(r.tokens), \"windows\": \(r.windows), "
                      + "\"window\": \(window), \"stride\": \(stride), \"seconds\": \(String(format: "%.3f", seconds))}")
            } else {
                print(String(format: "%@: loss %.4f nats/token, perplexity %.3f over %d tokens (%d windows of %d, stride %d; %.1f s)",
                             name, r.loss, r.perplexity, r.tokens, r.windows, window, stride, seconds))
            }
        }
    }

    /// The first `count` tokens of `base`.
    struct Prefix: TokenSource {
        let base: any TokenSource
        let count: Int
        func copy(from offset: Int, count n: Int, into out: UnsafeMutablePointer<Int32>) { base.copy(from: offset, count: n, into: out) }
    }
}
