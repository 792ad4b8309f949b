/// The CPU kernels' dropout mask (a counter hash, 8 lanes at a time).
extension AttentionGeometry {
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

/// The attention kernels: forward and backward side by side.
public enum AttentionKernel {
    typealias Geometry = AttentionGeometry
    /// Query rows per block (one GEMM each).
    static let rowBlock = 32

    /// Scores of rows r0..<r1 against keys 0..<r1 into p (ld t), softmaxed per
    /// row over its visible keys (j ≤ i); entries j > i are set to 0.
    /// Returns nothing; writes each row's log-sum-exp into `lse` when given.
    @inline(__always)
    static func probabilities(_ g: Geometry, q: UnsafePointer<Float>, k: UnsafePointer<Float>, r0: Int, r1: Int,
                              p: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>?, known: UnsafePointer<Float>?) {
        let t = g.t
        GEMM.sgemm(transA: false, transB: true, m: r1 - r0, n: r1, k: g.hs, alpha: g.scale,
                   a: q + r0 * g.ldq, lda: g.ldq, b: k, ldb: g.ldk, c: p, ldc: t)
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
    static func forward(_ g: Geometry, q qBase: UnsafePointer<Float>, k kBase: UnsafePointer<Float>, v vBase: UnsafePointer<Float>,
                        out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>) {
        let (t, c, hs) = (g.t, g.c, g.hs)
        parallelFor(g.b * g.heads) { range in
            let p = Scratch.buffer(0, count: rowBlock * t)
            for bh in range {
                let bi = bh / g.heads, h = bh % g.heads, kvh = h / g.group
                let q = qBase + bi * t * g.ldq + h * hs
                let k = kBase + bi * t * g.ldk + kvh * hs, v = vBase + bi * t * g.ldv + kvh * hs
                let o = out + bi * t * c + h * hs
                var r0 = 0
                while r0 < t {
                    let r1 = Swift.min(t, r0 + rowBlock)
                    probabilities(g, q: q, k: k, r0: r0, r1: r1, p: p, lse: lse + bh * t, known: nil)
                    if g.dropout > 0 {
                        for i in r0..<r1 { g.dropRow(bh, i, p + (i - r0) * t, count: i + 1) }
                    }
                    GEMM.sgemm(transA: false, transB: false, m: r1 - r0, n: hs, k: r1,
                               a: p, lda: t, b: v, ldb: g.ldv, c: o + r0 * c, ldc: c)
                    r0 = r1
                }
            }
        }
    }

    /// Gradients of Q, K, V from dout, each into its buffer (`dq`, `dk`, `dv`: where, and
    /// whether to add to what is there or overwrite it).
    /// With P recomputed from lse: dP = dO Vᵀ, dS = P ⊙ (dP − rowsum(dO ⊙ O)),
    /// dQ += dS K / √hs, dK += dSᵀ Q / √hs, dV += Pᵀ dO (P and dP through the
    /// dropout mask when there is one). Work is split by (batch, key/value head): the query
    /// heads of a group add into the same dK and dV, one after another.
    static func backward(_ g: Geometry, q qBase: UnsafePointer<Float>, k kBase: UnsafePointer<Float>, v vBase: UnsafePointer<Float>,
                         out: UnsafePointer<Float>, lse: UnsafePointer<Float>, dout: UnsafePointer<Float>,
                         dq dqBase: (UnsafeMutablePointer<Float>, Bool), dk dkBase: (UnsafeMutablePointer<Float>, Bool),
                         dv dvBase: (UnsafeMutablePointer<Float>, Bool)) {
        let (t, c, hs) = (g.t, g.c, g.hs)
        parallelFor(g.b * g.kvHeads) { range in
            let p = Scratch.buffer(0, count: rowBlock * t)
            let dp = Scratch.buffer(1, count: rowBlock * t)
            for bkv in range {
                let bi = bkv / g.kvHeads, kvh = bkv % g.kvHeads
                let k = kBase + bi * t * g.ldk + kvh * hs, v = vBase + bi * t * g.ldv + kvh * hs
                let dk = dkBase.0 + bi * t * g.ldk + kvh * hs, dv = dvBase.0 + bi * t * g.ldv + kvh * hs
                for h in (kvh * g.group)..<((kvh + 1) * g.group) {
                    let bh = bi * g.heads + h
                    let q = qBase + bi * t * g.ldq + h * hs, dq = dqBase.0 + bi * t * g.ldq + h * hs
                    let o = out + bi * t * c + h * hs, dO = dout + bi * t * c + h * hs
                    let accumulateKV = (dkBase.1, dvBase.1, h > kvh * g.group)
                    var r0 = 0
                    while r0 < t {
                        let r1 = Swift.min(t, r0 + rowBlock), rb = r1 - r0
                        probabilities(g, q: q, k: k, r0: r0, r1: r1, p: p, lse: nil, known: lse + bh * t)
                        GEMM.sgemm(transA: false, transB: true, m: rb, n: r1, k: hs,
                                   a: dO + r0 * c, lda: c, b: v, ldb: g.ldv, c: dp, ldc: t)
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
                        // Key rows r0..<r1 are first reached by this block: start them at zero
                        // unless they hold a gradient to add to.
                        if !(accumulateKV.0 || accumulateKV.2) {
                            for i in r0..<r1 { (dk + i * g.ldk).update(repeating: 0, count: hs) }
                        }
                        if !(accumulateKV.1 || accumulateKV.2) {
                            for i in r0..<r1 { (dv + i * g.ldv).update(repeating: 0, count: hs) }
                        }
                        // Query rows r0..<r1 get all of their gradient from this block.
                        GEMM.sgemm(transA: false, transB: false, m: rb, n: hs, k: r1, alpha: g.scale,
                                   a: dp, lda: t, b: k, ldb: g.ldk, beta: dqBase.1 ? 1 : 0, c: dq + r0 * g.ldq, ldc: g.ldq)
                        GEMM.sgemm(transA: true, transB: false, m: r1, n: hs, k: rb, alpha: g.scale,
                                   a: dp, lda: t, b: q + r0 * g.ldq, ldb: g.ldq, beta: 1, c: dk, ldc: g.ldk)
                        GEMM.sgemm(transA: true, transB: false, m: r1, n: hs, k: rb,
                                   a: p, lda: t, b: dO + r0 * c, ldb: c, beta: 1, c: dv, ldc: g.ldv)
                        r0 = r1
                    }
                }
            }
        }
    }
}
