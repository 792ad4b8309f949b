/// Keys and values of every layer for the positions seen so far, so each new
/// token costs one position of work instead of the whole context.
public final class KVCache {
    /// Per layer (heads, capacity, head size): a head's positions are contiguous, so decoding
    /// reads each head's keys and values as one stream, not 64 floats of every 3 KiB row.
    let keys: [Tensor]
    /// Per layer, as `keys`.
    let values: [Tensor]
    /// Positions the cache can hold (the model's context).
    public let capacity: Int
    /// Positions filled.
    public internal(set) var length = 0

    /// An empty cache for `model`.
    public init(for model: GPT) {
        let c = model.cfg
        capacity = c.blockSize
        let shape = [c.nHead, c.blockSize, c.nEmbd / c.nHead]
        keys = (0..<c.nLayer).map { _ in Tensor.zeros(shape) }
        values = (0..<c.nLayer).map { _ in Tensor.zeros(shape) }
    }

    /// Forgets every position.
    public func reset() { length = 0 }
}

extension GPT {
    /// Logits (n, V) for `ids` placed after the cached positions (or only the
    /// last row when `lastOnly`), extending the cache. No autograd.
    public func logits(appending ids: [Int32], cache: KVCache, lastOnly: Bool = false) -> Tensor {
        let n = ids.count, start = cache.length, c = cfg.nEmbd
        precondition(n > 0 && start + n <= cache.capacity, "cache of \(cache.capacity) cannot take \(start + n) positions")
        return withNoGrad {
            var rng = RandomGenerator(seed: 0)  // dropout is off in eval mode; never drawn from
            // eval() walks every module by reflection (≈ 1.5 ms a GPT-2 token): only when needed.
            if isTraining { eval() }
            var x = transformer.wte(ids, shape: [n]) + transformer.wpe.weight.slice(axis: 0, start..<(start + n))
            for (layer, block) in transformer.h.enumerated() {
                let attend: (Tensor) -> Tensor = { h in
                    let qkv = h.linear(weight: block.attn.c_attn.weight, bias: block.attn.c_attn.bias)  // (n, 3C)
                    let kc = cache.keys[layer].data, vc = cache.values[layer].data
                    let heads = self.cfg.nHead, hs = c / heads, headStride = cache.capacity * hs
                    for i in 0..<n {
                        for h in 0..<heads {
                            let row = h * headStride + (start + i) * hs, src = qkv.data + i * 3 * c + h * hs
                            (kc + row).update(from: src + c, count: hs)
                            (vc + row).update(from: src + 2 * c, count: hs)
                        }
                    }
                    let y = Tensor(uninitialized: [n, c])
                    CachedAttention.forward(q: qkv.data, qStride: 3 * c, k: kc, v: vc, rowStride: hs, headStride: headStride,
                                            start: start, n: n, heads: heads, headSize: hs, out: y.data)
                    return block.attn.c_proj(y)
                }
                switch cfg.norm {
                case .pre:
                    x = x + attend(block.ln_1(x))
                    x = x + block.mlp(block.ln_2(x), rng: &rng)
                case .post:
                    x = block.ln_1(x + attend(x))
                    x = block.ln_2(x + block.mlp(x, rng: &rng))
                }
            }
            cache.length = start + n
            if lastOnly { x = x.slice(axis: 0, (n - 1)..<n) }
            return transformer.ln_f(x).linear(weight: lm_head?.weight ?? transformer.wte.weight, bias: nil)
        }
    }
}
