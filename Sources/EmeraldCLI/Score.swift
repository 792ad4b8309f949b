import ArgumentParser
import Emerald
import Foundation

struct Score: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Next-token cross-entropy of a token sequence (and optionally its logits).",
        discussion: """
            Runs the model once over the sequence (no dropout, no sampling). `loss` is the mean of \
            −log p(id[t+1] | id[0…t]) over t = 0…T−2 — what transformers reports for labels=ids; \
            `per_token_loss` lists the T−1 terms; `ids` the sequence; `--logits` adds the T×V logits.
            """)

    @OptionGroup var source: ModelSource
    @Option(help: "Token ids, e.g. 464,3290,318 (at least 2).") var ids: String?
    @Option(help: "Text to score with the model's tokenizer (instead of --ids); a leading BOM is dropped and CRLF read as LF.")
    var text: String?
    @Option(help: "Weights: fp32, or bf16 / int8 (token by token through the KV cache, reading the copies that `sample --dtype` reads).")
    var dtype: DecodePrecision = .fp32
    @Flag(help: "Include the T×V logits.") var logits = false
    @Flag(help: "Print one JSON object: loss, per_token_loss, tokens, ids (and logits).") var json = false

    func run() throws {
        try EmeraldCommand.guarded {
            try require((ids == nil) != (text == nil), "pass exactly one of --ids or --text")
            let precision = dtype
            let ckpt = try source.load()
            let vocab = ckpt.model.config.vocabularySize
            let seq = try ids.map { try parseIDs($0, flag: "--ids", vocabularySize: vocab) }
                ?? ckpt.requireTokenizer("pass --ids").encode(TextCorpus.normalize(text!))
            try require(seq.count >= 2, "need at least 2 tokens to score, got \(seq.count)")
            if let ctx = ckpt.model.contextLength, ctx > 1 {
                try require(seq.count <= ctx, "the sequence is \(seq.count) tokens but the model's context is \(ctx); `emerald eval --data FILE` scores longer texts with a sliding window")
            }
            let model = ckpt.model
            model.eval()
            var rng = RandomGenerator(seed: 0)
            let t = seq.count
            let out: Tensor  // (T, V)
            if precision != .fp32 {
                // One token at a time, as generation reads the weights.
                guard let cache = model.makeCache() else {
                    throw EmeraldError.invalidArgument("--dtype \(dtype) scores models that decode with a KV cache (GPT, Llama), not \(model.config.modelType)")
                }
                model.setDecodePrecision(precision)
                var rows: [Float] = []
                rows.reserveCapacity(t * vocab)
                for id in seq { rows += withNoGrad { model([id], cache: cache) }.scalars }
                out = Tensor(rows, shape: [t, vocab])
            } else {
                out = withNoGrad { model.logits(seq, batch: 1, time: t, rng: &rng) }
            }
            let perToken = nextTokenLosses(out, ids: seq)
            let loss = Float(perToken.reduce(0.0) { $0 + Double($1) } / Double(perToken.count))  // mean in Double
            guard loss.isFinite else {
                throw EmeraldError.nonFinite("the loss is \(loss): the model's weights hold NaN or infinity, or float32 overflowed")
            }
            let all = logits ? out.scalars : []
            if json {
                var s = "{\"loss\": \(jsonNumber(loss)), \"perplexity\": \(Foundation.exp(Double(loss))), \"tokens\": \(t), \"ids\": [\(seq.map { String($0) }.joined(separator: ", "))], \"per_token_loss\": "
                s += perToken.withUnsafeBufferPointer(jsonArray)
                if logits {
                    s += ", \"logits\": ["
                    for row in 0..<t {
                        if row > 0 { s += ", " }
                        s += all[(row * vocab)..<((row + 1) * vocab)].withUnsafeBufferPointer(jsonArray)
                    }
                    s += "]"
                }
                print(s + "}")
            } else {
                print(String(format: "loss %.6f over %d predictions (perplexity %.2f)", loss, perToken.count, Foundation.exp(Double(loss))))
                print("per-token: " + perToken.map { String(format: "%.4f", $0) }.joined(separator: " "))
                if logits {
                    for row in 0..<t { print(all[(row * vocab)..<((row + 1) * vocab)].withUnsafeBufferPointer(jsonArray)) }
                }
            }
        }
    }

    /// −log softmax(logits[t])[ids[t+1]] for t in 0..<T−1.
    func nextTokenLosses(_ logits: Tensor, ids: [Int32]) -> [Float] {
        Array(logits.rowLosses(targets: ids.indices.map { $0 + 1 < ids.count ? ids[$0 + 1] : nil }).dropLast())
    }
}
