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
