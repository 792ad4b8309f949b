#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Leaf gradients of one data-parallel shard.
///
/// Shards of a batch run forward and backward at once on their own threads, over the same
/// parameters. While a sink is installed on a thread (`collect`), gradients that reach a
/// leaf (a tensor no recorded op produced: a parameter) accumulate here instead of into the
/// leaf's shared `grad`, so no two shards write the same memory. `merge` adds them up after.
public final class GradientSink {
    private var index: [ObjectIdentifier: Int] = [:]
    private var entries: [(leaf: Tensor, grad: Tensor)] = []

    /// An empty sink.
    public init() {}

    /// Runs `body` with this sink receiving the calling thread's leaf gradients.
    public func collect<R>(_ body: () throws -> R) rethrows -> R {
        let saved = pthread_getspecific(Self.key)
        pthread_setspecific(Self.key, Unmanaged.passUnretained(self).toOpaque())
        defer { pthread_setspecific(Self.key, saved) }
        return try body()
    }

    /// Adds every gradient collected by `sinks` into its leaf's `grad` (a leaf without one
    /// takes the first sink's tensor as is), then empties the sinks.
    ///
    /// The additions run as one pass split across the pool's threads: added one tensor at a
    /// time, most of a small model's tensors fell below the elementwise kernels' threading
    /// grain, and the whole merge ran on the calling thread while the others waited.
    public static func merge(_ sinks: [GradientSink]) {
        var adds: [(into: UnsafeMutablePointer<Float>, from: UnsafePointer<Float>, count: Int)] = []
        for sink in sinks {
            for (leaf, g) in sink.entries {
                if let grad = leaf.grad {
                    adds.append((grad.data, UnsafePointer(g.data), grad.count))
                } else {
                    leaf.grad = g
                }
            }
        }
        // Thread w adds the w-th slice of every tensor: several sinks' additions into one
        // leaf meet on the same thread in sink order, so the sums are the serial ones, bit
        // for bit.
        let total = adds.reduce(0) { $0 + $1.count }
        let t = total < Kernels.parallelGrain ? 1 : ThreadPool.shared.availableThreads
        adds.withUnsafeBufferPointer { list in
            parallelFor(t) { r in
                for w in r {
                    for a in list {
                        let lo = a.count * w / t, hi = a.count * (w + 1) / t
                        // Inside the pool's run the elementwise kernel stays on this thread.
                        if lo < hi { Kernels.add(a.into + lo, a.from + lo, into: a.into + lo, count: hi - lo) }
                    }
                }
            }
        }
        for sink in sinks {
            sink.entries.removeAll(keepingCapacity: true)
            sink.index.removeAll(keepingCapacity: true)
        }
    }

    /// The sink installed on this thread, if any.
    static var current: GradientSink? {
        pthread_getspecific(key).map { Unmanaged<GradientSink>.fromOpaque($0).takeUnretainedValue() }
    }

    /// `leaf`'s gradient in this shard.
    subscript(leaf: Tensor) -> Tensor? {
        get { index[ObjectIdentifier(leaf)].map { entries[$0].grad } }
        set {
            let id = ObjectIdentifier(leaf)
            if let i = index[id] {
                if let newValue { entries[i].grad = newValue }
            } else if let newValue {
                index[id] = entries.count
                entries.append((leaf, newValue))
            }
        }
    }

    nonisolated(unsafe) private static var key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()
}
