/// Small products on one thread with the packed path's micro-kernel but no packing:
/// attention's per-head blocks (T × T × head size) and a data-parallel shard's
/// projections. There, copying A and B into panels and finding this thread's packing
/// buffers cost as much as a good part of the arithmetic.
extension GEMMDriver {
    /// Whether `sgemm` sends a product on `threads` threads to `unpacked`: one thread, at
    /// least one whole tile, and at most `GEMMTuning.unpackedMaxWork` multiply-adds (a
    /// quarter of that when Bᵀ must first be copied into rows).
    @inline(__always)
    static func takesUnpacked(_ g: GEMMArgs, threads: Int, mr: Int, nr: Int) -> Bool {
        threads == 1 && g.m >= mr && g.n >= nr
            && g.m * g.n * g.k <= (g.transB ? g.tuning.unpackedMaxWork / 4 : g.tuning.unpackedMaxWork)
    }

    /// C = alpha·op(A)·op(B) (+ bias) + beta·C with A and B read where they are: the
    /// micro-kernel takes A's strides for either layout and B's row stride (Bᵀ is first
    /// transposed into scratch so its rows are contiguous). Edge tiles overlap the tile
    /// before them (m ≥ MR, n ≥ NR): with beta = 0 they are recomputed in place (the same
    /// values, bit for bit); otherwise they go to a scratch tile, of which only the rows and
    /// columns not yet written are added into C.
    static func unpacked<K: GEMMMicroKernel>(_ g: GEMMArgs, _: K.Type) {
        let MR = K.mr, NR = K.nr, m = g.m, n = g.n, k = g.k, ldc = g.ldc
        let b = g.transB ? UnsafePointer(transposedB(g, columns: 0, width: n)) : g.b, ldb = g.transB ? n : g.ldb
        let rowStride = g.transA ? 1 : g.lda, kStride = g.transA ? g.lda : 1
        let alpha = g.alpha, beta = g.beta, bStride = ldb * 4
        withUnsafeTemporaryAllocation(of: Float.self, capacity: MR * NR) { buffer in
            let tile = buffer.baseAddress!
            var ir = 0
            while ir < m {
                let i = Swift.min(ir, m - MR)
                let a = g.a + i * rowStride
                var jr = 0
                while jr < n {
                    let j = Swift.min(jr, n - NR)
                    let c = g.c + i * ldc + j, bias = g.bias.map { $0 + j }
                    if (i == ir && j == jr) || beta == 0 {
                        // An overlapping tile with beta = 0 rewrites the same values.
                        K.run(k, a, rowStride: rowStride, kStride: kStride, b + j, bStride: bStride, c, ldc, alpha, beta, bias)
                    } else {
                        K.run(k, a, rowStride: rowStride, kStride: kStride, b + j, bStride: bStride, tile, NR, alpha, 0, nil)
                        for r in (ir - i)..<MR { addRow(tile + r * NR, into: c + r * ldc, from: jr - j, to: NR, bias: bias, beta: beta) }
                    }
                    jr += NR
                }
                ir += MR
            }
        }
    }

    /// c[q] = t[q] + bias[q] + beta·c[q] for q in q0..<q1, eight at a time where q0 allows:
    /// left to itself the compiler folds this short loop into masked moves, which are
    /// microcoded on AMD cores (a third of the time of a 64×64×32 product).
    @inline(__always)
    static func addRow(_ t: UnsafePointer<Float>, into c: UnsafeMutablePointer<Float>, from q0: Int, to q1: Int,
                       bias: UnsafePointer<Float>?, beta: Float) {
        var q = q0
        if q % 8 == 0 {
            let rt = UnsafeRawPointer(t), rc = UnsafeMutableRawPointer(c), vb = V8(repeating: beta)
            while q + 8 <= q1 {
                var v = rt.loadUnaligned(fromByteOffset: 4 * q, as: V8.self)
                if let bias { v += UnsafeRawPointer(bias).loadUnaligned(fromByteOffset: 4 * q, as: V8.self) }
                rc.storeBytes(of: v.addingProduct(vb, rc.loadUnaligned(fromByteOffset: 4 * q, as: V8.self)),
                              toByteOffset: 4 * q, as: V8.self)
                q += 8
            }
        }
        while q < q1 {
            c[q] = t[q] + (bias?[q] ?? 0) + beta * c[q]
            q += 1
        }
    }
}
