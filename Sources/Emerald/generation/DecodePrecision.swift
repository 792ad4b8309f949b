import EmeraldCore

/// The precision of the weights that generation's one-token products read.
public enum DecodePrecision: String, CaseIterable, Sendable {
    /// The fp32 weights themselves.
    case fp32
    /// bfloat16 copies: half the bytes per token (decode is memory-bound), products and sums
    /// still fp32. Each weight is rounded to 8 significant bits, so logits move by ~1e-2.
    case bf16
    /// 8-bit copies (q8_0: 32 signed bytes and one scale per 32 weights): 1.125 bytes per
    /// weight; each weight is within half a step (max|w|/254 of its block) of its value.
    /// As in llama.cpp, each product quantizes its input row the same way and multiplies
    /// bytes by bytes, with one fp32 multiply-add per 32 weights.
    case int8
}

extension Module {
    /// Gives every Linear weight below this module (and a GPT's tied LM head, `wte`) a
    /// bfloat16 or 8-bit copy that products of at most 4 rows read while no gradient is
    /// recorded (generating one token at a time); `.fp32` drops the copies. Prompts, training
    /// and scoring keep using the fp32 weights. Call it again after the weights change.
    public func setDecodePrecision(_ precision: DecodePrecision) {
        for (_, child) in namedChildren() { child.setDecodePrecision(precision) }
        var weights: [Tensor] = []
        if let linear = self as? Linear { weights.append(linear.weight) }
        if let gpt = self as? GPT, gpt.lm_head == nil { weights.append(gpt.transformer.wte.weight) }
        for w in weights {
            switch precision {
            case .fp32: w.decodeWeights = nil
            case .bf16: w.decodeWeights = BF16Matrix(w)
            case .int8: w.decodeWeights = Q8Matrix(w)
            }
        }
    }
}
