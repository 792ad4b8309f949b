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
    /// bytes by bytes, with one fp32 multiply-add per 32 weights. Caches made while it is set
    /// keep keys and values in bf16 (`KVCache.storage(for:on:)`).
    case int8
}

extension DecodePrecision {
    /// A copy of an (out, in) weight in this precision; nil for `.fp32` (the weight itself).
    public func copy(of weight: Tensor) -> (any DecodeWeights)? {
        switch self {
        case .fp32: return nil
        case .bf16: return weight.backend.quantize(weight, to: .bf16)
        case .int8: return weight.backend.quantize(weight, to: .q8)
        }
    }
}

extension Module {
    /// Every module below this one (itself first), depth first.
    public var descendants: [Module] { [self] + namedChildren().flatMap { $0.1.descendants } }

    /// The decode copies below this module, each with the fp32 weight it stands in for.
    public var decodeCopies: [(weight: Tensor, copy: any DecodeWeights)] {
        descendants.compactMap { m in
            if let l = m as? Linear, let c = l.decodeCopy { return (l.weight, c) }
            if let e = m as? Embedding, let c = e.headCopy { return (e.weight, c) }
            return nil
        }
    }

    /// Bytes one decoded token reads from the weights: the decode copies where there are some,
    /// else the fp32 weights (each parameter once).
    public var decodeWeightBytes: Int {
        decodeCopies.reduce(4 * parameterCount) { $0 - 4 * $1.weight.count + $1.copy.byteCount }
    }
}
