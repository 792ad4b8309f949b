import Foundation

extension Tensor {
    /// Rotary position embedding (RoFormer), in the "rotate half" layout of Hugging Face's
    /// Llama: in each head of `heads` (channels h·hs ..< (h+1)·hs of the last axis), channel
    /// pair (i, i + hs/2) at position p turns by the angle p·ω_i:
    /// x′_i = x_i cos − x_{i+hs/2} sin, x′_{i+hs/2} = x_{i+hs/2} cos + x_i sin.
    ///
    /// `self` is (…, T, heads·hs); its rows sit at positions `start ..< start + T`.
    /// `inverseFrequencies` holds ω_0 … ω_{hs/2−1}. Backward turns the gradient back by −p·ω_i.
    public func rotaryEmbedding(heads: Int, start: Int, inverseFrequencies: [Float]) -> Tensor {
        precondition(rank >= 2, "rotary embedding needs (…, T, channels), got \(shape)")
        let c = shape[rank - 1], t = shape[rank - 2], half = inverseFrequencies.count
        precondition(heads > 0 && c == heads * 2 * half, "rotary embedding: \(c) channels are not \(heads) heads of \(2 * half)")
        // cos and sin per (position, pair): angles in float32 as Hugging Face computes them,
        // the functions in double.
        var cos = [Float](repeating: 0, count: t * half), sin = cos
        for p in 0..<t {
            for i in 0..<half {
                let angle = Double(Float(start + p) * inverseFrequencies[i])
                cos[p * half + i] = Float(Foundation.cos(angle))
                sin[p * half + i] = Float(Foundation.sin(angle))
            }
        }
        let backend = self.backend
        let out = Tensor(uninitialized: shape, on: backend)
        backend.rotary(data, into: out.data, rows: count / c, time: t, heads: heads, half: half, cos: cos, sin: sin, sign: 1)
        return out.record([self]) { g in
            let dx = Tensor(uninitialized: self.shape, on: backend)
            backend.rotary(g.data, into: dx.data, rows: self.count / c, time: t, heads: heads, half: half, cos: cos, sin: sin, sign: -1)
            self.adoptGrad(dx)
        }
    }
}
