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
            let bt = Scratch.buffer(transposeSlot, count: k * w)
            for j in 0..<w {
                let src = g.b + (j0 + j) * g.ldb
                for p in 0..<k { bt[p * w + j] = src[p] }
            }
            rowKernel(g, rows, column: j0, width: w, b: bt, ldb: w)
            return
        }
        // One row (generation's x·Wᵀ): each element is a dot product of contiguous rows.
        let alpha = g.alpha, beta = g.beta
        for i in rows {
            let ci = g.c + i * g.ldc
            for j in cols {
                let bj = g.b + j * g.ldb
                var s: Float
                if !g.transA {
                    s = dot(g.a + i * g.lda, bj, k)
                } else {
                    s = 0
                    for p in 0..<k { s += g.a[p * g.lda + i] * bj[p] }
                }
                ci[j] = beta == 0 ? alpha * s : alpha * s + beta * ci[j]
            }
        }
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
