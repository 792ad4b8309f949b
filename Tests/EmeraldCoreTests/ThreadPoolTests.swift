import EmeraldCore
import Foundation
import Synchronization
import XCTest

/// The pool runs every share of every job exactly once, whether a worker takes it or the
/// caller revokes it from a worker that had not started (parked, or preempted).
final class ThreadPoolTests: XCTestCase {
    /// Runs `jobs` parallelFors over `n` items, counting each item's runs.
    private func counts(_ pool: ThreadPool, jobs: Int, n: Int, pause: Double) -> [Int] {
        let runs = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: n)
        for i in 0..<n { (runs + i).initialize(to: Atomic(0)) }
        defer { runs.deinitialize(count: n); runs.deallocate() }
        for _ in 0..<jobs {
            pool.parallelFor(n) { range in for i in range { runs[i].add(1, ordering: .relaxed) } }
            if pause > 0 { Thread.sleep(forTimeInterval: pause) }
        }
        return (0..<n).map { runs[$0].load(ordering: .relaxed) }
    }

    func testEveryShareRunsOnceTakenOrRevoked() {
        let pool = ThreadPool(threads: 4)
        defer { pool.shutdown() }
        // Back to back: workers spinning take their shares.
        XCTAssertEqual(counts(pool, jobs: 20_000, n: 7, pause: 0), Array(repeating: 20_000, count: 7))
        // After a pause the workers have parked (a wake takes tens of µs): the caller runs
        // their shares itself, and a worker waking late must not run a share again.
        let before = pool.revokedShares
        var jobs = 0
        while pool.revokedShares == before && jobs < 400 {
            XCTAssertEqual(counts(pool, jobs: 1, n: 4, pause: 0.003), [1, 1, 1, 1])
            jobs += 1
        }
        XCTAssertGreaterThan(pool.revokedShares, before, "no share was revoked in \(jobs) jobs after idle pauses")
        // Revoked and taken shares interleaved: still once each.
        XCTAssertEqual(counts(pool, jobs: 300, n: 5, pause: 0.0005), Array(repeating: 300, count: 5))
    }
}
