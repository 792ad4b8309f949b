extension Tensor {
    /// Fused masked multi-head self-attention, flash-style.
    ///
    /// `self` is qkv (B, T, 3C) as produced by GPT-2's `c_attn`: channels
    /// [0, C) are queries, [C, 2C) keys, [2C, 3C) values, and head h owns
    /// channels h·hs ..< (h+1)·hs of each (hs = C / heads). Output (B, T, C).
    ///
    /// Forward keeps only the log-sum-exp of each score row (B·H·T floats);
    /// backward recomputes the probabilities row by row, so no T×T matrix per
    /// head is ever stored. Work is split across cores by (batch, head).
    public func causalSelfAttention(heads: Int) -> Tensor {
        precondition(rank == 3 && shape[2] % 3 == 0, "attention expects qkv of shape (B, T, 3C), got \(shape)")
        let (b, t, c3) = (shape[0], shape[1], shape[2])
        let c = c3 / 3
        precondition(heads > 0 && c % heads == 0, "\(c) channels do not split into \(heads) heads")
        let hs = c / heads
        let scale = 1 / Float(hs).squareRoot()
        let out = Tensor(uninitialized: [b, t, c])
        let lse = Tensor(uninitialized: [b, heads, t])
        let qkv = data, o = out.data, l = lse.data
        parallelFor(b * heads) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: t) { buf in
                let p = buf.baseAddress!
                for bh in range {
                    let bi = bh / heads, h = bh % heads
                    let base = qkv + bi * t * c3 + h * hs
                    for i in 0..<t {
                        let q = base + i * c3
                        var m = -Float.infinity
                        for j in 0...i {
                            let s = Kernels.dot(q, base + j * c3 + c, hs) * scale
                            p[j] = s
                            if s > m { m = s }
                        }
                        let sum = expShiftSum(p, i + 1, minus: m)
                        let oi = o + (bi * t + i) * c + h * hs
                        oi.update(repeating: 0, count: hs)
                        let inv = 1 / sum
                        for j in 0...i { Kernels.axpy(p[j] * inv, base + j * c3 + 2 * c, oi, hs) }
                        l[bh * t + i] = m + _logf(sum)
                    }
                }
            }
        }
        return out.record([self]) { [unowned out] g in
            let gd = g.data, od = out.data, l = lse.data
            self.withGrad { dqkv in
                parallelFor(b * heads) { range in
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: t) { buf in
                        let p = buf.baseAddress!
                        for bh in range {
                            let bi = bh / heads, h = bh % heads
                            let base = qkv + bi * t * c3 + h * hs
                            let dbase = dqkv + bi * t * c3 + h * hs
                            for i in 0..<t {
                                let q = base + i * c3
                                let goff = (bi * t + i) * c + h * hs
                                let dO = gd + goff
                                let dOdotO = Kernels.dot(dO, od + goff, hs)
                                // Recompute the probability row: p_j = exp(q·k_j·scale − lse_i).
                                for j in 0...i { p[j] = Kernels.dot(q, base + j * c3 + c, hs) * scale }
                                _ = expShiftSum(p, i + 1, minus: l[bh * t + i])
                                let dq = dbase + i * c3
                                for j in 0...i {
                                    let k = base + j * c3 + c, v = base + j * c3 + 2 * c
                                    let pj = p[j]
                                    let ds = pj * (Kernels.dot(dO, v, hs) - dOdotO) * scale
                                    Kernels.axpy(ds, k, dq, hs)
                                    Kernels.axpy(ds, q, dbase + j * c3 + c, hs)
                                    Kernels.axpy(pj, dO, dbase + j * c3 + 2 * c, hs)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
