import Foundation
import Synchronization

/// Persistent workers that split loops across cores.
///
/// Transformer steps are hundreds of short kernels; `concurrentPerform`
/// costs tens of µs per call here, a spinning worker well under one. Workers
/// spin for a while after each job, then park on a condition variable.
///
/// A worker that has not started its share when the caller is done with its own (it was
/// preempted, e.g. by a server's I/O thread on 2 cores, or is parked) does not make the caller
/// wait: after a grace of a few µs the caller revokes that share and runs it itself. Only a
/// share already started is waited for.
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
    /// Each worker's share of the current job (index 0, the caller's, unused).
    private let shares: [Share]
    private let revoked = Atomic<Int>(0)
    /// Workers' shares the caller ran itself because they had not started them in time.
    public var revokedShares: Int { revoked.load(ordering: .relaxed) }
    private let sleepers = Atomic<Int>(0)
    private let stop = Atomic<Bool>(false)
    private var job: ((Int) -> Void)?
    private var busy = false
    private var mutex = pthread_mutex_t()
    private var cond = pthread_cond_t()

    /// Creates a pool with `threads - 1` workers.
    public init(threads: Int) {
        threadCount = max(1, threads)
        shares = (0..<threadCount).map { _ in Share() }
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
            // A share the caller revoked (or a job already over) is not ours any more.
            if shares[index].state.compareExchange(expected: Share.tag(seen, .open), desired: Share.tag(seen, .taken),
                                                   ordering: .acquiringAndReleasing).exchanged {
                job?(index)
                shares[index].state.store(Share.tag(seen, .done), ordering: .releasing)
            }
        }
    }

    /// Runs `body(workerIndex)` once on every thread (caller is index 0).
    public func run(_ body: (Int) -> Void) {
        if threadCount == 1 || busy { body(0); return }
        withoutActuallyEscaping(body) { body in
            busy = true
            job = body
            let g = generation.load(ordering: .relaxed) + 1
            for w in 1..<threadCount { shares[w].state.store(Share.tag(g, .open), ordering: .releasing) }
            generation.store(g, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(&mutex)
                pthread_cond_broadcast(&cond)
                pthread_mutex_unlock(&mutex)
            }
            body(0)
            for w in 1..<threadCount {
                var spins = 0
                while true {
                    let state = shares[w].state.load(ordering: .acquiring)
                    if state == Share.tag(g, .done) { break }
                    spins += 1
                    // A running worker takes its share within a µs of the post; one that has
                    // not after the caller's own share and this grace is descheduled or parked.
                    if state == Share.tag(g, .open) && spins > Self.graceSpins
                        && shares[w].state.compareExchange(expected: state, desired: Share.tag(g, .revoked),
                                                           ordering: .acquiringAndReleasing).exchanged {
                        revoked.add(1, ordering: .relaxed)
                        body(w)
                        break
                    }
                }
            }
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

extension ThreadPool {
    /// Spins (a few µs) the caller gives a worker to take its share before running it itself.
    static let graceSpins = 2_000

    /// A worker's share of one job, tagged with the job's generation: a worker that wakes late
    /// cannot take a later job's share for the one it missed.
    final class Share: @unchecked Sendable {
        enum Phase: Int { case open, taken, done, revoked }
        let state = Atomic<Int>(0)
        @inline(__always) static func tag(_ generation: Int, _ phase: Phase) -> Int { generation << 2 | phase.rawValue }
    }
}

/// `ThreadPool.shared.parallelFor`.
@inline(__always)
public func parallelFor(_ n: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
    ThreadPool.shared.parallelFor(n, grain: grain, body)
}
