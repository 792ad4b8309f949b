/// Products of a few rows by a weight matrix stored (out, in): C = x·Wᵀ with 5–48 rows of
/// x (`GEMMTuning.fewRowsMax`), as in a prompt's prefill or scoring a short text.
///
/// The packed path copies (and transposes) every weight into panels before multiplying:
/// for a handful of rows that copy costs as much as the arithmetic (`bench generate`'s
/// 16-token prefill: packing ≈ half of the time). Here each element of C is a dot product
/// of two rows that are contiguous along k, taken three rows of x by four rows of W at a
/// time: 12 accumulators, 7 loads per 12 multiply-adds, the four W rows (12 KiB at GPT-2's
/// width) kept in L1 while the rows of x go by from L2. W is read once, straight from memory.
/// (Two rows of x by four, 8 accumulators, ran at ≈ 47% of the FMA peak against ≈ 60–75%.)
///
/// A row's sums do not depend on the other rows: `dots3x4` and `dot4` accumulate each
/// (row of x, row of W) pair alike, so row-invariant products (batched decoding) use this
/// path for any number of rows.
extension GEMMDriver {
    /// Whether `sgemm` sends a product to `fewRows`: x·Wᵀ with A not transposed, more rows
    /// than the skinny path takes, at most `GEMMTuning.fewRowsMax`, and a weight-sized B.
    @inline(__always)
    static func takesFewRows(_ g: GEMMArgs) -> Bool {
        !g.transA && g.transB && g.m > g.tuning.skinnyRows && g.m <= g.tuning.fewRowsMax
            && g.k * g.n >= 1 << 16 && g.k >= 8
    }

    /// C = alpha·A·Bᵀ (+ bias) + beta·C by 128-column chunks taken from a counter.
    static func fewRows(_ g: GEMMArgs, threads: Int) {
        forEachColumnChunk(n: g.n, k: g.k, threads: threads) { fewRowsBlock(g, cols: $0) }
    }

    /// Columns `cols` of C for all rows: groups of four rows of B, each against the rows of A
    /// three at a time (the last one or two through `dot4`, the last few columns
    /// of C through `dot`).
    @inline(__always)
    static func fewRowsBlock(_ g: GEMMArgs, cols: Range<Int>) {
        let m = g.m, k = g.k
        // Columns j, j + ld, j + 2·ld, j + 3·ld of row i.
        @inline(__always) func store(_ i: Int, _ j: Int, _ ld: Int, _ s: SIMD4<Float>) {
            let ci = g.c + i * g.ldc + j
            var v = s * g.alpha
            if let bias = g.bias { v += SIMD4(bias[j], bias[j + ld], bias[j + 2 * ld], bias[j + 3 * ld]) }
            if g.beta != 0 { v += g.beta * SIMD4(ci[0], ci[ld], ci[2 * ld], ci[3 * ld]) }
            ci[0] = v[0]; ci[ld] = v[1]; ci[2 * ld] = v[2]; ci[3 * ld] = v[3]
        }
        // Four rows of W at a time in the one-row path's order (`fourRowGroups`), each against
        // the rows of x three at a time: a row's sums are the same whatever m is.
        fourRowGroups(cols, four: { j, ld in
            let w = g.b + j * g.ldb, ldw = ld * g.ldb
            var i = 0
            while i + 3 <= m {
                let (s0, s1, s2) = dots3x4(g.a + i * g.lda, g.lda, w, ldw, k)
                store(i, j, ld, s0); store(i + 1, j, ld, s1); store(i + 2, j, ld, s2)
                i += 3
            }
            while i < m { store(i, j, ld, dot4(g.a + i * g.lda, w, ldw, k)); i += 1 }
        }, one: { j in
            for i in 0..<m {
                let ci = g.c + i * g.ldc + j
                let s = g.alpha * dot(g.a + i * g.lda, g.b + j * g.ldb, k) + (g.bias?[j] ?? 0)
                ci[0] = g.beta == 0 ? s : s + g.beta * ci[0]
            }
        })
    }

    /// x_r·w_q for three rows x_r = x + r·ldx and four rows w_q = w + q·ldw, n floats each:
    /// 12 accumulators, 3 + 1 registers for the loaded rows (all 16 ymm).
    @inline(__always)
    static func dots3x4(_ x: UnsafePointer<Float>, _ ldx: Int, _ w: UnsafePointer<Float>, _ ldw: Int,
                        _ n: Int) -> (SIMD4<Float>, SIMD4<Float>, SIMD4<Float>) {
        let x0 = UnsafeRawPointer(x), x1 = UnsafeRawPointer(x + ldx), x2 = UnsafeRawPointer(x + 2 * ldx)
        let w0 = UnsafeRawPointer(w), w1 = UnsafeRawPointer(w + ldw)
        let w2 = UnsafeRawPointer(w + 2 * ldw), w3 = UnsafeRawPointer(w + 3 * ldw)
        var a0 = V8(), a1 = V8(), a2 = V8(), a3 = V8(), b0 = V8(), b1 = V8(), b2 = V8(), b3 = V8()
        var c0 = V8(), c1 = V8(), c2 = V8(), c3 = V8()
        var o = 0
        let end = n / 8 * 32
        while o < end {
            let u = x0.loadUnaligned(fromByteOffset: o, as: V8.self), v = x1.loadUnaligned(fromByteOffset: o, as: V8.self)
            let z = x2.loadUnaligned(fromByteOffset: o, as: V8.self)
            var t = w0.loadUnaligned(fromByteOffset: o, as: V8.self)
            a0 = a0.addingProduct(u, t); b0 = b0.addingProduct(v, t); c0 = c0.addingProduct(z, t)
            t = w1.loadUnaligned(fromByteOffset: o, as: V8.self)
            a1 = a1.addingProduct(u, t); b1 = b1.addingProduct(v, t); c1 = c1.addingProduct(z, t)
            t = w2.loadUnaligned(fromByteOffset: o, as: V8.self)
            a2 = a2.addingProduct(u, t); b2 = b2.addingProduct(v, t); c2 = c2.addingProduct(z, t)
            t = w3.loadUnaligned(fromByteOffset: o, as: V8.self)
            a3 = a3.addingProduct(u, t); b3 = b3.addingProduct(v, t); c3 = c3.addingProduct(z, t)
            o += 32
        }
        var s0 = horizontalSums(a0, a1, a2, a3), s1 = horizontalSums(b0, b1, b2, b3)
        var s2 = horizontalSums(c0, c1, c2, c3)
        for p in (n / 8 * 8)..<n {
            let wp = SIMD4(w[p], w[ldw + p], w[2 * ldw + p], w[3 * ldw + p])
            s0 += x[p] * wp; s1 += x[ldx + p] * wp; s2 += x[2 * ldx + p] * wp
        }
        return (s0, s1, s2)
    }
}
