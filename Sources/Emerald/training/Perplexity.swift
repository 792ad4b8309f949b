import EmeraldCore
import Foundation

/// What `Perplexity.evaluate` measured.
public struct PerplexityResult: Sendable {
    /// Predictions scored (every token but the first, once each).
    public var tokens: Int
    /// Mean next-token cross-entropy in nats.
    public var loss: Double
    /// Forward passes run.
    public var windows: Int
    /// e^loss.
    public var perplexity: Double { Foundation.exp(loss) }
}

/// Perplexity over a whole token sequence with a sliding window, as Hugging Face's guide and
/// llama.cpp's `llama-perplexity` do: windows of `window` tokens start every `stride` tokens;
/// each window scores only the tokens no earlier window scored, so every token is predicted
/// once, with at least `window − stride` tokens of context once the first window is past (a
/// window's first token has no context in it: with `stride == window` those are skipped).
public enum Perplexity {
    /// Scores `source` with `model` (eval mode, no gradients). `progress` gets (tokens scored,
    /// tokens to score) after each window.
    public static func evaluate(model: any LanguageModel, source: any TokenSource, window: Int, stride: Int,
                                progress: ((Int, Int) -> Void)? = nil) throws -> PerplexityResult {
        try require(window >= 2, "the window must hold at least 2 tokens, got \(window)")
        try require(stride >= 1 && stride <= window, "the stride must be in 1...\(window) (the window), got \(stride)")
        let n = source.count
        try require(n >= 2, "need at least 2 tokens to score, got \(n)")
        model.eval()
        var rng = RandomGenerator(seed: 0)
        var total = 0.0, scored = 0, windows = 0
        var begin = 0, scoredUpTo = 1  // next position whose prediction is due
        var ids = [Int32](repeating: 0, count: window)
        while scoredUpTo < n {
            let end = Swift.min(begin + window, n)
            let t = end - begin
            ids.withUnsafeMutableBufferPointer { source.copy(from: begin, count: t, into: $0.baseAddress!) }
            let logits = withNoGrad { model.logits(Array(ids[..<t]), batch: 1, time: t, rng: &rng) }  // (T, V)
            // Row r predicts position begin + r + 1; rows before scoredUpTo were scored already.
            let first = Swift.max(scoredUpTo, begin + 1)
            let losses = logits.rowLosses(targets: (0..<t).map { r in
                let pos = begin + r + 1
                return pos >= first && pos < end ? ids[r + 1] : nil
            })
            for pos in first..<end {
                let loss = losses[pos - begin - 1]
                guard loss.isFinite else {
                    throw EmeraldError.nonFinite("the model's loss at token \(pos) is \(loss) (its weights hold NaN or infinity, or float32 overflowed)")
                }
                total += Double(loss)
                scored += 1
            }
            scoredUpTo = end
            windows += 1
            progress?(scored, n - 1)
            begin += stride
        }
        return PerplexityResult(tokens: scored, loss: total / Double(scored), windows: windows)
    }
}
