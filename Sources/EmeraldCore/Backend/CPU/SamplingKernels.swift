/// The CPU's sampling: top-k by a heap, the nucleus without sorting, a multinomial draw (no
/// autograd).
public enum Sampling {
    /// Draws one id from a row of logits: argmax at temperature 0 (ties: the lower id), else
    /// softmax(logits / T) cut to the k most likely and to the nucleus p.
    public static func pick(_ logits: [Float], rule: SamplingRule, rng: inout RandomGenerator) -> Int {
        let temperature = rule.temperature
        if temperature == 0 { return logits.withUnsafeBufferPointer { argmax($0.baseAddress!, $0.count) } }
        let scaled = logits.map { $0 / temperature }
        // Candidates: the k best (largest first) or, with ids nil, every id in order.
        let ids = rule.topK.flatMap { $0 < scaled.count ? topK(scaled, $0).map(\.index) : nil }
        var probs = ids.map { $0.map { scaled[$0] } } ?? scaled
        // Unnormalised probabilities e^{x − m}, eight lanes at a time: libm's exp in Double,
        // even on both threads, took ≈ 0.5 ms for GPT-2's 50,257 logits (an int8 token's
        // forward pass is ≈ 4 ms).
        probs.withUnsafeMutableBufferPointer { p in
            exponentiate(p.baseAddress!, p.count, minus: maximum(p.baseAddress!, p.count))
        }
        if let p = rule.topP, p < 1 { probs = nucleus(probs, p) }
        let drawn = multinomial(probs, using: &rng)
        return ids?[drawn] ?? drawn
    }

    /// The first index of the largest of x[0..<n] (finite values; 0 when none compares, e.g.
    /// all NaN): greedy decoding's token. A vector maximum, then a vector search for it — a
    /// scalar scan of GPT-2's 50,257 logits was 2% of a batched int8 step.
    public static func argmax(_ x: UnsafePointer<Float>, _ n: Int) -> Int {
        let m = SoftmaxKernel.maxValue(x, n), mv = SIMD16<Float>(repeating: m)
        var i = 0
        while i + 16 <= n && !any(UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self) .== mv) { i += 16 }
        while i < n && x[i] != m { i += 1 }
        return i < n ? i : 0
    }

    /// p[i] = e^{p[i] − m} in place, eight lanes at a time (`exp8`: within 4e-7 relative of
    /// libm's Double exp), on both threads for a vocabulary-sized row.
    public static func exponentiate(_ p: UnsafeMutablePointer<Float>, _ n: Int, minus m: Float) {
        parallelFor(n, grain: 16_384) { r in _ = Kernels.expShiftSum8(p + r.lowerBound, r.count, minus: m) }
    }

    /// Whether x[0..<n] holds only finite numbers (x·0 is NaN for NaN and ±∞ alone).
    public static func allFinite(_ x: UnsafePointer<Float>, _ n: Int) -> Bool {
        var acc = F8(repeating: 0)
        var i = 0
        while i + 8 <= n { acc += load8(x + i) * 0; i += 8 }
        var ok = acc == F8(repeating: 0)
        while i < n { ok = ok && x[i].isFinite; i += 1 }
        return ok
    }

    /// The largest entry of x[0..<n] (−∞ when empty; NaNs are skipped): softmax's row maximum.
    public static func maximum(_ x: UnsafePointer<Float>, _ n: Int) -> Float { SoftmaxKernel.maxValue(x, n) }

    /// Indices and values of the `k` largest entries, largest first (equal values: lower
    /// index first). A heap of the best k so far, worst at the root: most entries lose to the
    /// root after one comparison, where sorting GPT-2's 50,257 logits took 5.8 ms a token.
    public static func topK(_ row: [Float], _ k: Int) -> [(index: Int, value: Float)] {
        precondition(k > 0, "top-k needs k > 0")
        let k = Swift.min(k, row.count)
        @inline(__always) func before(_ a: Int, _ b: Int) -> Bool { row[a] > row[b] || (row[a] == row[b] && a < b) }
        var heap: [Int] = []
        heap.reserveCapacity(k)
        for i in row.indices {
            if heap.count < k {
                heap.append(i)
                var c = heap.count - 1
                while c > 0, before(heap[(c - 1) / 2], heap[c]) { heap.swapAt(c, (c - 1) / 2); c = (c - 1) / 2 }
            } else if before(i, heap[0]) {
                heap[0] = i
                var c = 0
                while true {
                    let l = 2 * c + 1, r = l + 1
                    guard l < k else { break }
                    let worse = r < k && before(heap[l], heap[r]) ? r : l
                    guard before(heap[c], heap[worse]) else { break }
                    heap.swapAt(c, worse)
                    c = worse
                }
            }
        }
        return heap.sorted(by: before).map { (index: $0, value: row[$0]) }
    }

    /// `probs` (non-negative) with all but the smallest set of most likely entries whose share
    /// of the total reaches `p` set to 0 (top-p; equal values: lower index first; shares summed
    /// in Double).
    ///
    /// The cut is found without sorting the row: the bit patterns of non-negative floats sort
    /// as their values do, so one pass sums the mass of each 2^16-wide band of patterns, the
    /// bands are walked from the top until the mass reaches p, and only the band where it
    /// does is sorted. On a flat row (a random model, a high temperature) the nucleus holds
    /// most of GPT-2's 50,257 entries, and finding it by ever wider top-k searches took
    /// ≈ 15 ms a token.
    public static func nucleus(_ probs: [Float], _ p: Float) -> [Float] {
        let n = probs.count
        var total = 0.0
        for x in probs { total += Double(x) }
        let target = Double(p) * total
        // The sign bit is masked so that −0 falls with +0.
        @inline(__always) func bandOf(_ x: Float) -> Int { Int((x.bitPattern & 0x7FFF_FFFF) >> 16) }
        var mass = [Double](repeating: 0, count: 1 << 15)
        for x in probs { mass[bandOf(x)] += Double(x) }
        var above = 0.0, band = (1 << 15) - 1
        while band > 0 && above + mass[band] < target { above += mass[band]; band -= 1 }
        var edge: [(index: Int, value: Float)] = []
        for (i, x) in probs.enumerated() where bandOf(x) == band { edge.append((i, x)) }
        edge.sort { $0.value > $1.value || ($0.value == $1.value && $0.index < $1.index) }
        var acc = above, kept = edge.count
        for (k, e) in edge.enumerated() {
            acc += Double(e.value)
            if acc >= target { kept = k + 1; break }
        }
        var out = [Float](repeating: 0, count: n)
        for (i, x) in probs.enumerated() where bandOf(x) > band { out[i] = x }
        for e in edge.prefix(kept) { out[e.index] = e.value }
        return out
    }

    /// Draws an index with probability proportional to `weights` (non-negative).
    public static func multinomial(_ weights: [Float], using rng: inout RandomGenerator) -> Int {
        let total = weights.reduce(0.0) { $0 + Double($1) }
        precondition(total > 0, "multinomial needs positive total weight")
        let u = rng.nextDouble() * total
        var acc = 0.0
        for (i, w) in weights.enumerated() {
            acc += Double(w)
            if u < acc { return i }
        }
        return weights.lastIndex { $0 > 0 }!
    }
}
