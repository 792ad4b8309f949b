/// Attention of new queries against a key/value cache (inference only).
public enum CachedAttention {
    /// For `n` new queries at absolute positions `start ..< start+n`:
    /// out[i] = softmax(q_i · K[0...start+i]ᵀ / √hs) · V[0...start+i], per head.
    ///
    /// - q: (n, qStride), head h at channels h·hs ..< (h+1)·hs.
    /// - k, v: cache rows (capacity, C), C = heads·hs, rows < start+n filled.
    /// - out: (n, C).
    public static func forward(q: UnsafePointer<Float>, qStride: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                               start: Int, n: Int, heads: Int, headSize hs: Int, out: UnsafeMutablePointer<Float>) {
        let c = heads * hs
        let scale = 1 / Float(hs).squareRoot()
        let total = start + n
        parallelFor(heads * n) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: total) { buf in
                let p = buf.baseAddress!
                for work in range {
                    let h = work % heads, i = work / heads
                    let qi = q + i * qStride + h * hs
                    let visible = start + i + 1
                    var m = -Float.infinity
                    for j in 0..<visible {
                        let s = Kernels.dot(qi, k + j * c + h * hs, hs) * scale
                        p[j] = s
                        if s > m { m = s }
                    }
                    let inv = 1 / Kernels.expShiftSum8(p, visible, minus: m)
                    let oi = out + i * c + h * hs
                    oi.update(repeating: 0, count: hs)
                    for j in 0..<visible { Kernels.axpy(p[j] * inv, v + j * c + h * hs, oi, hs) }
                }
            }
        }
    }
}
