import CEmeraldSIMD

/// How a key/value cache stores its entries.
public enum KVStorage: Sendable {
    /// fp32: attention as the uncached forward computes it.
    case fp32
    /// bfloat16 (round to nearest even), widened to fp32 as attention reads them: half the
    /// bytes, which batched int8 decoding reads as much of as a tenth of its weights.
    case bf16
}

/// One attention layer's keys and values for the positions seen so far, so each new token
/// costs one position of work instead of the whole context (inference only).
public final class LayerKVCache {
    /// Key/value heads.
    public let kvHeads: Int
    /// Channels per head.
    public let headSize: Int
    /// Positions the cache can hold.
    public let capacity: Int
    /// Positions filled.
    public private(set) var length = 0
    /// How keys and values are stored.
    public let storage: KVStorage
    /// (kvHeads, capacity, hs) each: a head's positions are contiguous, so decoding reads each
    /// head's keys and values as one stream, not 64 floats of every 3 KiB row. bf16 entries
    /// pack two to a float of the tensor.
    private let keys: Tensor, values: Tensor

    /// An empty cache on `backend`'s device (its memory is allocated now: decoding allocates
    /// nothing per token). `.bf16` storage is on the CPU only.
    public init(kvHeads: Int, headSize: Int, capacity: Int, storage: KVStorage = .fp32, on backend: any Backend = Backends.cpu) {
        precondition(kvHeads > 0 && headSize > 0 && capacity > 0, "a cache needs heads, channels and positions")
        precondition(storage == .fp32 || backend.device == .cpu, "bf16 key/value caches are on the CPU only")
        self.kvHeads = kvHeads; self.headSize = headSize; self.capacity = capacity; self.storage = storage
        let shape = storage == .fp32 ? [kvHeads, capacity, headSize] : [(kvHeads * capacity * headSize + 1) / 2]
        keys = Tensor(uninitialized: shape, on: backend)
        values = Tensor(uninitialized: shape, on: backend)
    }

    /// Forgets every position.
    public func reset() { length = 0 }

    /// Stores the keys and values of n new positions (rows of `k`, `v`: (…, n, kvHeads·hs)),
    /// then returns the causal attention of the n queries (…, n, heads·hs) at positions
    /// length ..< length+n over every cached position up to their own: (n, heads·hs).
    public func attend(q: Columns, k: Columns, v: Columns, heads: Int) -> Tensor {
        LayerKVCache.attend([self], counts: [q.tensor.count / q.rowStride], q: q, k: k, v: v, heads: heads)
    }

    /// Several sequences at once: sequence s owns `counts[s]` consecutive rows of q, k and v
    /// (in order), which extend `caches[s]` and attend to it alone. Returns (Σ counts, heads·hs);
    /// each sequence's rows are what `attend` gives it alone.
    public static func attend(_ caches: [LayerKVCache], counts: [Int], q: Columns, k: Columns, v: Columns,
                              heads: Int) -> Tensor {
        precondition(caches.count == counts.count && !caches.isEmpty, "cached attention: one count per cache")
        let first = caches[0], hs = first.headSize, kvHeads = first.kvHeads, rows = q.tensor.count / q.rowStride
        precondition(counts.reduce(0, +) == rows && counts.allSatisfy { $0 > 0 }, "cached attention: counts \(counts) for \(rows) rows")
        precondition(q.range.count == heads * hs && heads % kvHeads == 0, "cached attention: \(q.range.count) query channels for \(heads) heads of \(hs)")
        precondition(k.range.count == kvHeads * hs && v.range.count == kvHeads * hs, "cached attention: keys/values need \(kvHeads)×\(hs) channels")
        precondition(k.tensor.count / k.rowStride == rows && v.tensor.count / v.rowStride == rows, "cached attention: q, k and v differ in positions")
        let out = Tensor(uninitialized: [rows, heads * hs], on: first.keys.backend)
        var row = 0, sequences: [CachedSequence] = []
        sequences.reserveCapacity(caches.count)
        // Every new row goes to cold lines on a page of its own per head (a head's positions
        // are contiguous): asked for all at once, their misses overlap instead of queueing.
        for (cache, n) in zip(caches, counts) { cache.prefetchStore(count: n) }
        for (cache, n) in zip(caches, counts) {
            precondition(cache.kvHeads == kvHeads && cache.headSize == hs, "cached attention: caches of one layer differ in shape")
            precondition(cache.length + n <= cache.capacity, "cache of \(cache.capacity) cannot take \(cache.length + n) positions")
            precondition(cache.keys.backend === first.keys.backend, "cached attention: caches of one layer on different backends")
            precondition(cache.storage == first.storage, "cached attention: caches of one layer differ in storage")
            cache.store(k: k, v: v, rows: row..<(row + n))
            sequences.append(CachedSequence(row: row, n: n, start: cache.length, k: cache.keys.data, v: cache.values.data,
                                            headStride: cache.capacity * hs, storage: cache.storage))
            cache.length += n
            row += n
        }
        first.keys.backend.cachedAttention(q: q.tensor.data + q.range.lowerBound, qStride: q.rowStride, sequences: sequences,
                                           rowStride: hs, heads: heads, kvHeads: kvHeads, headSize: hs, out: out.data)
        return out
    }

    /// Prefetches, for writing, where `store` puts the next `count` positions.
    private func prefetchStore(count: Int) {
        guard keys.backend.device == .cpu else { return }  // a device's memory is not the CPU's to prefetch
        let bytesPerEntry = storage == .bf16 ? 2 : 4, rowBytes = headSize * bytesPerEntry
        let headBytes = capacity * rowBytes, kc = UnsafeRawPointer(keys.data), vc = UnsafeRawPointer(values.data)
        for h in 0..<kvHeads {
            let first = h * headBytes + length * rowBytes
            for offset in stride(from: first & ~63, to: first + count * rowBytes, by: 64) {
                emerald_prefetch_write(kc + offset)
                emerald_prefetch_write(vc + offset)
            }
        }
    }

    /// Copies rows `rows` of `k` and `v` into the positions after `length` (length unchanged).
    private func store(k: Columns, v: Columns, rows: Range<Int>) {
        let hs = headSize, headStride = capacity * hs
        let kc = keys.data, vc = values.data
        let kp = k.tensor.data + k.range.lowerBound, vp = v.tensor.data + v.range.lowerBound
        for (i, r) in rows.enumerated() {
            for h in 0..<kvHeads {
                let at = h * headStride + (length + i) * hs
                switch storage {
                case .fp32:
                    keys.backend.copy(kp + r * k.rowStride + h * hs, to: kc + at, count: hs)
                    keys.backend.copy(vp + r * v.rowStride + h * hs, to: vc + at, count: hs)
                case .bf16:
                    let kb = UnsafeMutableRawPointer(kc).assumingMemoryBound(to: UInt16.self) + at
                    let vb = UnsafeMutableRawPointer(vc).assumingMemoryBound(to: UInt16.self) + at
                    BF16Matrix.round(kp + r * k.rowStride + h * hs, into: kb, count: hs)
                    BF16Matrix.round(vp + r * v.rowStride + h * hs, into: vb, count: hs)
                }
            }
        }
    }
}
