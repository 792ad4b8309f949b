#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where the calling thread's batch sits inside a larger one, while a data-parallel shard
/// runs its slice of sequences.
///
/// Dropout masks are hashes of (seed, element position). Inside `run(rows:)`, positions
/// count from the start of the whole batch (tensors whose leading dimension is the batch), so
/// a shard draws exactly the mask the unsharded step draws for those sequences: sharding
/// changes a step's result only by float rounding.
public final class ShardRows {
    /// First sequence of this shard in the whole batch.
    public let first: Int
    /// Sequences in this shard.
    public let count: Int

    private init(first: Int, count: Int) { self.first = first; self.count = count }

    /// Runs `body` with the calling thread's tensors holding sequences `rows` of a batch.
    public static func run<R>(rows: Range<Int>, _ body: () throws -> R) rethrows -> R {
        let context = ShardRows(first: rows.lowerBound, count: rows.count)
        let saved = pthread_getspecific(key)
        pthread_setspecific(key, Unmanaged.passUnretained(context).toOpaque())
        defer { pthread_setspecific(key, saved) }
        return try withExtendedLifetime(context) { try body() }
    }

    /// Position in the whole batch of element 0 of a tensor of `elements` elements whose
    /// leading dimension is this thread's slice of the batch (0 outside a shard).
    public static func elementOffset(_ elements: Int) -> Int {
        guard let p = pthread_getspecific(key) else { return 0 }
        let s = Unmanaged<ShardRows>.fromOpaque(p).takeUnretainedValue()
        return elements % s.count == 0 ? s.first * (elements / s.count) : 0
    }

    nonisolated(unsafe) private static var key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()
}
