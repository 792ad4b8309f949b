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
    /// (kvHeads, capacity, hs) each: a head's positions are contiguous, so decoding reads each
    /// head's keys and values as one stream, not 64 floats of every 3 KiB row.
    private let keys: Tensor, values: Tensor

    /// An empty cache on `backend`'s device (its memory is allocated now: decoding allocates
    /// nothing per token).
    public init(kvHeads: Int, headSize: Int, capacity: Int, on backend: any Backend = Backends.cpu) {
        precondition(kvHeads > 0 && headSize > 0 && capacity > 0, "a cache needs heads, channels and positions")
        self.kvHeads = kvHeads; self.headSize = headSize; self.capacity = capacity
        keys = Tensor(uninitialized: [kvHeads, capacity, headSize], on: backend)
        values = Tensor(uninitialized: [kvHeads, capacity, headSize], on: backend)
    }

    /// Forgets every position.
    public func reset() { length = 0 }

    /// Stores the keys and values of n new positions (rows of `k`, `v`: (…, n, kvHeads·hs)),
    /// then returns the causal attention of the n queries (…, n, heads·hs) at positions
    /// length ..< length+n over every cached position up to their own: (n, heads·hs).
    public func attend(q: Columns, k: Columns, v: Columns, heads: Int) -> Tensor {
        let hs = headSize, n = q.tensor.count / q.rowStride, start = length
        precondition(q.range.count == heads * hs && heads % kvHeads == 0, "cached attention: \(q.range.count) query channels for \(heads) heads of \(hs)")
        precondition(k.range.count == kvHeads * hs && v.range.count == kvHeads * hs, "cached attention: keys/values need \(kvHeads)×\(hs) channels")
        precondition(k.tensor.count / k.rowStride == n && v.tensor.count / v.rowStride == n, "cached attention: q, k and v differ in positions")
        precondition(n > 0 && start + n <= capacity, "cache of \(capacity) cannot take \(start + n) positions")
        let headStride = capacity * hs
        let kc = keys.data, vc = values.data
        let kp = k.tensor.data + k.range.lowerBound, vp = v.tensor.data + v.range.lowerBound
        let backend = keys.backend
        for i in 0..<n {
            for h in 0..<kvHeads {
                let row = h * headStride + (start + i) * hs
                backend.copy(kp + i * k.rowStride + h * hs, to: kc + row, count: hs)
                backend.copy(vp + i * v.rowStride + h * hs, to: vc + row, count: hs)
            }
        }
        let out = Tensor(uninitialized: [n, heads * hs], on: keys.backend)
        keys.backend.cachedAttention(q: q.tensor.data + q.range.lowerBound, qStride: q.rowStride, k: kc, v: vc, rowStride: hs,
                                     headStride: headStride, start: start, n: n, heads: heads, kvHeads: kvHeads, headSize: hs,
                                     out: out.data)
        length = start + n
        return out
    }
}
