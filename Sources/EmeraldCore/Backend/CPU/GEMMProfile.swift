import Foundation

/// Time spent in `GEMM.sgemm` by shape and layout, from every thread, while enabled
/// (`emerald bench train --gemm-profile`). It is how attention's per-head products were found
/// to take 11% of a small model's step at a quarter of the big products' speed.
public enum GEMMProfile {
    /// One shape and layout: calls and the nanoseconds they took (summed over threads).
    public struct Entry: Sendable {
        public var m: Int, n: Int, k: Int, transA: Bool, transB: Bool
        public var calls: Int, nanoseconds: UInt64
        /// "NN", "NT" or "TN" (op(A), op(B)).
        public var layout: String { (transA ? "T" : "N") + (transB ? "T" : "N") }
        /// Achieved rate over all calls (2·m·n·k flops each).
        public var gflops: Double { 2 * Double(m * n * k) * Double(calls) / Double(max(nanoseconds, 1)) }
    }

    private struct Key: Hashable { var m: Int, n: Int, k: Int, transA: Bool, transB: Bool }

    /// Whether `sgemm` records its calls (one branch per call when off).
    public nonisolated(unsafe) static var isEnabled = false
    nonisolated(unsafe) private static var table: [Key: (calls: Int, ns: UInt64)] = [:]
    private static let lock = NSLock()

    static func record(m: Int, n: Int, k: Int, transA: Bool, transB: Bool, nanoseconds: UInt64) {
        let key = Key(m: m, n: n, k: k, transA: transA, transB: transB)
        lock.lock()
        let e = table[key] ?? (0, 0)
        table[key] = (e.calls + 1, e.ns + nanoseconds)
        lock.unlock()
    }

    /// Recorded entries, most time first.
    public static func entries() -> [Entry] {
        lock.lock()
        defer { lock.unlock() }
        return table.map { Entry(m: $0.key.m, n: $0.key.n, k: $0.key.k, transA: $0.key.transA, transB: $0.key.transB,
                                 calls: $0.value.calls, nanoseconds: $0.value.ns) }
            .sorted { $0.nanoseconds > $1.nanoseconds }
    }

    /// Forgets everything recorded.
    public static func reset() {
        lock.lock()
        table.removeAll()
        lock.unlock()
    }
}
