/// The unpacked GEMM path: tiny products (attention's per-head blocks) and skinny shapes
/// (m or n below a tile, e.g. one token's projections while generating), where packing
/// would cost more than it saves.
extension GEMMDriver {
    /// Scratch slot for Bᵀ (other slots belong to the kernels that call GEMM).
    static let transposeSlot = 7

    /// C[rows, cols] = alpha·op(A)·op(B) + beta·C without packing.
    static func direct(_ g: GEMMArgs, rows: Range<Int>, cols: Range<Int>) {
        let k = g.k, j0 = cols.lowerBound, w = cols.count
        if w == 0 || rows.isEmpty { return }
        guard g.transB else { rowKernel(g, rows, column: j0, width: w, b: g.b + j0, ldb: g.ldb); return }
        if rows.count >= 4 && w >= 8 && k * w <= 16_384 {
            // Several rows share Bᵀ: transpose it once (≤ 64 KiB, stays in L2) and use the
            // register-accumulating row kernel instead of one short dot product per element.
            rowKernel(g, rows, column: j0, width: w, b: transposedB(g, columns: j0, width: w), ldb: w)
            return
        }
        // One row (generation's x·Wᵀ): each element is a dot product of contiguous rows.
        let alpha = g.alpha, beta = g.beta
        for i in rows {
            let ci = g.c + i * g.ldc
            @inline(__always) func store(_ j: Int, _ s: Float) { ci[j] = beta == 0 ? alpha * s : alpha * s + beta * ci[j] }
            if !g.transA {
                // x is loaded once for four rows of B, and four streams per core keep more of
                // memory's bandwidth busy (decode is memory-bound).
                let x = g.a + i * g.lda
                fourRowGroups(cols, four: { j, ld in
                    let s = dot4(x, g.b + j * g.ldb, ld * g.ldb, k)
                    for q in 0..<4 { store(j + q * ld, s[q]) }
                }, one: { j in store(j, dot(x, g.b + j * g.ldb, k)) })
                continue
            }
            for j in cols {
                let bj = g.b + j * g.ldb
                var s: Float
                if !g.transA {
                    s = dot(g.a + i * g.lda, bj, k)
                } else {
                    s = 0
                    for p in 0..<k { s += g.a[p * g.lda + i] * bj[p] }
                }
                store(j, s)
            }
        }
    }

    /// The four-row order of one-row products over columns `cols` (rows of B): `four(j, ld)`
    /// for rows j + q·ld, q < 4, then `one(j)` for the last few. In each whole 128 the four
    /// rows are 32 apart, so each of the four memory streams runs on through 32 consecutive
    /// rows (96 KiB at GPT-2's width) instead of restarting after one (decode
    /// 1.17–1.29× the adjacent-rows order, since deleted). Shared by fp32 and the decode copies.
    @inline(__always)
    static func fourRowGroups(_ cols: Range<Int>, four: (Int, Int) -> Void, one: (Int) -> Void) {
        var j = cols.lowerBound
        while j + 128 <= cols.upperBound {
            for r in j..<(j + 32) { four(r, 32) }
            j += 128
        }
        while j + 4 <= cols.upperBound { four(j, 1); j += 4 }
        while j < cols.upperBound { one(j); j += 1 }
    }

    /// Skinny products (m ≤ `GEMMTuning.skinnyRows`) on `threads` threads, by column chunks
    /// (rows of Bᵀ, a weight matrix while generating).
    static func skinnyChunks(_ g: GEMMArgs, threads: Int) {
        forEachColumnChunk(n: g.n, k: g.k, threads: threads) { direct(g, rows: 0..<g.m, cols: $0) }
    }

    /// Runs `body` on 128-column chunks of 0..<n (one group of `fourRowGroups`' streams)
    /// taken from a counter by up to `threads` threads: a fixed half per thread left one core
    /// idle whenever the other was slowed. One thread below 64k weights (k·n), where the
    /// hand-off costs more than a second core's bandwidth gives.
    static func forEachColumnChunk(n: Int, k: Int, threads: Int, _ body: (Range<Int>) -> Void) {
        let chunk = 128, tasks = (n + chunk - 1) / chunk
        let counter = GEMMScratch.current
        counter.nextTask.store(0, ordering: .relaxed)
        parallelFor(n * k < 1 << 16 ? 1 : Swift.min(threads, tasks)) { range in
            for _ in range {
                while true {
                    let t = counter.nextTask.wrappingAdd(1, ordering: .relaxed).oldValue
                    if t >= tasks { break }
                    body((t * chunk)..<Swift.min(n, (t + 1) * chunk))
                }
            }
        }
    }

    /// Columns j0..<j0+w of op(B) = Bᵀ (rows of b) as k rows of w floats in scratch: 8×8
    /// blocks where whole, single floats at the edges.
    static func transposedB(_ g: GEMMArgs, columns j0: Int, width w: Int) -> UnsafeMutablePointer<Float> {
        let k = g.k, bt = Scratch.buffer(transposeSlot, count: k * w), src = g.b + j0 * g.ldb
        let w8 = w / 8 * 8, k8 = k / 8 * 8
        for j in stride(from: 0, to: w8, by: 8) {
            for p in stride(from: 0, to: k8, by: 8) { transpose8x8(src + j * g.ldb + p, g.ldb, bt + p * w + j, w, 1) }
        }
        for j in 0..<w {
            let row = src + j * g.ldb
            for p in (j < w8 ? k8 : 0)..<k { bt[p * w + j] = row[p] }
        }
        return bt
    }

    /// C[i, c0 + j] = alpha·Σ_p op(A)(i, p)·b[p·ldb + j] + beta·C[i, c0 + j] for j in 0..<w, with
    /// 32 (then 8) columns of each row accumulated in registers over all of k and stored once.
    @inline(__always)
    static func rowKernel(_ g: GEMMArgs, _ rows: Range<Int>, column c0: Int, width w: Int, b: UnsafePointer<Float>, ldb: Int) {
        let k = g.k, alpha = g.alpha, beta = g.beta
        let ps = g.transA ? g.lda : 1  // stride of op(A) along p
        for i in rows {
            let ai = g.transA ? g.a + i : g.a + i * g.lda
            let ci = g.c + i * g.ldc + c0
            var jb = 0
            while jb + 32 <= w {
                var a0 = V8(), a1 = V8(), a2 = V8(), a3 = V8()
                var bp = UnsafeRawPointer(b + jb)
                for p in 0..<k {
                    let x = V8(repeating: ai[p * ps])
                    a0 = a0.addingProduct(x, bp.loadUnaligned(as: V8.self))
                    a1 = a1.addingProduct(x, bp.loadUnaligned(fromByteOffset: 32, as: V8.self))
                    a2 = a2.addingProduct(x, bp.loadUnaligned(fromByteOffset: 64, as: V8.self))
                    a3 = a3.addingProduct(x, bp.loadUnaligned(fromByteOffset: 96, as: V8.self))
                    bp += ldb * 4
                }
                finish(a0, ci + jb, alpha, beta); finish(a1, ci + jb + 8, alpha, beta)
                finish(a2, ci + jb + 16, alpha, beta); finish(a3, ci + jb + 24, alpha, beta)
                jb += 32
            }
            while jb + 8 <= w {
                var a0 = V8()
                var bp = UnsafeRawPointer(b + jb)
                for p in 0..<k {
                    a0 = a0.addingProduct(V8(repeating: ai[p * ps]), bp.loadUnaligned(as: V8.self))
                    bp += ldb * 4
                }
                finish(a0, ci + jb, alpha, beta)
                jb += 8
            }
            while jb < w {
                var s: Float = 0
                for p in 0..<k { s += ai[p * ps] * b[p * ldb + jb] }
                ci[jb] = beta == 0 ? alpha * s : alpha * s + beta * ci[jb]
                jb += 1
            }
        }
    }

    /// c[0..<8] = alpha·acc + beta·c (C is not read when beta is 0: it may be uninitialised).
    @inline(__always) static func finish(_ acc: V8, _ c: UnsafeMutablePointer<Float>, _ alpha: Float, _ beta: Float) {
        let r = UnsafeMutableRawPointer(c)
        let v = beta == 0 ? acc * alpha : (acc * alpha).addingProduct(r.loadUnaligned(as: V8.self), V8(repeating: beta))
        r.storeBytes(of: v, as: V8.self)
    }

    @inline(__always) static func scaleRow(_ c: UnsafeMutablePointer<Float>, _ n: Int, _ beta: Float) {
        if beta == 1 { return }
        if beta == 0 { c.update(repeating: 0, count: n); return }
        var j = 0
        let r = UnsafeMutableRawPointer(c)
        while j + 8 <= n {
            r.storeBytes(of: r.loadUnaligned(fromByteOffset: j * 4, as: V8.self) * beta, toByteOffset: j * 4, as: V8.self)
            j += 8
        }
        while j < n { c[j] *= beta; j += 1 }
    }

    /// x·y₀ … x·y₃ for four rows y_q = y + q·ldy of n floats: one accumulator per row of y,
    /// 8 floats a step, as each row of `dots3x4` (so a row's product is the same in a batch
    /// of rows as alone). Decode is memory-bound: four FMA chains outrun memory.
    @inline(__always) static func dot4(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ ldy: Int, _ n: Int) -> SIMD4<Float> {
        let rx = UnsafeRawPointer(x)
        let r0 = UnsafeRawPointer(y), r1 = UnsafeRawPointer(y + ldy), r2 = UnsafeRawPointer(y + 2 * ldy), r3 = UnsafeRawPointer(y + 3 * ldy)
        var a0 = V8(), a1 = V8(), a2 = V8(), a3 = V8()
        var o = 0
        let end = n / 8 * 32
        while o < end {
            let u = rx.loadUnaligned(fromByteOffset: o, as: V8.self)
            a0 = a0.addingProduct(u, r0.loadUnaligned(fromByteOffset: o, as: V8.self))
            a1 = a1.addingProduct(u, r1.loadUnaligned(fromByteOffset: o, as: V8.self))
            a2 = a2.addingProduct(u, r2.loadUnaligned(fromByteOffset: o, as: V8.self))
            a3 = a3.addingProduct(u, r3.loadUnaligned(fromByteOffset: o, as: V8.self))
            o += 32
        }
        var s = horizontalSums(a0, a1, a2, a3)
        for p in (n / 8 * 8)..<n {
            s += x[p] * SIMD4(y[p], y[ldy + p], y[2 * ldy + p], y[3 * ldy + p])
        }
        return s
    }

    @inline(__always) static func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) -> Float {
        let rx = UnsafeRawPointer(x), ry = UnsafeRawPointer(y)
        var a0 = V8(), a1 = V8(), a2 = V8(), a3 = V8()
        var p = 0
        while p + 32 <= n {
            a0 = a0.addingProduct(rx.loadUnaligned(fromByteOffset: p * 4, as: V8.self), ry.loadUnaligned(fromByteOffset: p * 4, as: V8.self))
            a1 = a1.addingProduct(rx.loadUnaligned(fromByteOffset: p * 4 + 32, as: V8.self), ry.loadUnaligned(fromByteOffset: p * 4 + 32, as: V8.self))
            a2 = a2.addingProduct(rx.loadUnaligned(fromByteOffset: p * 4 + 64, as: V8.self), ry.loadUnaligned(fromByteOffset: p * 4 + 64, as: V8.self))
            a3 = a3.addingProduct(rx.loadUnaligned(fromByteOffset: p * 4 + 96, as: V8.self), ry.loadUnaligned(fromByteOffset: p * 4 + 96, as: V8.self))
            p += 32
        }
        while p + 8 <= n {
            a0 = a0.addingProduct(rx.loadUnaligned(fromByteOffset: p * 4, as: V8.self), ry.loadUnaligned(fromByteOffset: p * 4, as: V8.self))
            p += 8
        }
        // Explicit horizontal sum: the generic `SIMD.sum()` is an out-of-line call.
        let v = (a0 + a1) + (a2 + a3)
        var s = ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]))
        while p < n { s += x[p] * y[p]; p += 1 }
        return s
    }
}
