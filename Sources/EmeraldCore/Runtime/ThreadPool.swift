import Foundation
import Synchronization

/// Persistent workers that split loops across cores.
///
/// Transformer steps are hundreds of short kernels; `concurrentPerform`
/// costs tens of µs per call here, a spinning worker well under one. Workers
/// spin for a while after each job, then park on a condition variable.
public final class ThreadPool: @unchecked Sendable {
    /// The process-wide pool; size from `EMERALD_THREADS` or the core count.
    public nonisolated(unsafe) static var shared = ThreadPool(threads: ThreadPool.defaultThreads)

    /// Threads from `EMERALD_THREADS`, else the active processor count.
    public static var defaultThreads: Int {
        if let s = ProcessInfo.processInfo.environment["EMERALD_THREADS"], let n = Int(s), n > 0 { return n }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }

    /// Replaces the shared pool (call before heavy work, e.g. from `--threads`).
    public static func configure(threads: Int) {
        if shared.threadCount != threads {
            let old = shared
            shared = ThreadPool(threads: threads)
            old.shutdown()
        }
    }

    /// Ends the workers (they hold the pool strongly, so it lives until they exit).
    public func shutdown() {
        stop.store(true, ordering: .sequentiallyConsistent)
        generation.add(1, ordering: .sequentiallyConsistent)
        pthread_mutex_lock(&mutex)
        pthread_cond_broadcast(&cond)
        pthread_mutex_unlock(&mutex)
    }

    /// Threads taking part in a `parallelFor`, the caller included.
    public let threadCount: Int
    /// Threads a `parallelFor` started now would use: 1 inside a `run` (nested loops run
    /// inline on their thread, e.g. in a data-parallel shard), else `threadCount`.
    public var availableThreads: Int { busy ? 1 : threadCount }
    private let generation = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let stop = Atomic<Bool>(false)
    private var job: ((Int) -> Void)?
    private var busy = false
    private var mutex = pthread_mutex_t()
    private var cond = pthread_cond_t()

    /// Creates a pool with `threads - 1` workers.
    public init(threads: Int) {
        threadCount = max(1, threads)
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&cond, nil)
        for w in 1..<threadCount {
            let t = Thread { nameCurrentThread("emerald-worker"); self.workerLoop(w) }
            t.stackSize = 8 << 20
            t.start()
        }
    }

    private func workerLoop(_ index: Int) {
        var seen = 0
        while !stop.load(ordering: .relaxed) {
            var spins = 0
            while generation.load(ordering: .sequentiallyConsistent) == seen {
                spins += 1
                if spins > 200_000 {
                    pthread_mutex_lock(&mutex)
                    sleepers.add(1, ordering: .sequentiallyConsistent)
                    while generation.load(ordering: .sequentiallyConsistent) == seen {
                        pthread_cond_wait(&cond, &mutex)
                    }
                    sleepers.subtract(1, ordering: .sequentiallyConsistent)
                    pthread_mutex_unlock(&mutex)
                    spins = 0
                }
            }
            seen = generation.load(ordering: .acquiring)
            if stop.load(ordering: .sequentiallyConsistent) { return }
            job?(index)
            pending.subtract(1, ordering: .releasing)
        }
    }

    /// Runs `body(workerIndex)` once on every thread (caller is index 0).
    public func run(_ body: (Int) -> Void) {
        if threadCount == 1 || busy { body(0); return }
        withoutActuallyEscaping(body) { body in
            busy = true
            job = body
            pending.store(threadCount - 1, ordering: .relaxed)
            generation.add(1, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(&mutex)
                pthread_cond_broadcast(&cond)
                pthread_mutex_unlock(&mutex)
            }
            body(0)
            while pending.load(ordering: .acquiring) > 0 {}
            job = nil
            busy = false
        }
    }

    /// Splits `0..<n` into one contiguous range per thread; runs inline when
    /// there are fewer than `grain` items per thread (not worth the hand-off).
    public func parallelFor(_ n: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        let t = min(threadCount, n / max(grain, 1))
        if t <= 1 || busy { if n > 0 { body(0..<n) }; return }
        run { w in
            guard w < t else { return }
            let lo = n * w / t, hi = n * (w + 1) / t
            if lo < hi { body(lo..<hi) }
        }
    }
}

/// `ThreadPool.shared.parallelFor`.
@inline(__always)
public func parallelFor(_ n: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
    ThreadPool.shared.parallelFor(n, grain: grain, body)
}
