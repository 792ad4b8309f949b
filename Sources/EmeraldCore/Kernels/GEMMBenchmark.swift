import Foundation

/// Times `GEMM.sgemm` on one shape (used by `emerald bench gemm` and the opt-in bench test).
public enum GEMMBenchmark {
    /// Pools kept alive by thread count. `ThreadPool.configure` drops the old pool
    /// while its workers still reference it (`unowned self`), which traps; switching
    /// between retained pools avoids that.
    nonisolated(unsafe) private static var pools: [Int: ThreadPool] = [:]

    /// Makes `ThreadPool.shared` a pool with `threads` threads, keeping every pool alive.
    public static func usePool(threads: Int) {
        let cur = ThreadPool.shared
        pools[cur.threadCount] = pools[cur.threadCount] ?? cur
        if cur.threadCount == threads { return }
        let p = pools[threads] ?? ThreadPool(threads: threads)
        pools[threads] = p
        ThreadPool.shared = p
    }

    /// Runs C = op(A)·op(B) on random tight row-major matrices.
    ///
    /// - Parameters:
    ///   - threads: pool size for the run (see `usePool`); the previous pool is restored.
    ///   - iterations: timed runs after warm-up; 0 picks enough for ~0.3 s.
    ///   - variant: when given, every timed run is followed by one with `variant(true)` in
    ///     effect (then `variant(false)`): an A/B comparison on a noisy machine.
    /// - Returns: GFLOP/s from the median run (2·m·n·k flops), that median in seconds, and
    ///   the variant's GFLOP/s from its median run.
    public static func run(m: Int, n: Int, k: Int, transA: Bool = false, transB: Bool = false,
                           threads: Int = ThreadPool.shared.threadCount, iterations: Int = 0,
                           variant: ((Bool) -> Void)? = nil)
        -> (gflops: Double, medianSeconds: Double, variantGflops: Double?) {
        let previous = ThreadPool.shared
        usePool(threads: threads)
        defer { ThreadPool.shared = previous }

        let a = UnsafeMutablePointer<Float>.allocate(capacity: max(m * k, 1))
        let b = UnsafeMutablePointer<Float>.allocate(capacity: max(k * n, 1))
        let c = UnsafeMutablePointer<Float>.allocate(capacity: max(m * n, 1))
        defer { a.deallocate(); b.deallocate(); c.deallocate() }
        var seed: UInt32 = 0x9E37_79B9
        func next() -> Float {
            seed ^= seed << 13; seed ^= seed >> 17; seed ^= seed << 5
            return Float(seed & 0xFFFF) / 32768 - 1
        }
        for i in 0..<(m * k) { a[i] = next() }
        for i in 0..<(k * n) { b[i] = next() }
        c.update(repeating: 0, count: m * n)

        let lda = transA ? m : k, ldb = transB ? k : n
        func once() -> Double {
            let t0 = DispatchTime.now().uptimeNanoseconds
            GEMM.sgemm(transA: transA, transB: transB, m: m, n: n, k: k,
                       a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: n)
            return Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
        }
        func median(_ t: [Double]) -> Double {
            let t = t.sorted()
            return t.count % 2 == 1 ? t[t.count / 2] : 0.5 * (t[t.count / 2 - 1] + t[t.count / 2])
        }
        let flops = 2 * Double(m) * Double(n) * Double(k)
        // Warm-up: page in, grow packing buffers, wake the pool.
        var warm = once()
        if let variant { variant(true); warm = min(warm, once()); variant(false) }
        warm = min(warm, once())
        var reps = iterations
        if reps <= 0 { reps = max(5, min(200, Int(0.3 / max(warm, 1e-6)))) }
        var times: [Double] = [], other: [Double] = []
        times.reserveCapacity(reps)
        for _ in 0..<reps {
            times.append(once())
            // Paired: the variant runs right after, so both see the same machine.
            if let variant { variant(true); other.append(once()); variant(false) }
        }
        return (flops / median(times) * 1e-9, median(times), other.isEmpty ? nil : flops / median(other) * 1e-9)
    }
}
