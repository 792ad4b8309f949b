extension Tensor {
    /// Replaces elements where `mask` is non-zero by `value`. `mask`'s shape
    /// must equal this tensor's trailing dimensions (e.g. a `[T, T]` causal
    /// mask over `[B, H, T, T]` scores).
    public func maskedFill(_ mask: Tensor, _ value: Float) -> Tensor {
        precondition(Array(shape.suffix(mask.rank)) == mask.shape, "mask \(mask.shape) does not fit \(shape)")
        let backend = self.backend, m = mask.count
        let out = Tensor(uninitialized: shape, on: backend)
        backend.maskedFill(data, mask: mask.data, period: m, value: value, into: out.data, count: count)
        return out.record([self]) { g in
            let dx = Tensor(uninitialized: self.shape, on: backend)
            backend.maskedFill(g.data, mask: mask.data, period: m, value: 0, into: dx.data, count: self.count)
            self.adoptGrad(dx)
        }
    }

    /// Inverted dropout: zeroes each element with probability `p` and scales
    /// the rest by 1/(1−p). Identity when `p == 0`.
    ///
    /// The mask is a counter hash of (seed drawn from `rng`, element index — in the whole
    /// batch, inside a data-parallel shard), computed 8 lanes at a time; backward recomputes
    /// it rather than storing it.
    public func dropout(_ p: Float, using rng: inout RandomGenerator) -> Tensor {
        precondition(p >= 0 && p < 1, "dropout probability must be in [0, 1), got \(p)")
        if p == 0 { return self }
        let seed = UInt32(truncatingIfNeeded: rng.next())
        let offset = ShardRows.elementOffset(count)
        let backend = self.backend
        let out = Tensor(uninitialized: shape, on: backend)
        backend.dropout(data, into: out.data, count: count, p: p, seed: seed, offset: offset)
        return out.record([self]) { g in
            let dx = Tensor(uninitialized: self.shape, on: backend)
            backend.dropout(g.data, into: dx.data, count: self.count, p: p, seed: seed, offset: offset)
            self.adoptGrad(dx)
        }
    }

    /// Causal mask: 1 above the diagonal (positions a query may not see).
    public static func causalMask(_ n: Int) -> Tensor {
        let t = zeros([n, n])
        for i in 0..<n { for j in (i + 1)..<Swift.max(n, i + 1) { t.data[i * n + j] = 1 } }
        return t
    }
}
