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
        let out = Tensor(uninitialized: shape)
        Kernels.rotate(data, into: out.data, rows: count / c, time: t, heads: heads, half: half, cos: cos, sin: sin, sign: 1)
        return out.record([self]) { g in
            let dx = Tensor(uninitialized: self.shape)
            Kernels.rotate(g.data, into: dx.data, rows: self.count / c, time: t, heads: heads, half: half, cos: cos, sin: sin, sign: -1)
            self.adoptGrad(dx)
        }
    }
}

extension Kernels {
    /// out = x turned by (cos, sign·sin) per row position and channel pair (see `rotaryEmbedding`).
    static func rotate(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, rows: Int, time: Int, heads: Int,
                       half: Int, cos: [Float], sin: [Float], sign: Float) {
        let c = heads * 2 * half
        cos.withUnsafeBufferPointer { cs in
            sin.withUnsafeBufferPointer { sn in
                parallelFor(rows, grain: Swift.max(1, 4096 / c)) { range in
                    for r in range {
                        let tab = (r % time) * half
                        for h in 0..<heads {
                            let xi = x + r * c + h * 2 * half, oi = out + r * c + h * 2 * half
                            for i in 0..<half {
                                let co = cs[tab + i], si = sign * sn[tab + i]
                                let a = xi[i], b = xi[i + half]
                                oi[i] = a * co - b * si
                                oi[i + half] = b * co + a * si
                            }
                        }
                    }
                }
            }
        }
    }
}
