extension Tensor {
    /// Fused masked multi-head self-attention, flash-style.
    ///
    /// `self` is qkv (B, T, 3C) as produced by GPT-2's `c_attn`: channels
    /// [0, C) are queries, [C, 2C) keys, [2C, 3C) values, and head h owns
    /// channels h·hs ..< (h+1)·hs of each (hs = C / heads). Output (B, T, C).
    ///
    /// Work is split across cores by (batch, head). Within a head, rows are
    /// processed in blocks of `AttentionKernel.rowBlock` queries: scores for a
    /// block are one small GEMM against the keys it may see (the causal
    /// triangle, never the masked upper part), softmaxed in place, then one
    /// GEMM with V. Forward keeps only each row's log-sum-exp (B·H·T floats);
    /// backward recomputes the probabilities block by block, so no T×T matrix
    /// per head outlives the kernel.
    ///
    /// With `dropout` > 0, attention probabilities are dropped (and the kept
    /// ones scaled by 1/(1−p)) as nanoGPT does; the mask comes from a counter
    /// hash of (`seed`, position), so backward regenerates it instead of storing it.
    public func causalSelfAttention(heads: Int, dropout: Float = 0, seed: UInt64 = 0) -> Tensor {
        precondition(rank == 3 && shape[2] % 3 == 0, "attention expects qkv of shape (B, T, 3C), got \(shape)")
        precondition(dropout >= 0 && dropout < 1, "attention dropout must be in [0, 1)")
        // Inside a data-parallel shard, mask positions count (batch, head) pairs from the
        // start of the whole batch (see `ShardRows`).
        let geo = AttentionKernel.Geometry(b: shape[0], t: shape[1], c: shape[2] / 3, heads: heads,
                                           dropout: dropout, seed: seed, firstPair: ShardRows.elementOffset(shape[0]) * heads)
        let out = Tensor(uninitialized: [geo.b, geo.t, geo.c])
        let lse = Tensor(uninitialized: [geo.b, heads, geo.t])
        AttentionKernel.forward(geo, qkv: data, out: out.data, lse: lse.data)
        return out.record([self]) { [unowned out] g in
            // A fresh gradient is written, not zero-filled first (each head zeroes its own rows).
            self.withGrad { dqkv, beta in
                AttentionKernel.backward(geo, qkv: self.data, out: out.data, lse: lse.data, dout: g.data, dqkv: dqkv,
                                         accumulate: beta != 0)
            }
        }
    }
}

/// The attention kernels: forward and backward side by side.
public enum AttentionKernel {
    /// Query rows per block (one GEMM each).
    static let rowBlock = 32

    /// Shapes of one attention call.
    struct Geometry {
        let b: Int, t: Int, c: Int, heads: Int
        /// Attention-probability dropout and the seed of its mask.
        let dropout: Float, seed: UInt64
        /// Index of this call's first (batch, head) pair in the mask's positions.
        let firstPair: Int
        var hs: Int { c / heads }
        var c3: Int { 3 * c }
        var scale: Float { 1 / Float(hs).squareRoot() }
        init(b: Int, t: Int, c: Int, heads: Int, dropout: Float = 0, seed: UInt64 = 0, firstPair: Int = 0) {
            precondition(heads > 0 && c % heads == 0, "\(c) channels do not split into \(heads) heads")
            self.b = b; self.t = t; self.c = c; self.heads = heads; self.dropout = dropout; self.seed = seed
            self.firstPair = firstPair
        }

        /// The mask is a 32-bit counter hash (murmur3's finalizer, as `Kernels.dropout`) of
        /// position (bh·t + i)·t + j under a key from the seed, 8 lanes at a time.
        var key: SIMD8<UInt32> {
            var z = seed &* 0x9E37_79B9_7F4A_7C15
            z ^= z >> 32
            return SIMD8(repeating: UInt32(truncatingIfNeeded: z))
        }

        /// 1/(1−p) in each lane whose position is kept, 0 where dropped.
        @inline(__always) func keep8(_ position: SIMD8<UInt32>, key: SIMD8<UInt32>) -> F8 {
            let h = mix8(position ^ key)
            let u = unsafeBitCast(SIMD8<UInt32>(repeating: 0x3F80_0000) | (h &>> 9), to: F8.self) - 1
            let dropped = unsafeBitCast(u - F8(repeating: dropout), to: SIMD8<UInt32>.self) &>> 31
            return unsafeBitCast((dropped &- 1) & SIMD8(repeating: (1 / (1 - dropout)).bitPattern), to: F8.self)
        }

        /// Positions (bh, i, j + 0…7).
        @inline(__always) func positions(_ bh: Int, _ i: Int, _ j: Int) -> SIMD8<UInt32> {
            SIMD8(repeating: UInt32(truncatingIfNeeded: ((firstPair + bh) * t + i) * t + j)) &+ SIMD8(0, 1, 2, 3, 4, 5, 6, 7)
        }

        /// row[j] ·= keep(bh, i, j) for j < count (forward's dropped probabilities).
        @inline(__always) func dropRow(_ bh: Int, _ i: Int, _ row: UnsafeMutablePointer<Float>, count: Int) {
            let k = key
            var j = 0
            while j < count {
                let f = keep8(positions(bh, i, j), key: k)
                if j + 8 <= count {
                    store8(load8(row + j) * f, row + j)
                } else {
                    for l in 0..<(count - j) { row[j + l] *= f[l] }
                }
                j += 8
            }
        }

        /// Backward's dS for one row, with the mask: dp holds dP′ = dO Vᵀ on entry and dS on
        /// exit; p holds P on entry and P′ = P·keep (for dV) on exit. Entries count..<width of
        /// dS are zeroed (masked keys).
        @inline(__always) func dropoutScores(_ bh: Int, _ i: Int, p: UnsafeMutablePointer<Float>, dp: UnsafeMutablePointer<Float>,
                                             d: Float, count: Int, width: Int) {
            let k = key, dv = F8(repeating: d)
            var j = 0
            while j < count {
                let m = keep8(positions(bh, i, j), key: k)
                if j + 8 <= count {
                    let pv = load8(p + j)
                    store8(pv * (load8(dp + j) * m - dv), dp + j)
                    store8(pv * m, p + j)
                } else {
                    for l in 0..<(count - j) {
                        dp[j + l] = p[j + l] * (dp[j + l] * m[l] - d)
                        p[j + l] *= m[l]
                    }
                }
                j += 8
            }
            if width > count { (dp + count).update(repeating: 0, count: width - count) }
        }
    }

    /// Scores of rows r0..<r1 against keys 0..<r1 into p (ld t), softmaxed per
    /// row over its visible keys (j ≤ i); entries j > i are set to 0.
    /// Returns nothing; writes each row's log-sum-exp into `lse` when given.
    @inline(__always)
    static func probabilities(_ g: Geometry, q: UnsafePointer<Float>, k: UnsafePointer<Float>, r0: Int, r1: Int,
                              p: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>?, known: UnsafePointer<Float>?) {
        let t = g.t
        GEMM.sgemm(transA: false, transB: true, m: r1 - r0, n: r1, k: g.hs, alpha: g.scale,
                   a: q + r0 * g.c3, lda: g.c3, b: k, ldb: g.c3, c: p, ldc: t)
        for i in r0..<r1 {
            let row = p + (i - r0) * t
            let visible = i + 1
            if let known {
                _ = Kernels.expShiftSum8(row, visible, minus: known[i])
            } else {
                var m = -Float.infinity
                for j in 0..<visible where row[j] > m { m = row[j] }
                let sum = Kernels.expShiftSum8(row, visible, minus: m)
                let inv = 1 / sum
                for j in 0..<visible { row[j] *= inv }
                lse![i] = m + _logf(sum)
            }
            if visible < r1 { (row + visible).update(repeating: 0, count: r1 - visible) }
        }
    }

    /// out = softmax(mask(Q Kᵀ / √hs)) V per (batch, head); lse per row.
    static func forward(_ g: Geometry, qkv: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>) {
        let (t, c, hs) = (g.t, g.c, g.hs)
        parallelFor(g.b * g.heads) { range in
            let p = Scratch.buffer(0, count: rowBlock * t)
            for bh in range {
                let bi = bh / g.heads, h = bh % g.heads
                let q = qkv + bi * t * g.c3 + h * hs, k = q + c, v = q + 2 * c
                let o = out + bi * t * c + h * hs
                var r0 = 0
                while r0 < t {
                    let r1 = Swift.min(t, r0 + rowBlock)
                    probabilities(g, q: q, k: k, r0: r0, r1: r1, p: p, lse: lse + bh * t, known: nil)
                    if g.dropout > 0 {
                        for i in r0..<r1 { g.dropRow(bh, i, p + (i - r0) * t, count: i + 1) }
                    }
                    GEMM.sgemm(transA: false, transB: false, m: r1 - r0, n: hs, k: r1,
                               a: p, lda: t, b: v, ldb: g.c3, c: o + r0 * c, ldc: c)
                    r0 = r1
                }
            }
        }
    }

    /// Gradients of Q, K, V (accumulated into dqkv) from dout.
    /// With P recomputed from lse: dP = dO Vᵀ, dS = P ⊙ (dP − rowsum(dO ⊙ O)),
    /// dQ += dS K / √hs, dK += dSᵀ Q / √hs, dV += Pᵀ dO (P and dP through the
    /// dropout mask when there is one).
    static func backward(_ g: Geometry, qkv: UnsafePointer<Float>, out: UnsafePointer<Float>, lse: UnsafePointer<Float>,
                         dout: UnsafePointer<Float>, dqkv: UnsafeMutablePointer<Float>, accumulate: Bool = true) {
        let (t, c, hs) = (g.t, g.c, g.hs)
        parallelFor(g.b * g.heads) { range in
            let p = Scratch.buffer(0, count: rowBlock * t)
            let dp = Scratch.buffer(1, count: rowBlock * t)
            for bh in range {
                let bi = bh / g.heads, h = bh % g.heads
                let q = qkv + bi * t * g.c3 + h * hs, k = q + c, v = q + 2 * c
                let dq = dqkv + bi * t * g.c3 + h * hs, dk = dq + c, dv = dq + 2 * c
                let o = out + bi * t * c + h * hs, dO = dout + bi * t * c + h * hs
                var r0 = 0
                while r0 < t {
                    let r1 = Swift.min(t, r0 + rowBlock), rb = r1 - r0
                    probabilities(g, q: q, k: k, r0: r0, r1: r1, p: p, lse: nil, known: lse + bh * t)
                    GEMM.sgemm(transA: false, transB: true, m: rb, n: r1, k: hs,
                               a: dO + r0 * c, lda: c, b: v, ldb: g.c3, c: dp, ldc: t)
                    for i in r0..<r1 {
                        // D_i = dO_i·O_i = Σ_j P′_ij dP′_ij, so dropout leaves it unchanged.
                        let d = Kernels.dot(dO + i * c, o + i * c, hs)
                        let pr = p + (i - r0) * t, dpr = dp + (i - r0) * t
                        if g.dropout > 0 {
                            // dP = dP′·keep; p becomes P′ = P·keep for dV.
                            g.dropoutScores(bh, i, p: pr, dp: dpr, d: d, count: i + 1, width: r1)
                        } else {
                            // dS (zero where masked: p = 0).
                            let dv = F8(repeating: d)
                            var j = 0
                            while j + 8 <= r1 { store8(load8(pr + j) * (load8(dpr + j) - dv), dpr + j); j += 8 }
                            while j < r1 { dpr[j] = pr[j] * (dpr[j] - d); j += 1 }
                        }
                    }
                    if !accumulate {
                        // Key rows r0..<r1 are first reached by this block: start them at zero.
                        for i in r0..<r1 {
                            (dk + i * g.c3).update(repeating: 0, count: hs)
                            (dv + i * g.c3).update(repeating: 0, count: hs)
                        }
                    }
                    // Query rows r0..<r1 get all of their gradient from this block.
                    GEMM.sgemm(transA: false, transB: false, m: rb, n: hs, k: r1, alpha: g.scale,
                               a: dp, lda: t, b: k, ldb: g.c3, beta: accumulate ? 1 : 0, c: dq + r0 * g.c3, ldc: g.c3)
                    GEMM.sgemm(transA: true, transB: false, m: r1, n: hs, k: rb, alpha: g.scale,
                               a: dp, lda: t, b: q + r0 * g.c3, ldb: g.c3, beta: 1, c: dk, ldc: g.c3)
                    GEMM.sgemm(transA: true, transB: false, m: r1, n: hs, k: rb,
                               a: p, lda: t, b: dO + r0 * c, ldb: c, beta: 1, c: dv, ldc: g.c3)
                    r0 = r1
                }
            }
        }
    }
}
