import Foundation
import XCTest
import EmeraldCore

/// `GEMM.sgemm` against `GEMM.reference` on edge sizes, every transpose combination,
/// alpha/beta, padded strides, both micro-kernels and 1–3 threads.
final class GEMMTests: XCTestCase {
    struct Case {
        var m: Int, n: Int, k: Int
        var tA: Bool, tB: Bool
        var alpha: Float, beta: Float
        var padA: Int, padB: Int, padC: Int
        /// Adds a random bias row (the fused-bias store).
        var bias = false
    }

    private var rng: UInt64 = 0x1234_5678_9ABC_DEF1
    /// The rules the cases run under (`withSettings` and the tests vary them).
    private var tuning = GEMMTuning.current
    private func rand() -> Float {
        rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17
        return Float(Int(rng >> 40) - (1 << 23)) / Float(1 << 23)
    }

    /// Runs one case; returns a failure description or nil.
    private func check(_ t: Case, file: StaticString = #filePath, line: UInt = #line) {
        let (aRows, aCols) = t.tA ? (t.k, t.m) : (t.m, t.k)
        let (bRows, bCols) = t.tB ? (t.n, t.k) : (t.k, t.n)
        let lda = aCols + t.padA, ldb = bCols + t.padB, ldc = t.n + t.padC
        var a = [Float](repeating: .nan, count: max(aRows * lda, 1))
        var b = [Float](repeating: .nan, count: max(bRows * ldb, 1))
        var c0 = [Float](repeating: .nan, count: max(t.m * ldc, 1))
        for r in 0..<aRows { for j in 0..<aCols { a[r * lda + j] = rand() } }
        for r in 0..<bRows { for j in 0..<bCols { b[r * ldb + j] = rand() } }
        if t.beta != 0 { for r in 0..<t.m { for j in 0..<t.n { c0[r * ldc + j] = rand() } } }
        let bias = t.bias ? (0..<t.n).map { _ in rand() } : []
        var want = c0, got = c0
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                want.withUnsafeMutableBufferPointer { c in
                    GEMM.reference(transA: t.tA, transB: t.tB, m: t.m, n: t.n, k: t.k, alpha: t.alpha,
                                   a: a.baseAddress!, lda: lda, b: b.baseAddress!, ldb: ldb,
                                   beta: t.beta, c: c.baseAddress!, ldc: ldc)
                    if t.bias { for r in 0..<t.m { for j in 0..<t.n { c[r * ldc + j] += bias[j] } } }
                }
                got.withUnsafeMutableBufferPointer { c in
                    bias.withUnsafeBufferPointer { bias in
                        GEMM.sgemm(transA: t.tA, transB: t.tB, m: t.m, n: t.n, k: t.k, alpha: t.alpha,
                                   a: a.baseAddress!, lda: lda, b: b.baseAddress!, ldb: ldb,
                                   beta: t.beta, c: c.baseAddress!, ldc: ldc, bias: t.bias ? bias.baseAddress : nil,
                                   tuning: tuning)
                    }
                }
            }
        }
        var maxRef: Float = 0
        for r in 0..<t.m { for j in 0..<t.n { maxRef = max(maxRef, abs(want[r * ldc + j])) } }
        let tol = 1e-5 * Float(max(t.k, 1)).squareRoot() * max(maxRef, 1) + 1e-6
        var worst: Float = 0, at = (0, 0)
        for r in 0..<t.m {
            for j in 0..<t.n {
                let e = abs(got[r * ldc + j] - want[r * ldc + j])
                if !worst.isNaN && !(e <= worst) { worst = e; at = (r, j) }  // a NaN sticks
            }
            // Padding between rows of C must be untouched.
            for j in t.n..<ldc where r * ldc + j < c0.count {
                XCTAssert(got[r * ldc + j].isNaN, "padding of C written in \(t)", file: file, line: line)
            }
        }
        XCTAssert(worst <= tol, "\(t): max error \(worst) at \(at) > tol \(tol) [kernel \(tuning.kernel), threads \(ThreadPool.shared.threadCount)]",
                  file: file, line: line)
    }

    private static let edge = [1, 3, 17, 33, 65, 129]
    private static let scalars: [(Float, Float)] = [(1, 0), (0.5, 1), (-1.5, 0.25), (2, -1)]
    private static let pads = [0, 3, 16]

    /// Every m, n, k in `edge` × all transposes; alpha/beta and padding cycle through cases.
    private func edgeSuite(step: Int = 1) {
        var idx = 0
        for m in Self.edge { for n in Self.edge { for k in Self.edge {
            for tA in [false, true] { for tB in [false, true] {
                idx += 1
                if idx % step != 0 { continue }
                let (al, be) = Self.scalars[idx % Self.scalars.count]
                check(Case(m: m, n: n, k: k, tA: tA, tB: tB, alpha: al, beta: be,
                           padA: Self.pads[idx % 3], padB: Self.pads[(idx / 3) % 3], padC: Self.pads[(idx / 9) % 3],
                           bias: idx % 5 < 2))
            } }
        } } }
    }

    /// Shapes that cross the cache blocks (KC, MC, NC) and the small/large paths.
    private static let blockShapes: [(Int, Int, Int)] = [
        (256, 200, 300), (300, 100, 530), (517, 45, 70), (64, 4100, 33), (1, 1000, 700),
        (2, 333, 257), (1000, 2, 50), (5, 7, 1000), (97, 131, 513), (260, 520, 260), (48, 96, 64),
    ]

    private func blockSuite() {
        var idx = 0
        for (m, n, k) in Self.blockShapes {
            for tA in [false, true] { for tB in [false, true] {
                idx += 1
                let (al, be) = Self.scalars[idx % Self.scalars.count]
                check(Case(m: m, n: n, k: k, tA: tA, tB: tB, alpha: al, beta: be,
                           padA: Self.pads[idx % 3], padB: Self.pads[(idx + 1) % 3], padC: Self.pads[(idx + 2) % 3],
                           bias: idx % 3 == 0))
            } }
        }
    }

    private func withSettings(kernel: GEMMTuning.Kernel, threads: Int, forceSplit: Bool, _ body: () -> Void) {
        let saved = tuning, t0 = ThreadPool.shared
        tuning.kernel = kernel
        GEMMBenchmark.usePool(threads: threads)  // not ThreadPool.configure: it traps when the old pool dies
        if forceSplit { tuning.minFlopsPerThread = 1 }
        defer { tuning = saved; ThreadPool.shared = t0 }
        body()
    }

    func testEdgeShapesOneThread() {
        for kern in GEMMTuning.Kernel.allCases {
            withSettings(kernel: kern, threads: 1, forceSplit: false) { edgeSuite() }
        }
    }

    func testEdgeShapesThreadsForcedSplit() {
        for kern in GEMMTuning.Kernel.allCases {
            for t in [2, 3] {
                withSettings(kernel: kern, threads: t, forceSplit: true) { edgeSuite(step: 2) }
            }
        }
    }

    func testBlockBoundaryShapes() {
        for kern in GEMMTuning.Kernel.allCases {
            for t in [1, 2] {
                withSettings(kernel: kern, threads: t, forceSplit: false) { blockSuite() }
            }
            withSettings(kernel: kern, threads: 3, forceSplit: true) { blockSuite() }
        }
    }

    /// The paths the defaults skip: A packed even when it could be read in place, and
    /// row tasks that pack their own B instead of sharing one pre-packed B.
    func testPackedAAndPrivateBPaths() {
        let a0 = tuning.unpackedA, b0 = tuning.sharedBMaxFloats
        defer { tuning.unpackedA = a0; tuning.sharedBMaxFloats = b0 }
        for (inPlace, shared) in [(false, b0), (true, 0)] {
            tuning.unpackedA = inPlace; tuning.sharedBMaxFloats = shared
            for kern in GEMMTuning.Kernel.allCases {
                withSettings(kernel: kern, threads: 1, forceSplit: false) { edgeSuite(step: 3) }
                withSettings(kernel: kern, threads: 3, forceSplit: true) { blockSuite() }
            }
        }
    }

    /// Small one-thread products both ways: packed as before (unpacked path off), and every
    /// product that fits a tile unpacked (edge tiles overlap, beta ≠ 0 goes through a tile).
    func testUnpackedAndPackedSmallProducts() {
        let w0 = tuning.unpackedMaxWork
        defer { tuning.unpackedMaxWork = w0 }
        for work in [0, Int.max / 8] {
            tuning.unpackedMaxWork = work
            for kern in GEMMTuning.Kernel.allCases {
                withSettings(kernel: kern, threads: 1, forceSplit: false) { edgeSuite(step: 2); blockSuite() }
            }
        }
    }

    /// Products of a few rows split by their flops (one fixed column range per thread)
    /// instead of column chunks from a counter.
    func testSkinnyProductsStaticSplit() {
        let r0 = tuning.skinnyRows
        defer { tuning.skinnyRows = r0 }
        tuning.skinnyRows = 0
        for kern in GEMMTuning.Kernel.allCases {
            withSettings(kernel: kern, threads: 2, forceSplit: false) { blockSuite() }
            withSettings(kernel: kern, threads: 3, forceSplit: true) { blockSuite() }
        }
    }

    /// x·Wᵀ products of a few rows (prefill): dot products of rows in place. Row counts around
    /// the path's bounds (skinny below, packed above), odd widths and depths, padded strides,
    /// bias, alpha/beta, on 1–3 threads; the same shapes packed (`fewRowsMax` 0) and with
    /// the other transposes, which never take the path.
    func testFewRowProducts() {
        let f0 = tuning.fewRowsMax
        defer { tuning.fewRowsMax = f0 }
        var idx = 0
        for fewRowsMax in [f0, 0] {
            tuning.fewRowsMax = fewRowsMax
            for threads in [1, 2, 3] {
                withSettings(kernel: tuning.kernel, threads: threads, forceSplit: false) {
                    for m in [5, 6, 7, 16, 31, f0, f0 + 1] {
                        for (n, k) in [(300, 257), (1001, 70), (131, 517), (2, 40_000), (515, 128)] {
                            for (tA, tB) in [(false, true), (true, true), (false, false)] where tB || m % 2 == 1 {
                                idx += 1
                                let (al, be) = Self.scalars[idx % Self.scalars.count]
                                check(Case(m: m, n: n, k: k, tA: tA, tB: tB, alpha: al, beta: be,
                                           padA: Self.pads[idx % 3], padB: Self.pads[(idx + 1) % 3],
                                           padC: Self.pads[(idx + 2) % 3], bias: idx % 3 != 1))
                            }
                        }
                    }
                }
            }
        }
    }

    /// Deep products (whole-depth A does not fit the packing budget): A packed slice by slice,
    /// with one and several row blocks per slice.
    func testDeepProducts() {
        let a0 = tuning.aMaxFloats
        defer { tuning.aMaxFloats = a0 }
        let shapes = [(40, 50, 2000), (50, 37, 700), (13, 70, 1100)]
        for budget in [8192, 4096] {
            tuning.aMaxFloats = budget
            for kern in GEMMTuning.Kernel.allCases {
                for (t, force) in [(1, false), (2, true), (3, true)] {
                    withSettings(kernel: kern, threads: t, forceSplit: force) {
                        var idx = 0
                        for (m, n, k) in shapes { for tA in [false, true] { for tB in [false, true] {
                            idx += 1
                            let (al, be) = Self.scalars[idx % Self.scalars.count]
                            check(Case(m: m, n: n, k: k, tA: tA, tB: tB, alpha: al, beta: be, padA: Self.pads[idx % 3],
                                       padB: Self.pads[(idx + 1) % 3], padC: Self.pads[(idx + 2) % 3], bias: idx % 3 == 0))
                        } } }
                    }
                }
            }
        }
    }

    func testOneAndTwoThreadsAgree() {
        // Same inputs, 1 vs 2 threads: both must match the reference (already checked) and each other closely.
        let m = 300, n = 700, k = 260
        var a = [Float](repeating: 0, count: m * k), b = [Float](repeating: 0, count: k * n)
        for i in a.indices { a[i] = rand() }
        for i in b.indices { b[i] = rand() }
        var c1 = [Float](repeating: 0, count: m * n), c2 = c1
        for (t, out) in [(1, 0), (2, 1)] {
            withSettings(kernel: tuning.kernel, threads: t, forceSplit: false) {
                a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in
                    if out == 0 {
                        c1.withUnsafeMutableBufferPointer { c in
                            GEMM.sgemm(transA: false, transB: false, m: m, n: n, k: k, a: a.baseAddress!, lda: k,
                                       b: b.baseAddress!, ldb: n, c: c.baseAddress!, ldc: n)
                        }
                    } else {
                        c2.withUnsafeMutableBufferPointer { c in
                            GEMM.sgemm(transA: false, transB: false, m: m, n: n, k: k, a: a.baseAddress!, lda: k,
                                       b: b.baseAddress!, ldb: n, c: c.baseAddress!, ldc: n)
                        }
                    }
                } }
            }
        }
        var worst: Float = 0
        for i in c1.indices { worst = max(worst, abs(c1[i] - c2[i])) }
        XCTAssertLessThanOrEqual(worst, 1e-4)
    }

    func testDegenerate() {
        // k = 0 and alpha = 0 only scale C; beta = 0 overwrites NaN garbage in C.
        for kern in GEMMTuning.Kernel.allCases {
            withSettings(kernel: kern, threads: 2, forceSplit: false) {
                check(Case(m: 9, n: 40, k: 0, tA: false, tB: false, alpha: 1, beta: 0.5, padA: 0, padB: 0, padC: 2))
                check(Case(m: 9, n: 40, k: 0, tA: true, tB: true, alpha: 1, beta: 0, padA: 0, padB: 0, padC: 0))
                check(Case(m: 64, n: 64, k: 64, tA: false, tB: true, alpha: 0, beta: -2, padA: 1, padB: 1, padC: 1))
                check(Case(m: 9, n: 40, k: 0, tA: false, tB: false, alpha: 1, beta: 0.5, padA: 0, padB: 0, padC: 2, bias: true))
                check(Case(m: 64, n: 64, k: 64, tA: false, tB: true, alpha: 0, beta: 0, padA: 1, padB: 1, padC: 1, bias: true))
                check(Case(m: 70, n: 90, k: 300, tA: true, tB: false, alpha: 1, beta: 0, padA: 0, padB: 0, padC: 5))
            }
        }
    }
}
