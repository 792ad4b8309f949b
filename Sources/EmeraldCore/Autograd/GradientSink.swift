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
    public static func merge(_ sinks: [GradientSink]) {
        for sink in sinks {
            for (leaf, g) in sink.entries {
                if let grad = leaf.grad {
                    Kernels.add(grad.data, g.data, into: grad.data, count: grad.count)
                } else {
                    leaf.grad = g
                }
            }
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
