import Foundation
import Synchronization

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

    /// fp32 FMA throughput of `threads` cores right now (GFLOP/s): every pool thread runs
    /// 12 independent FMA chains of the micro-kernel's vector width at once (enough to
    /// cover FMA latency on both pipes). `run(peakPaired: true)` times this after every
    /// product, so "% of peak" compares two figures taken at the same moment on a VM whose
    /// speed drifts by ±20% within minutes.
    public static func peak(threads: Int = ThreadPool.shared.threadCount, iterations: Int = 100_000) -> Double {
        let previous = ThreadPool.shared
        usePool(threads: threads)
        defer { ThreadPool.shared = previous }
        return peakOnce(iterations: iterations)
    }

    /// One timed `peak` probe on the current pool: the threads meet at a barrier, then each
    /// times its own chains (a parked worker wakes later than the caller starts).
    static func peakOnce(iterations: Int) -> Double {
        let pool = ThreadPool.shared, threads = pool.threadCount
        let arrived = Arrival()
        var rates = [Double](repeating: 0, count: threads), sink = [Float](repeating: 0, count: threads)
        let lanes = GEMMTuning.cpuHasAVX512 ? 16 : 8
        let flops = Double(iterations * 12 * lanes * 2)
        rates.withUnsafeMutableBufferPointer { rates in
            sink.withUnsafeMutableBufferPointer { sink in
                let (rates, sink) = (rates, sink)
                pool.run { w in
                    arrived.count.add(1, ordering: .sequentiallyConsistent)
                    while arrived.count.load(ordering: .sequentiallyConsistent) < threads {}
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    sink[w] = GEMMTuning.cpuHasAVX512
                        ? fmaChains(SIMD16<Float>.self, iterations, Float(w + 1) * 1e-7)
                        : fmaChains(SIMD8<Float>.self, iterations, Float(w + 1) * 1e-7)
                    rates[w] = flops / (Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9)
                }
            }
        }
        precondition(!sink.contains { $0.isNaN })  // keeps the chains' results alive
        return rates.reduce(0, +) * 1e-9
    }

    private final class Arrival { let count = Atomic<Int>(0) }

    @inline(never)
    static func fmaChains<V: SIMD>(_: V.Type, _ iterations: Int, _ x: Float) -> Float where V.Scalar == Float {
        let m = V(repeating: 1 - x), a = V(repeating: x)
        var c0 = V(repeating: 0), c1 = V(repeating: 1), c2 = V(repeating: 2), c3 = V(repeating: 3)
        var c4 = V(repeating: 4), c5 = V(repeating: 5), c6 = V(repeating: 6), c7 = V(repeating: 7)
        var c8 = V(repeating: 8), c9 = V(repeating: 9), c10 = V(repeating: 10), c11 = V(repeating: 11)
        for _ in 0..<iterations {
            c0 = c0.addingProduct(m, a); c1 = c1.addingProduct(m, a); c2 = c2.addingProduct(m, a)
            c3 = c3.addingProduct(m, a); c4 = c4.addingProduct(m, a); c5 = c5.addingProduct(m, a)
            c6 = c6.addingProduct(m, a); c7 = c7.addingProduct(m, a); c8 = c8.addingProduct(m, a)
            c9 = c9.addingProduct(m, a); c10 = c10.addingProduct(m, a); c11 = c11.addingProduct(m, a)
        }
        let s = ((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7)) + ((c8 + c9) + (c10 + c11))
        return s.sum()
    }

    /// Runs C = op(A)·op(B) on random tight row-major matrices.
    ///
    /// - Parameters:
    ///   - threads: pool size for the run (see `usePool`); the previous pool is restored.
    ///   - iterations: timed runs after warm-up; 0 picks enough for ~0.3 s.
    ///   - versus: other rules; when given, every timed run is followed by one with them: an
    ///     A/B comparison on a noisy machine.
    ///   - pairedPeak: also run a `peak` probe after every timed run.
    /// - Returns: GFLOP/s from the median run (2·m·n·k flops), that median in seconds, the
    ///   variant's GFLOP/s from its median run, and the median of the paired peak probes.
    public static func run(m: Int, n: Int, k: Int, transA: Bool = false, transB: Bool = false,
                           threads: Int = ThreadPool.shared.threadCount, iterations: Int = 0,
                           versus: GEMMTuning? = nil, pairedPeak: Bool = false)
        -> (gflops: Double, medianSeconds: Double, variantGflops: Double?, peakGflops: Double?) {
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
        func once(_ tuning: GEMMTuning = .current) -> Double {
            let t0 = DispatchTime.now().uptimeNanoseconds
            GEMM.sgemm(transA: transA, transB: transB, m: m, n: n, k: k,
                       a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: n, tuning: tuning)
            return Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
        }
        func median(_ t: [Double]) -> Double {
            let t = t.sorted()
            return t.count % 2 == 1 ? t[t.count / 2] : 0.5 * (t[t.count / 2 - 1] + t[t.count / 2])
        }
        let flops = 2 * Double(m) * Double(n) * Double(k)
        // Warm-up: page in, grow packing buffers, wake the pool.
        var warm = once()
        if let versus { warm = min(warm, once(versus)) }
        warm = min(warm, once())
        var reps = iterations
        if reps <= 0 { reps = max(5, min(200, Int(0.3 / max(warm, 1e-6)))) }
        var times: [Double] = [], other: [Double] = [], peaks: [Double] = []
        times.reserveCapacity(reps)
        for _ in 0..<reps {
            times.append(once())
            // Paired: the variant runs right after, so both see the same machine.
            if let versus { other.append(once(versus)) }
            if pairedPeak { peaks.append(peakOnce(iterations: 50_000)) }
        }
        return (flops / median(times) * 1e-9, median(times), other.isEmpty ? nil : flops / median(other) * 1e-9,
                peaks.isEmpty ? nil : median(peaks))
    }
}
