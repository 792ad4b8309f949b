import Foundation
import Synchronization

// Goto/BLIS-style single-precision GEMM in pure Swift.
//
// Row-major C[m×n] = alpha·op(A)·op(B) + beta·C. The micro-kernel keeps an
// MR×NR tile of C in vector registers: each k step loads one NR-wide row of
// packed B (vectors along n) and broadcasts MR values of packed A.
//
// Loop nest:
//   ic: row block     → A packed for the whole depth k (alpha folded in), L3
//   jc: NC columns    → B block KC×NC packed once per (jc, pc), lives in L2
//   pc: KC depth
//   ir: MR rows       → one MR×KC micro-panel of A, stays in L1
//   jr: NR columns    → micro-kernel; streams KC×NR micro-panels of B from L2
//
// Two micro-kernels, chosen at run time from what the CPU offers (the package
// is built with `-target-cpu native`, so the build machine is the run machine):
//   • 8×32 with SIMD16<Float> (16 zmm accumulators) on AVX-512,
//   • 6×16 with SIMD8<Float>  (12 ymm accumulators) on AVX2/FMA (16 registers).
// FMAs are written as `addingProduct`: `c + a*b` is NOT contracted by swiftc
// (it stays vmulps + vaddps).

// MARK: - Driver

struct GEMMArgs {
    var transA: Bool, transB: Bool
    var m: Int, n: Int, k: Int
    var alpha: Float
    var a: UnsafePointer<Float>, lda: Int
    var b: UnsafePointer<Float>, ldb: Int
    var beta: Float
    var c: UnsafeMutablePointer<Float>, ldc: Int
    /// Added to every row of C (n floats), or nil.
    var bias: UnsafePointer<Float>? = nil
    /// Rows computed independently of m (see `GEMMProblem.rowInvariant`): the few-rows path.
    var rowInvariant = false
    /// The rules that pick the path and the blocks.
    var tuning = GEMMTuning.current
}

@inline(__always) private func roundUp(_ x: Int, _ r: Int) -> Int { (x + r - 1) / r * r }

/// Transposes an 8×8 block: dst[q·ldd + r] = s · src[r·lds + q] (8 floats stored per q).
/// Three rounds of even/odd unzips over row pairs (each a rotate of the 6-bit index).
/// With `last` < 7 only rows 0...last are read (the rest repeat row `last`); outputs are
/// still 8 wide, so with ldd < 8 each store spills into the next one (written in order).
@inline(__always)
func transpose8x8(_ src: UnsafePointer<Float>, _ lds: Int,
                          _ dst: UnsafeMutablePointer<Float>, _ ldd: Int, _ s: Float, last: Int = 7) {
    let p = UnsafeRawPointer(src), q = UnsafeMutableRawPointer(dst), ls = lds * 4, lq = ldd * 4
    var r0: V8 = ld(p, 0, V8.self), r1: V8 = ld(p, ls, V8.self)
    var r2: V8 = ld(p, 2 * ls, V8.self), r3: V8 = ld(p, 3 * ls, V8.self)
    var r4: V8 = ld(p, 4 * ls, V8.self), r5: V8 = ld(p, min(5, last) * ls, V8.self)
    var r6: V8 = ld(p, min(6, last) * ls, V8.self), r7: V8 = ld(p, min(7, last) * ls, V8.self)
    for _ in 0..<3 {
        let z0 = SIMD16(lowHalf: r0, highHalf: r1), z1 = SIMD16(lowHalf: r2, highHalf: r3)
        let z2 = SIMD16(lowHalf: r4, highHalf: r5), z3 = SIMD16(lowHalf: r6, highHalf: r7)
        r0 = z0.evenHalf; r1 = z1.evenHalf; r2 = z2.evenHalf; r3 = z3.evenHalf
        r4 = z0.oddHalf; r5 = z1.oddHalf; r6 = z2.oddHalf; r7 = z3.oddHalf
    }
    if s != 1 {
        let v = V8(repeating: s)
        r0 *= v; r1 *= v; r2 *= v; r3 *= v; r4 *= v; r5 *= v; r6 *= v; r7 *= v
    }
    st(r0, q, 0); st(r1, q, lq); st(r2, q, 2 * lq); st(r3, q, 3 * lq)
    st(r4, q, 4 * lq); st(r5, q, 5 * lq); st(r6, q, 6 * lq); st(r7, q, 7 * lq)
}

enum GEMMDriver {
    /// Packs op(A)[i0..<i0+mc, p0..<p0+kc]·alpha into MR-row micro-panels (kc×MR each, zero-padded).
    @inline(__always)
    static func packA(_ g: GEMMArgs, _ mr: Int, _ i0: Int, _ mc: Int, _ p0: Int, _ kc: Int,
                      _ dst: UnsafeMutablePointer<Float>) {
        if g.transA {
            packATransposed(g, mr, i0, mc, p0, kc, dst)
            return
        }
        let alpha = g.alpha
        var d = dst
        var i = 0
        while i < mc {
            let rows = min(mr, mc - i)
            do {
                // op(A)[r][p] = a[r·lda + p]: transpose rows × kc.
                let s = g.a + (i0 + i) * g.lda + p0
                var p = 0
                if rows == 8 && mr == 8 {
                    while p + 8 <= kc {
                        transpose8x8(s + p, g.lda, d + p * 8, 8, alpha)
                        p += 8
                    }
                } else if rows == 6 && mr == 6 {
                    // 8-wide stores at stride 6: each spills 2 floats into the next slot,
                    // which the next store (or the next panel / buffer slack) overwrites.
                    while p + 8 <= kc {
                        transpose8x8(s + p, g.lda, d + p * 6, 6, alpha, last: 5)
                        p += 8
                    }
                }
                while p < kc {
                    for r in 0..<rows { d[p * mr + r] = alpha * s[r * g.lda + p] }
                    for r in rows..<mr { d[p * mr + r] = 0 }
                    p += 1
                }
                d += kc * mr
            }
            i += mr
        }
    }

    /// `packA` for op(A) = Aᵀ: op(A)[r][p] = a[p·lda + r], so each depth step p gives every
    /// micro-panel MR contiguous values of row p of A. Steps go in groups of 8 across all
    /// panels, so the 8 rows being read stay in L1. Walking one panel's whole depth first
    /// strides by lda, and with lda a power of two (a weight gradient's dY, k = B·T deep)
    /// those rows fall into a few L1 sets: every panel re-read its lines from L2.
    @inline(__always)
    static func packATransposed(_ g: GEMMArgs, _ mr: Int, _ i0: Int, _ mc: Int, _ p0: Int, _ kc: Int,
                                _ dst: UnsafeMutablePointer<Float>) {
        let alpha = g.alpha, v = V8(repeating: alpha), lda = g.lda
        let panels = (mc + mr - 1) / mr
        // Panels read 8 wide: all MR rows inside the block and the 8 floats inside op(A)'s rows.
        let wide = min(mc / mr, g.m - i0 >= 8 ? (g.m - i0 - 8) / mr + 1 : 0)
        // An 8-wide store at stride MR < 8 spills into the next depth step's slot (written
        // after it); a panel's last step is stored MR wide so it does not spill into the next panel.
        let wideSteps = mr < 8 ? kc - 1 : kc
        var pb = 0
        while pb < wideSteps {
            let pe = min(wideSteps, pb + 8)
            for q in 0..<wide {
                var s = UnsafeRawPointer(g.a + (p0 + pb) * lda + i0 + q * mr)
                var d = UnsafeMutableRawPointer(dst + q * kc * mr + pb * mr)
                for _ in pb..<pe {
                    st(ld(s, 0, V8.self) * v, d, 0)
                    s += 4 * lda; d += 4 * mr
                }
            }
            pb = pe
        }
        if wideSteps < kc {
            for q in 0..<wide {
                let s = g.a + (p0 + kc - 1) * lda + i0 + q * mr, d = dst + q * kc * mr + (kc - 1) * mr
                for r in 0..<mr { d[r] = alpha * s[r] }
            }
        }
        // The rest (a partial panel, or rows too near op(A)'s edge for an 8-wide read): zero-padded.
        for q in wide..<panels {
            let rows = min(mr, mc - q * mr)
            var s = g.a + p0 * lda + i0 + q * mr, d = dst + q * kc * mr
            for _ in 0..<kc {
                for r in 0..<rows { d[r] = alpha * s[r] }
                for r in rows..<mr { d[r] = 0 }
                d += mr; s += lda
            }
        }
    }

    /// Packs op(B)[p0..<p0+kc, j0..<j0+nc] into NR-column micro-panels (kc×NR each, zero-padded).
    @inline(__always)
    static func packB(_ g: GEMMArgs, _ nr: Int, _ j0: Int, _ nc: Int, _ p0: Int, _ kc: Int,
                      _ dst: UnsafeMutablePointer<Float>) {
        var d = dst
        var j = 0
        while j < nc {
            let cols = min(nr, nc - j)
            if !g.transB {
                // op(B)[p][c] = b[p·ldb + c]: copy row pieces. Full panels go row by row
                // (one contiguous read of the whole block width per p, prefetch-friendly).
                var s = g.b + p0 * g.ldb + (j0 + j)
                if cols == nr {
                    let full = (nc - j) / nr
                    let panel = kc * nr * 4
                    for p in 0..<kc {
                        let rs = UnsafeRawPointer(s + p * g.ldb), rd = UnsafeMutableRawPointer(d + p * nr)
                        if nr == 16 {
                            for q in 0..<full { st(ld(rs, q * 64, V16.self), rd, q * panel) }
                        } else {
                            for q in 0..<full {
                                st(ld(rs, q * 128, V16.self), rd, q * panel)
                                st(ld(rs, q * 128 + 64, V16.self), rd, q * panel + 64)
                            }
                        }
                    }
                    d += full * kc * nr
                    j += full * nr
                    continue
                } else {
                    for _ in 0..<kc {
                        for c in 0..<cols { d[c] = s[c] }
                        for c in cols..<nr { d[c] = 0 }
                        d += nr; s += g.ldb
                    }
                }
            } else {
                // op(B)[p][c] = b[c·ldb + p]: transpose cols × kc in 8×8 blocks.
                let s = g.b + (j0 + j) * g.ldb + p0
                var p = 0
                if cols == nr {
                    while p + 8 <= kc {
                        var c = 0
                        while c < nr {
                            transpose8x8(s + c * g.ldb + p, g.ldb, d + p * nr + c, nr, 1)
                            c += 8
                        }
                        p += 8
                    }
                }
                while p < kc {
                    for c in 0..<cols { d[p * nr + c] = s[c * g.ldb + p] }
                    for c in cols..<nr { d[p * nr + c] = 0 }
                    p += 1
                }
                d += kc * nr
            }
            j += nr
        }
    }

    /// Depth and column block sizes for k × n: even blocks (columns rounded to the tile), so
    /// no block is a sliver. A pre-packed B uses the same blocks.
    @inline(__always)
    static func blockSizes(k: Int, n: Int, nr: Int, kcMax: Int, ncMax: Int) -> (kc: Int, nc: Int) {
        let kBlocks = (k + kcMax - 1) / kcMax
        let nBlocks = (n + ncMax - 1) / ncMax
        return ((k + kBlocks - 1) / kBlocks, roundUp((n + nBlocks - 1) / nBlocks, nr))
    }

    /// Where block (jc, pc) of a whole pre-packed B starts: column block jc holds all of k
    /// (roundUp(nc, NR)·k floats, earlier blocks full), its pc-th depth slice after that.
    @inline(__always)
    static func packedBOffset(jc: Int, pc: Int, nc: Int, k: Int, nr: Int) -> Int {
        jc * k + pc * roundUp(nc, nr)
    }

    /// Blocked GEMM over the C block rows × cols, on the calling thread.
    ///
    /// A not transposed, when C is a single column block, is read in place by the micro-kernel
    /// (row stride lda): its MR rows are MR sequential streams that stay in L1 across the jr
    /// loop, so packing them would only copy.
    /// A transposed is packed once per row block for the whole depth k (alpha folded in): its
    /// MR values per k step are contiguous but a micro-panel spans kc cache lines.
    /// B is packed in KC×NC blocks sized for L2, or comes pre-packed (`packedB`, all of n,
    /// shared by the threads of one call). Inside a block, each MR-row micro-panel of A stays
    /// in L1 while the jr loop streams B micro-panels from L2 and walks C along its rows.
    @inline(never)
    static func blocked<K: GEMMMicroKernel>(_ g: GEMMArgs, rows: Range<Int>, cols: Range<Int>,
                                            _: K.Type, kcMax: Int, ncMax: Int, aMaxFloats: Int, callID: Int = -1,
                                            packedB: UnsafePointer<Float>? = nil) {
        let MR = K.mr, NR = K.nr
        let m = rows.count, n = cols.count, k = g.k
        if m == 0 || n == 0 { return }
        let (KC, NC) = blockSizes(k: k, n: n, nr: NR, kcMax: kcMax, ncMax: ncMax)
        let mcMax = max(MR, aMaxFloats / max(k, 1) / MR * MR)
        let mBlocks = (m + mcMax - 1) / mcMax
        let MC = roundUp((m + mBlocks - 1) / mBlocks, MR)
        // In place only when the call's C is one column block, so each row of A is read once:
        // re-read per column block, the strided rows cost more than packed panels (measured
        // with pack-a: +6–10% at n = 128, −5–10% at n ≥ 384).
        let inPlaceA = readsAInPlace(g, ncMax: ncMax)

        let scratch = GEMMScratch.current
        let tile = scratch.tile
        // Deep products (k so large that whole-depth A fits fewer rows than the call has, e.g.
        // the LM head's dX with k = vocab): A is packed one depth slice at a time for all rows,
        // so each B block is packed once instead of once per row block.
        if slicesDepth(g, rows: m, mr: MR, ncMax: ncMax, aMaxFloats: aMaxFloats) {
            let rowsMax = max(MR, aMaxFloats / KC / MR * MR)
            let sBlocks = (m + rowsMax - 1) / rowsMax
            let SC = roundUp((m + sBlocks - 1) / sBlocks, MR)
            scratch.ensure(a: min(SC, roundUp(m, MR)) * KC, b: packedB == nil ? KC * min(NC, roundUp(n, NR)) : 0)
            scratch.aKey = (-1, 0, 0)
            let pa = scratch.a
            var pc = 0
            while pc < k {
                let kc = min(KC, k - pc)
                var ic = 0
                while ic < m {
                    let mc = min(SC, m - ic)
                    packA(g, MR, rows.lowerBound + ic, mc, pc, kc, pa)
                    var jc = 0
                    while jc < n {
                        let nc = min(NC, n - jc)
                        let pb = bBlock(g, NR, packedB, scratch, col0: cols.lowerBound, jc: jc, nc: nc, pc: pc, kc: kc)
                        macroKernel(g, K.self, row0: rows.lowerBound + ic, mc: mc, col0: cols.lowerBound + jc, nc: nc,
                                    pc: pc, kc: kc, a: pa, inPlaceA: false, b: pb, tile: tile)
                        jc += NC
                    }
                    ic += SC
                }
                pc += KC
            }
            return
        }
        scratch.ensure(a: inPlaceA ? MR * KC : min(MC, roundUp(m, MR)) * k,
                       b: packedB == nil ? KC * min(NC, roundUp(n, NR)) : 0)
        let pa = scratch.a

        var ic = 0
        while ic < m {
            let mc = min(MC, m - ic), mcr = roundUp(mc, MR)
            // Whole depth of this row block: the pc-th KC slice starts at pa + mcr·pc.
            var pc = 0
            let key = (callID, rows.lowerBound + ic, rows.lowerBound + ic + mc)
            if !inPlaceA && (callID < 0 || scratch.aKey != key) {
                while pc < k {
                    packA(g, MR, rows.lowerBound + ic, mc, pc, min(KC, k - pc), pa + mcr * pc)
                    pc += KC
                }
                scratch.aKey = key
            }
            var jc = 0
            while jc < n {
                let nc = min(NC, n - jc)
                pc = 0
                while pc < k {
                    let kc = min(KC, k - pc)
                    let pb = bBlock(g, NR, packedB, scratch, col0: cols.lowerBound, jc: jc, nc: nc, pc: pc, kc: kc)
                    macroKernel(g, K.self, row0: rows.lowerBound + ic, mc: mc, col0: cols.lowerBound + jc, nc: nc,
                                pc: pc, kc: kc, a: inPlaceA ? pa : pa + mcr * pc, inPlaceA: inPlaceA, b: pb, tile: tile)
                    pc += KC
                }
                jc += NC
            }
            ic += MC
        }
    }

    /// Whether `blocked` packs A one depth slice at a time for `rows` rows: A is packed (not
    /// read in place) and its whole depth for all those rows is over the budget. `split` asks
    /// too, so it does not cut such a product into row chunks (each would re-pack all of B).
    @inline(__always)
    static func slicesDepth(_ g: GEMMArgs, rows: Int, mr: Int, ncMax: Int, aMaxFloats: Int) -> Bool {
        let rowsMax = max(mr, aMaxFloats / max(g.k, 1) / mr * mr)
        return !readsAInPlace(g, ncMax: ncMax) && rowsMax < roundUp(rows, mr)
    }

    /// A is read in place when it is not transposed and the call's C is one column block, so
    /// each row of A is read once (see `blocked`).
    @inline(__always)
    static func readsAInPlace(_ g: GEMMArgs, ncMax: Int) -> Bool {
        !g.transA && g.tuning.unpackedA && g.n <= ncMax
    }

    /// B block (pc, jc) of a call on columns col0…: its place in a pre-packed B, or packed now
    /// into this thread's scratch.
    @inline(__always)
    static func bBlock(_ g: GEMMArgs, _ nr: Int, _ packedB: UnsafePointer<Float>?, _ scratch: GEMMScratch,
                       col0: Int, jc: Int, nc: Int, pc: Int, kc: Int) -> UnsafePointer<Float> {
        if let packedB { return packedB + packedBOffset(jc: jc, pc: pc, nc: nc, k: g.k, nr: nr) }
        packB(g, nr, col0 + jc, nc, pc, kc, scratch.b)
        return UnsafePointer(scratch.b)
    }

    /// C[row0..<row0+mc, col0..<col0+nc] (+)= A rows × B block for one depth slice (pc, kc):
    /// each MR-row micro-panel of A stays in L1 while the NR-column micro-panels of B stream
    /// from L2. `a`: the rows' packed micro-panels for this slice (kc·MR floats apart), or,
    /// with `inPlaceA`, scratch for the last partial micro-panel (full ones are read in place).
    @inline(__always)
    static func macroKernel<K: GEMMMicroKernel>(_ g: GEMMArgs, _: K.Type, row0: Int, mc: Int, col0: Int, nc: Int,
                                                pc: Int, kc: Int, a: UnsafeMutablePointer<Float>, inPlaceA: Bool,
                                                b pb: UnsafePointer<Float>, tile: UnsafeMutablePointer<Float>) {
        let MR = K.mr, NR = K.nr, ldc = g.ldc
        let beta: Float = pc == 0 ? g.beta : 1
        let cBlock = g.c + row0 * ldc + col0
        var ir = 0
        while ir < mc {
            let mr = min(MR, mc - ir)
            let inPlace = inPlaceA && mr == MR
            let ap: UnsafePointer<Float>
            if inPlace {
                ap = g.a + (row0 + ir) * g.lda + pc
            } else if inPlaceA {
                // Last rows of a call: pack them (zero-padded) so no row past m is read.
                packA(g, MR, row0 + ir, mr, pc, kc, a)
                ap = UnsafePointer(a)
            } else {
                ap = UnsafePointer(a + ir * kc)
            }
            var jr = 0
            while jr < nc {
                let nr = min(NR, nc - jr)
                let bp = pb + jr * kc
                let cp = cBlock + ir * ldc + jr
                // The bias goes in once, with the first depth block.
                let bias = pc == 0 ? g.bias.map { $0 + col0 + jr } : nil
                // Constant strides in each branch, so the inlined packed kernel
                // keeps immediate offsets.
                if mr == MR && nr == NR {
                    if inPlace { K.run(kc, ap, rowStride: g.lda, kStride: 1, bp, bStride: NR * 4, cp, ldc, g.alpha, beta, bias) }
                    else { K.run(kc, ap, rowStride: 1, kStride: MR, bp, bStride: NR * 4, cp, ldc, 1, beta, bias) }
                } else {
                    if inPlace { K.run(kc, ap, rowStride: g.lda, kStride: 1, bp, bStride: NR * 4, tile, NR, g.alpha, 0, nil) }
                    else { K.run(kc, ap, rowStride: 1, kStride: MR, bp, bStride: NR * 4, tile, NR, 1, 0, nil) }
                    if let bias {
                        for r in 0..<mr { for c in 0..<nr { tile[r * NR + c] += bias[c] } }
                    }
                    for r in 0..<mr {
                        let crow = cp + r * ldc, trow = tile + r * NR
                        if beta == 0 {
                            for c in 0..<nr { crow[c] = trow[c] }
                        } else if beta == 1 {
                            for c in 0..<nr { crow[c] += trow[c] }
                        } else {
                            for c in 0..<nr { crow[c] = trow[c] + beta * crow[c] }
                        }
                    }
                }
                jr += NR
            }
            ir += MR
        }
    }

    /// Entry point behind `GEMM.sgemm`.
    static func sgemm(_ g: GEMMArgs) {
        var g = g
        let m = g.m, n = g.n, k = g.k
        if m <= 0 || n <= 0 { return }
        if g.rowInvariant {
            // Batched decoding: every row by the few-rows path's dot products, whatever m is.
            fewRows(g, threads: ThreadPool.shared.availableThreads)
            return
        }
        let work = m * n * k
        // Tiny products go unpacked, except narrow ones with many rows: the direct path's
        // row kernel keeps only n/8 accumulator chains for n ≤ 32 (latency-bound), where the
        // blocked path's 6×16 tiles run 2× faster (no-direct: 64×16×16,
        // 32×16×32, 24×24×48); at 8×8×8 or 8×128×8 direct wins by 1.8–2.8×.
        let small = (work < g.tuning.smallThreshold && (m < 12 || n > 32)) || m < 4 || n < 4
        if let bias = g.bias, k <= 0 || g.alpha == 0 || small {
            // Paths without a fused bias: C = beta·C + bias first, then accumulate.
            parallelFor(m, grain: max(1, 65536 / n)) { rows in
                for i in rows {
                    let ci = g.c + i * g.ldc
                    scaleRow(ci, n, g.beta)
                    Kernels.axpy(1, bias, ci, n)
                }
            }
            g.beta = 1; g.bias = nil
        }
        if k <= 0 || g.alpha == 0 {
            parallelFor(m, grain: max(1, 65536 / n)) { rows in
                for i in rows { scaleRow(g.c + i * g.ldc, n, g.beta) }
            }
            return
        }
        let threads = ThreadPool.shared.availableThreads
        let maxThreads = max(1, min(threads, 2 * work / g.tuning.minFlopsPerThread))
        // A few rows times a weight matrix (decode's x·Wᵀ) is memory-bound: both cores read
        // more than one does (`bench memory`: ≈ 36 vs 28 GB/s), so the split is decided by
        // bytes, and chunks taken from a counter keep both busy to the end.
        if small && m <= g.tuning.skinnyRows && threads > 1 && k * n >= 1 << 16 {
            skinnyChunks(g, threads: threads)
            return
        }

        if takesFewRows(g) {
            fewRows(g, threads: threads)
            return
        }

        // Tiny products and skinny shapes: no packing.
        if small {
            if maxThreads > 1 && m >= 2 * maxThreads && (m >= n || n < 64 * maxThreads) {
                parallelFor(maxThreads) { r in
                    for w in r { direct(g, rows: (m * w / maxThreads)..<(m * (w + 1) / maxThreads), cols: 0..<n) }
                }
            } else if maxThreads > 1 && n >= 64 * maxThreads {
                parallelFor(maxThreads) { r in
                    for w in r {
                        let lo = roundUp(n * w / maxThreads, 16), hi = w + 1 == maxThreads ? n : roundUp(n * (w + 1) / maxThreads, 16)
                        direct(g, rows: 0..<m, cols: lo..<hi)
                    }
                }
            } else {
                direct(g, rows: 0..<m, cols: 0..<n)
            }
            return
        }

        switch g.tuning.kernel {
        case .avx2x6x16 where takesUnpacked(g, threads: maxThreads, mr: Kernel6x16.mr, nr: Kernel6x16.nr):
            unpacked(g, Kernel6x16.self)
        case .avx512x8x32 where takesUnpacked(g, threads: maxThreads, mr: Kernel8x32.mr, nr: Kernel8x32.nr):
            unpacked(g, Kernel8x32.self)
        case .avx2x6x16:
            // KC ≤ 512 (k split evenly): A micro-panel 6×512×4 = 12 KiB stays in L1 (32 KiB);
            // B block 512×128×4 = 256 KiB in L2 (512 KiB on the AVX2 dev VM); packed A
            // (≤ 8 MiB) in L3. Measured best of KC 256–768 × NC 96–384 on the dev VM.
            split(g, Kernel6x16.self, kc: g.tuning.kc, nc: g.tuning.nc,
                  aMax: g.tuning.aMaxFloats, threads: maxThreads)
        case .avx512x8x32:
            // Same scheme scaled to Zen 5 (L1 48 KiB, L2 1 MiB): A micro-panel 8×512×4 =
            // 16 KiB in L1, B block 512×256×4 = 512 KiB in L2. Not yet tuned on hardware.
            split(g, Kernel8x32.self, kc: g.tuning.kc, nc: g.tuning.nc,
                  aMax: g.tuning.aMaxFloats, threads: maxThreads)
        }
    }

    /// Unique id per threaded call (keys the packed-A cache in each thread's scratch).
    private static let calls = Atomic<Int>(0)

    /// Splits C into tasks along n (each thread packs all of A once) or along m (each
    /// task packs its own slice of A and all of B), whichever duplicates less packing.
    /// Threads take tasks from an atomic counter, so a core slowed by other work
    /// simply takes fewer tasks.
    @inline(__always)
    static func split<K: GEMMMicroKernel>(_ g: GEMMArgs, _ kern: K.Type, kc: Int, nc: Int, aMax: Int, threads: Int) {
        let m = g.m, n = g.n, k = g.k
        let MR = K.mr, NR = K.nr
        let mPanels = (m + MR - 1) / MR, nPanels = (n + NR - 1) / NR
        let t = threads
        var alongN = m <= n
        if alongN && nPanels < 2 * t { alongN = false }
        if !alongN && mPanels < 2 * t { alongN = nPanels >= 2 * t }
        if t == 1 || (alongN ? nPanels : mPanels) < 2 * t {
            blocked(g, rows: 0..<m, cols: 0..<n, K.self, kcMax: kc, ncMax: nc, aMaxFloats: aMax)
            return
        }
        // Row chunks: A of one chunk (all of k) must fit aMax floats.
        let aPanelsMax = max(1, aMax / max(k, 1) / MR)
        var rChunks = (mPanels + aPanelsMax - 1) / aPanelsMax, cChunks = 1
        let want = max(2 * t, min(g.tuning.maxTasksPerThread * t,
                                  (alongN ? nPanels : mPanels) / g.tuning.minPanelsPerTask))
        if alongN {
            // A deep product (whole-depth A of all rows over budget) packs A slice by slice
            // for all rows in every column task (see `blocked`): no row chunks (each would
            // re-pack B) and one task per thread, so A is packed t times, not 4t.
            let deep = slicesDepth(g, rows: m, mr: MR, ncMax: nc, aMaxFloats: aMax)
            if deep { rChunks = 1 }
            cChunks = deep ? t : min(nPanels, want)
        } else {
            rChunks = max(rChunks, min(mPanels, want))
        }
        let tasks = rChunks * cChunks
        let callID = calls.wrappingAdd(1, ordering: .relaxed).oldValue
        let counter = GEMMScratch.current
        counter.nextTask.store(0, ordering: .relaxed)
        // Row tasks all need every block of B: pack it once, shared, instead of once per task
        // (for a weight gradient, B is the whole activation, k = B·T deep).
        var sharedB: UnsafePointer<Float>?
        let bFloats = roundUp(n, NR) * k
        if !alongN && bFloats <= g.tuning.sharedBMaxFloats {
            let (KC, NC) = blockSizes(k: k, n: n, nr: NR, kcMax: kc, ncMax: nc)
            counter.ensure(a: 0, b: bFloats)
            let dst = counter.b
            // Units are (depth slice, NR panel): a thread packs a contiguous run of them, cut
            // at block edges (the panels of one block and depth slice are contiguous).
            let kBlocks = (k + KC - 1) / KC
            let units = kBlocks * nPanels
            let pack = { (range: Range<Int>) in
                var u = range.lowerBound
                while u < range.upperBound {
                    let pc = u / nPanels * KC, j = u % nPanels * NR, jc = j / NC * NC
                    let ncb = min(NC, n - jc), kcb = min(KC, k - pc)
                    let end = min(range.upperBound, u - u % nPanels + min(nPanels, (jc + NC) / NR))
                    let jEnd = min(n, j + (end - u) * NR)
                    packB(g, NR, j, jEnd - j, pc, kcb,
                          dst + packedBOffset(jc: jc, pc: pc, nc: ncb, k: k, nr: NR) + (j - jc) * kcb)
                    u = end
                }
            }
            // Worth a hand-off from about 16k floats (≈ 5 µs of packing).
            if bFloats >= 1 << 14 && units >= 2 * t {
                parallelFor(units, pack)
            } else {
                pack(0..<units)
            }
            sharedB = UnsafePointer(dst)
        }
        parallelFor(t) { r in
            for _ in r {
                while true {
                    let task = counter.nextTask.wrappingAdd(1, ordering: .relaxed).oldValue
                    if task >= tasks { break }
                    let ri = task / cChunks, ci = task % cChunks  // row-major: column tasks share A
                    let r0 = min(m, mPanels * ri / rChunks * MR), r1 = min(m, mPanels * (ri + 1) / rChunks * MR)
                    let c0 = min(n, nPanels * ci / cChunks * NR), c1 = min(n, nPanels * (ci + 1) / cChunks * NR)
                    blocked(g, rows: r0..<r1, cols: c0..<c1, K.self, kcMax: kc, ncMax: nc, aMaxFloats: aMax,
                            callID: callID, packedB: sharedB)
                }
            }
        }
    }
}
