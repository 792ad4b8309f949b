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

/// Attention of new queries against a key/value cache (inference only).
public enum CachedAttention {
    /// For `n` new queries at absolute positions `start ..< start+n`:
    /// out[i] = softmax(q_i · K[0...start+i]ᵀ / √hs) · V[0...start+i], per head.
    ///
    /// - q: (n, qStride), head h at channels h·hs ..< (h+1)·hs.
    /// - k, v: cached rows, positions < start+n filled; head h's row for position j at
    ///   `h·headStride + j·rowStride` (hs floats). (capacity, C) rows have rowStride C and
    ///   headStride hs; `KVCache` keeps each head's positions together (rowStride hs,
    ///   headStride capacity·hs), so a head's keys are one contiguous read.
    /// - kvHeads: key/value heads (nil: `heads`); query head h reads key/value head
    ///   h / (heads / kvHeads).
    /// - out: (n, C).
    public static func forward(q: UnsafePointer<Float>, qStride: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                               rowStride: Int, headStride: Int,
                               start: Int, n: Int, heads: Int, kvHeads: Int? = nil, headSize hs: Int,
                               out: UnsafeMutablePointer<Float>) {
        let c = heads * hs, group = heads / (kvHeads ?? heads)
        let scale = 1 / Float(hs).squareRoot()
        let total = start + n
        parallelFor(heads * n) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: total) { buf in
                let p = buf.baseAddress!
                for work in range {
                    let h = work % heads, i = work / heads
                    let visible = start + i + 1
                    let m = scores(q + i * qStride + h * hs, k + h / group * headStride, stride: rowStride, hs: hs,
                                   count: visible, scale: scale, into: p)
                    let inv = 1 / Kernels.expShiftSum8(p, visible, minus: m)
                    weightedSum(p, v + h / group * headStride, stride: rowStride, hs: hs, count: visible, scale: inv,
                                into: out + i * c + h * hs)
                }
            }
        }
    }

    /// p[j] = scale·(q·K[j]) for j < count, K's rows `stride` apart; returns max_j p[j].
    /// Four keys at a time, each with its own accumulator: one key at a time was a chain of
    /// dependent adds per key (a fifth of an int8 token's time at 528 cached positions).
    @inline(__always)
    static func scores(_ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, stride c: Int, hs: Int, count: Int,
                       scale: Float, into p: UnsafeMutablePointer<Float>) -> Float {
        let h8 = hs / 8 * 8
        var m = -Float.infinity, j = 0
        while j + 4 <= count {
            let k0 = k + j * c, k1 = k0 + c, k2 = k1 + c, k3 = k2 + c
            var a0 = F8(), a1 = F8(), a2 = F8(), a3 = F8()
            var d = 0
            while d < h8 {
                let x = load8(q + d)
                a0 = a0.addingProduct(x, load8(k0 + d)); a1 = a1.addingProduct(x, load8(k1 + d))
                a2 = a2.addingProduct(x, load8(k2 + d)); a3 = a3.addingProduct(x, load8(k3 + d))
                d += 8
            }
            var s = horizontalSums(a0, a1, a2, a3)
            while d < hs { s += q[d] * SIMD4(k0[d], k1[d], k2[d], k3[d]); d += 1 }
            s *= scale
            for r in 0..<4 { p[j + r] = s[r]; m = Swift.max(m, s[r]) }
            j += 4
        }
        while j < count {
            let s = Kernels.dot(q, k + j * c, hs) * scale
            p[j] = s; m = Swift.max(m, s)
            j += 1
        }
        return m
    }

    /// out = scale·Σ_{j < count} w[j]·V[j], V's rows `stride` apart. The output stays in
    /// registers over all j (64 columns at a time) instead of being loaded and stored per key.
    @inline(__always)
    static func weightedSum(_ w: UnsafePointer<Float>, _ v: UnsafePointer<Float>, stride c: Int, hs: Int, count: Int,
                            scale: Float, into out: UnsafeMutablePointer<Float>) {
        var d = 0
        while d + 64 <= hs {
            var o0 = F8(), o1 = F8(), o2 = F8(), o3 = F8(), o4 = F8(), o5 = F8(), o6 = F8(), o7 = F8()
            for j in 0..<count {
                let x = F8(repeating: w[j]), r = v + j * c + d
                o0 = o0.addingProduct(x, load8(r)); o1 = o1.addingProduct(x, load8(r + 8))
                o2 = o2.addingProduct(x, load8(r + 16)); o3 = o3.addingProduct(x, load8(r + 24))
                o4 = o4.addingProduct(x, load8(r + 32)); o5 = o5.addingProduct(x, load8(r + 40))
                o6 = o6.addingProduct(x, load8(r + 48)); o7 = o7.addingProduct(x, load8(r + 56))
            }
            let s = F8(repeating: scale), o = out + d
            store8(o0 * s, o); store8(o1 * s, o + 8); store8(o2 * s, o + 16); store8(o3 * s, o + 24)
            store8(o4 * s, o + 32); store8(o5 * s, o + 40); store8(o6 * s, o + 48); store8(o7 * s, o + 56)
            d += 64
        }
        while d + 8 <= hs {
            // One vector of columns: four keys in flight.
            var o0 = F8(), o1 = F8(), o2 = F8(), o3 = F8()
            var j = 0
            while j + 4 <= count {
                let r = v + j * c + d
                o0 = o0.addingProduct(F8(repeating: w[j]), load8(r))
                o1 = o1.addingProduct(F8(repeating: w[j + 1]), load8(r + c))
                o2 = o2.addingProduct(F8(repeating: w[j + 2]), load8(r + 2 * c))
                o3 = o3.addingProduct(F8(repeating: w[j + 3]), load8(r + 3 * c))
                j += 4
            }
            while j < count { o0 = o0.addingProduct(F8(repeating: w[j]), load8(v + j * c + d)); j += 1 }
            store8(((o0 + o1) + (o2 + o3)) * scale, out + d)
            d += 8
        }
        while d < hs {
            var s: Float = 0
            for j in 0..<count { s += w[j] * v[j * c + d] }
            out[d] = scale * s
            d += 1
        }
    }
}
