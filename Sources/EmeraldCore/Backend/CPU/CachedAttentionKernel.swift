import CEmeraldSIMD

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
        forward(q: q, qStride: qStride, sequences: [CachedSequence(row: 0, n: n, start: start, k: k, v: v, headStride: headStride)],
                rowStride: rowStride, heads: heads, kvHeads: kvHeads, headSize: hs, out: out)
    }

    /// `forward` for several sequences in one hand-off to the threads (a batched decode step
    /// had one per sequence and layer): sequence s's rows of q and out are
    /// `s.row ..< s.row + s.n`, its cache `s.k`, `s.v`. Each (sequence, row, head) is computed
    /// as `forward` computes it alone.
    public static func forward(q: UnsafePointer<Float>, qStride: Int, sequences: [CachedSequence], rowStride: Int, heads: Int,
                               kvHeads: Int? = nil, headSize hs: Int, out: UnsafeMutablePointer<Float>) {
        let c = heads * hs, group = heads / (kvHeads ?? heads)
        let scale = 1 / Float(hs).squareRoot()
        // Work items before each sequence (heads·n of them per sequence), and the longest
        // sequence's positions (the scores' scratch).
        var firsts = [0], longest = 0
        for s in sequences {
            firsts.append(firsts.last! + heads * s.n)
            longest = Swift.max(longest, s.start + s.n)
        }
        // Threads claim items a few at a time instead of taking halves: costs differ per
        // sequence and grow with a prompt's positions, and a worker that starts late still takes
        // what is left. ~32 claims a thread for a prompt, 4 items a claim for a step's
        // sequences, one even share each when there are few items (a claim moves a cache line
        // between cores: 12 of them at one stream cost 3%). The counter is the calling thread's
        // GEMM one, on a line of its own (one on the caller's stack made this 6% slower).
        let total = firsts.last!, counter = GEMMScratch.current, threads = ThreadPool.shared.availableThreads
        let claim = total < 16 * threads ? (total + threads - 1) / threads : Swift.max(4, total / (32 * threads))
        counter.nextTask.store(0, ordering: .relaxed)
        firsts.withUnsafeBufferPointer { firsts in
            parallelFor((total + claim - 1) / claim) { _ in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: longest) { buf in
                    let p = buf.baseAddress!
                    var s = 0
                    while true {
                        let start = counter.nextTask.add(claim, ordering: .relaxed).oldValue
                        if start >= total { break }
                        for work in start..<Swift.min(start + claim, total) {
                            while work >= firsts[s + 1] { s += 1 }
                            let seq = sequences[s], local = work - firsts[s]
                            let h = local % heads, i = local / heads, row = seq.row + i
                            let visible = seq.start + i + 1
                            let qh = q + row * qStride + h * hs, oh = out + row * c + h * hs, at = h / group * seq.headStride
                            switch seq.storage {
                            case .fp32:
                                head(qh, seq.k + at, seq.v + at, stride: rowStride, hs: hs, count: visible, scale: scale, p: p, into: oh)
                            case .bf16:
                                let k = UnsafeRawPointer(seq.k).assumingMemoryBound(to: UInt16.self) + at
                                let v = UnsafeRawPointer(seq.v).assumingMemoryBound(to: UInt16.self) + at
                                head(qh, k, v, stride: rowStride, hs: hs, count: visible, scale: scale, p: p, into: oh)
                            }
                        }
                    }
                }
            }
        }
    }

    /// One query row of one head: softmax(scale·q·Kᵀ)·V over `count` positions, p as scratch.
    @inline(__always)
    static func head<E: KVEntry>(_ q: UnsafePointer<Float>, _ k: UnsafePointer<E>, _ v: UnsafePointer<E>, stride: Int, hs: Int,
                                 count: Int, scale: Float, p: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let m = scores(q, k, stride: stride, hs: hs, count: count, scale: scale, into: p)
        let inv = 1 / Kernels.expShiftSum8(p, count, minus: m)
        weightedSum(p, v, stride: stride, hs: hs, count: count, scale: inv, into: out)
    }

    /// p[j] = scale·(q·K[j]) for j < count, K's rows `stride` apart; returns max_j p[j].
    /// Four keys at a time, each with its own accumulator: one key at a time was a chain of
    /// dependent adds per key (a fifth of an int8 token's time at 528 cached positions).
    @inline(__always)
    static func scores<E: KVEntry>(_ q: UnsafePointer<Float>, _ k: UnsafePointer<E>, stride c: Int, hs: Int, count: Int,
                                   scale: Float, into p: UnsafeMutablePointer<Float>) -> Float {
        let h8 = hs / 8 * 8
        var m = -Float.infinity, j = 0
        while j + 4 <= count {
            let k0 = k + j * c, k1 = k0 + c, k2 = k1 + c, k3 = k2 + c
            var a0 = F8(), a1 = F8(), a2 = F8(), a3 = F8()
            var d = 0
            while d < h8 {
                let x = load8(q + d)
                a0 = a0.addingProduct(x, E.load8(k0 + d)); a1 = a1.addingProduct(x, E.load8(k1 + d))
                a2 = a2.addingProduct(x, E.load8(k2 + d)); a3 = a3.addingProduct(x, E.load8(k3 + d))
                d += 8
            }
            var s = horizontalSums(a0, a1, a2, a3)
            while d < hs { s += q[d] * SIMD4(E.value(k0, d), E.value(k1, d), E.value(k2, d), E.value(k3, d)); d += 1 }
            s *= scale
            for r in 0..<4 { p[j + r] = s[r]; m = Swift.max(m, s[r]) }
            j += 4
        }
        while j < count {
            let s = E.dot(q, k + j * c, hs) * scale
            p[j] = s; m = Swift.max(m, s)
            j += 1
        }
        return m
    }

    /// out = scale·Σ_{j < count} w[j]·V[j], V's rows `stride` apart. The output stays in
    /// registers over all j (64 columns at a time) instead of being loaded and stored per key.
    @inline(__always)
    static func weightedSum<E: KVEntry>(_ w: UnsafePointer<Float>, _ v: UnsafePointer<E>, stride c: Int, hs: Int, count: Int,
                                        scale: Float, into out: UnsafeMutablePointer<Float>) {
        var d = 0
        while d + 64 <= hs {
            var o0 = F8(), o1 = F8(), o2 = F8(), o3 = F8(), o4 = F8(), o5 = F8(), o6 = F8(), o7 = F8()
            for j in 0..<count {
                let x = F8(repeating: w[j]), r = v + j * c + d
                o0 = o0.addingProduct(x, E.load8(r)); o1 = o1.addingProduct(x, E.load8(r + 8))
                o2 = o2.addingProduct(x, E.load8(r + 16)); o3 = o3.addingProduct(x, E.load8(r + 24))
                o4 = o4.addingProduct(x, E.load8(r + 32)); o5 = o5.addingProduct(x, E.load8(r + 40))
                o6 = o6.addingProduct(x, E.load8(r + 48)); o7 = o7.addingProduct(x, E.load8(r + 56))
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
                o0 = o0.addingProduct(F8(repeating: w[j]), E.load8(r))
                o1 = o1.addingProduct(F8(repeating: w[j + 1]), E.load8(r + c))
                o2 = o2.addingProduct(F8(repeating: w[j + 2]), E.load8(r + 2 * c))
                o3 = o3.addingProduct(F8(repeating: w[j + 3]), E.load8(r + 3 * c))
                j += 4
            }
            while j < count { o0 = o0.addingProduct(F8(repeating: w[j]), E.load8(v + j * c + d)); j += 1 }
            store8(((o0 + o1) + (o2 + o3)) * scale, out + d)
            d += 8
        }
        while d < hs {
            var s: Float = 0
            for j in 0..<count { s += w[j] * E.value(v, j * c + d) }
            out[d] = scale * s
            d += 1
        }
    }
}

/// An entry of a key/value cache as attention reads it: fp32, or bf16 widened.
protocol KVEntry {
    /// 8 entries at p as fp32.
    static func load8(_ p: UnsafePointer<Self>) -> F8
    /// Entry i as fp32.
    static func value(_ p: UnsafePointer<Self>, _ i: Int) -> Float
    /// q·k over n entries.
    static func dot(_ q: UnsafePointer<Float>, _ k: UnsafePointer<Self>, _ n: Int) -> Float
}

extension Float: KVEntry {
    @inline(__always) static func load8(_ p: UnsafePointer<Float>) -> F8 { EmeraldCore.load8(p) }
    @inline(__always) static func value(_ p: UnsafePointer<Float>, _ i: Int) -> Float { p[i] }
    @inline(__always) static func dot(_ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, _ n: Int) -> Float { Kernels.dot(q, k, n) }
}

extension UInt16: KVEntry {
    @inline(__always) static func load8(_ p: UnsafePointer<UInt16>) -> F8 { emerald_widen_bf16x8(p) }
    @inline(__always) static func value(_ p: UnsafePointer<UInt16>, _ i: Int) -> Float { BF16Matrix.widen(p[i]) }
    @inline(__always) static func dot(_ q: UnsafePointer<Float>, _ k: UnsafePointer<UInt16>, _ n: Int) -> Float {
        var s: Float = 0
        for i in 0..<n { s += q[i] * BF16Matrix.widen(k[i]) }
        return s
    }
}
