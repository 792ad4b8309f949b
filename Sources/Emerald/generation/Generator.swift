/// How to pick the next token from logits.
public struct SamplingOptions: Sendable {
    /// Logits are divided by this; 0 means greedy (argmax).
    public var temperature: Float = 1
    /// Keep only the k most likely tokens (nil: all).
    public var topK: Int?
    /// Keep the smallest set of tokens whose probability reaches p (nil: all).
    public var topP: Float?
    /// Defaults: plain sampling at temperature 1.
    public init(temperature: Float = 1, topK: Int? = nil, topP: Float? = nil) {
        self.temperature = temperature; self.topK = topK; self.topP = topP
    }

    /// Rejects options no sampler can use.
    public func validate() throws {
        try require(temperature >= 0 && temperature.isFinite, field: "temperature", "must be ≥ 0, got \(temperature)")
        if let k = topK { try require(k > 0, field: "top_k", "must be positive, got \(k)") }
        if let p = topP { try require(p > 0 && p <= 1, field: "top_p", "must be in (0, 1], got \(p)") }
    }

    /// The engine's rule for these options.
    public var rule: SamplingRule { SamplingRule(temperature: temperature, topK: topK, topP: topP) }

    /// Draws one id from a row of logits (on the CPU).
    public func pick(_ logits: [Float], rng: inout RandomGenerator) -> Int {
        Sampling.pick(logits, rule: rule, rng: &rng)
    }
}

/// Autoregressive generation with any `LanguageModel`.
public enum Generator {
    /// Appends up to `maxNewTokens` ids to `prompt`, calling `onToken` with each
    /// as soon as it is chosen; returns the new ids.
    /// - Throws: `EmeraldError.nonFinite` when the model's logits hold NaN or infinity (NaN
    ///   weights, or float32 overflow): no token can be chosen from them.
    @discardableResult
    public static func generate(model: any LanguageModel, prompt: [Int32], maxNewTokens: Int,
                                options: SamplingOptions, rng: inout RandomGenerator,
                                onToken: (Int32) -> Bool = { _ in true }) throws -> [Int32] {
        model.eval()
        var ids = prompt
        var out: [Int32] = []
        let cache = model.makeCache()
        var pending = prompt  // ids not yet in the cache
        try withNoGrad {
            for _ in 0..<maxNewTokens {
                let logits: Tensor  // (1, V)
                if let cache {
                    if cache.length + pending.count > cache.capacity {
                        // Window full: restart from the last `capacity` ids, as the uncached path crops.
                        cache.reset()
                        pending = Array(ids.suffix(cache.capacity))
                    }
                    logits = model(pending, cache: cache, lastOnly: true)
                } else {
                    let ctx = model.contextLength.map { Array(ids.suffix($0)) } ?? ids
                    logits = model(ctx, batch: 1, time: ctx.count, cache: nil, lastOnly: true, rng: &rng)
                }
                guard logits.isFinite else {
                    throw EmeraldError.nonFinite("the model's logits for new token \(out.count + 1) hold NaN or infinity "
                                                 + "(its weights do, or float32 overflowed): no token can be drawn")
                }
                let next = Int32(logits.sample(options.rule, rng: &rng))
                ids.append(next)
                out.append(next)
                pending = [next]
                if !onToken(next) { break }
            }
        }
        return out
    }
}

import Foundation
