/// Plain loops over float buffers, 16 lanes at a time, split across cores
/// when long enough to pay for the hand-off.
public enum Kernels {
    /// Below this many elements a loop runs on one thread.
    public static let parallelGrain = 1 << 15

    /// y[i] = f(x[i]) for lanes of 16 (the tail through a padded vector).
    @inline(__always)
    public static func map(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int,
                           _ f: (F16) -> F16) {
        parallelFor(n, grain: parallelGrain) { r in
            var i = r.lowerBound
            while i + 16 <= r.upperBound { store16(f(load16(x + i)), y + i); i += 16 }
            if i < r.upperBound {
                var v = F16(repeating: 0)
                for j in 0..<(r.upperBound - i) { v[j] = x[i + j] }
                let o = f(v)
                for j in 0..<(r.upperBound - i) { y[i + j] = o[j] }
            }
        }
    }

    /// z[i] = f(x[i], y[i]).
    @inline(__always)
    public static func zip(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ z: UnsafeMutablePointer<Float>,
                           _ n: Int, _ f: (F16, F16) -> F16) {
        parallelFor(n, grain: parallelGrain) { r in
            var i = r.lowerBound
            while i + 16 <= r.upperBound { store16(f(load16(x + i), load16(y + i)), z + i); i += 16 }
            if i < r.upperBound {
                var a = F16(repeating: 0), b = F16(repeating: 0)
                for j in 0..<(r.upperBound - i) { a[j] = x[i + j]; b[j] = y[i + j] }
                let o = f(a, b)
                for j in 0..<(r.upperBound - i) { z[i + j] = o[j] }
            }
        }
    }

    /// w[i] = f(x[i], y[i], z[i]).
    @inline(__always)
    public static func zip3(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ z: UnsafePointer<Float>,
                            _ w: UnsafeMutablePointer<Float>, _ n: Int, _ f: (F16, F16, F16) -> F16) {
        parallelFor(n, grain: parallelGrain) { r in
            var i = r.lowerBound
            while i + 16 <= r.upperBound {
                store16(f(load16(x + i), load16(y + i), load16(z + i)), w + i); i += 16
            }
            if i < r.upperBound {
                var a = F16(repeating: 0), b = F16(repeating: 0), c = F16(repeating: 0)
                for j in 0..<(r.upperBound - i) { a[j] = x[i + j]; b[j] = y[i + j]; c[j] = z[i + j] }
                let o = f(a, b, c)
                for j in 0..<(r.upperBound - i) { w[i + j] = o[j] }
            }
        }
    }

    /// c = a + b.
    public static func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into c: UnsafeMutablePointer<Float>, count n: Int) {
        zip(a, b, c, n) { $0 + $1 }
    }

    /// Sum of all elements (pairwise over 16 lanes, accumulated in Double per chunk).
    public static func sum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = F16(repeating: 0)
        var total: Double = 0
        var i = 0
        while i + 16 <= n {
            acc += load16(x + i)
            i += 16
            if i & 4095 == 0 { total += Double(acc.sum()); acc = .init(repeating: 0) }
        }
        total += Double(acc.sum())
        while i < n { total += Double(x[i]); i += 1 }
        return Float(total)
    }

    /// Dot product of two rows.
    @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = F16(repeating: 0)
        var i = 0
        while i + 16 <= n { acc += load16(a + i) * load16(b + i); i += 16 }
        var s = hsum(acc)
        while i < n { s += a[i] * b[i]; i += 1 }
        return s
    }

    /// y[j] = beta·y[j] + Σ_r x[r·cols + j] (column sums of a rows × cols block; beta 0
    /// never reads y). Split across threads by column ranges, so no partials are merged.
    public static func sumRows(_ x: UnsafePointer<Float>, rows: Int, cols: Int,
                               into y: UnsafeMutablePointer<Float>, beta: Float) {
        let chunks = cols / 16  // 16-wide column chunks; a thread takes a contiguous range
        parallelFor(Swift.max(chunks, 1), grain: Swift.max(1, 8192 / Swift.max(rows, 1))) { r in
            let lo = r.lowerBound * 16, hi = r.upperBound == Swift.max(chunks, 1) ? cols : r.upperBound * 16
            var j = lo
            while j + 16 <= hi {
                var acc = beta == 0 ? F16(repeating: 0) : beta * load16(y + j)
                for row in 0..<rows { acc += load16(x + row * cols + j) }
                store16(acc, y + j); j += 16
            }
            while j < hi {
                var acc: Float = beta == 0 ? 0 : beta * y[j]
                for row in 0..<rows { acc += x[row * cols + j] }
                y[j] = acc; j += 1
            }
        }
    }

    /// y += alpha · x.
    @inline(__always)
    public static func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 16 <= n { store16(load16(y + i) + alpha * load16(x + i), y + i); i += 16 }
        while i < n { y[i] += alpha * x[i]; i += 1 }
    }
}
