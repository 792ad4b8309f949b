/// The guide's readable attention, kept as a reference for the fused kernel:
/// independent `Head`s (key, query, value projections, masked softmax)
/// concatenated and projected. Tests check it equals `GPT.CausalSelfAttention`.
public final class Head: Module {
    /// (hs, C).
    public let key: Linear
    /// (hs, C).
    public let query: Linear
    /// (hs, C).
    public let value: Linear

    /// One head of `headSize` channels over `nEmbd` inputs.
    public init(nEmbd: Int, headSize: Int, bias: Bool = false, rng: inout RandomGenerator) {
        key = Linear(nEmbd, headSize, bias: bias, rng: &rng)
        query = Linear(nEmbd, headSize, bias: bias, rng: &rng)
        value = Linear(nEmbd, headSize, bias: bias, rng: &rng)
    }

    /// (B, T, C) → (B, T, hs).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let t = x.shape[1]
        let k = key(x), q = query(x)
        let hs = Float(k.shape.last!)
        var wei = q.matmul(k, transposeOther: true) * (1 / hs.squareRoot())  // (B, T, T)
        wei = wei.maskedFill(.causalMask(t), -.infinity).softmax()
        return wei.matmul(value(x))
    }
}

/// Heads side by side, then a projection: the guide's `MultiHeadAttention`.
public final class MultiHeadAttention: Module {
    /// The heads.
    public let heads: [Head]
    /// (C, C).
    public let proj: Linear

    /// `count` heads of `headSize` channels.
    public init(nEmbd: Int, count: Int, headSize: Int, bias: Bool = true, rng: inout RandomGenerator) {
        heads = (0..<count).map { _ in Head(nEmbd: nEmbd, headSize: headSize, bias: bias, rng: &rng) }
        proj = Linear(count * headSize, nEmbd, bias: bias, rng: &rng)
    }

    /// (B, T, C) → (B, T, C).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        proj(Tensor.concat(heads.map { $0(x) }, axis: -1))
    }
}
