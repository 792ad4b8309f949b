extension Tensor {
    /// Fused layer normalisation over the last axis (C):
    /// y = (x − mean) · rstd · weight + bias, rstd = 1/√(var + eps).
    /// Forward keeps mean and rstd per row (B·T floats each) for backward.
    public func layerNorm(weight: Tensor, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
        let c = shape.last ?? 1
        precondition(weight.count == c && (bias?.count ?? c) == c, "layerNorm parameters do not match \(c) features")
        let rows = count / Swift.max(c, 1)
        let y = Tensor(uninitialized: shape)
        let stats = Tensor(uninitialized: [rows, 2])  // (mean, rstd)
        let x = data, yd = y.data, w = weight.data, b = bias?.data, st = stats.data
        parallelFor(rows, grain: Swift.max(1, 16384 / c)) { r in
            for row in r {
                let xr = x + row * c, yr = yd + row * c
                let mean = Kernels.sum(xr, c) / Float(c)
                var acc = F16(repeating: 0)
                var i = 0
                while i + 16 <= c { let d = load16(xr + i) - mean; acc += d * d; i += 16 }
                var v = acc.sum()
                while i < c { let d = xr[i] - mean; v += d * d; i += 1 }
                let rstd = 1 / (v / Float(c) + eps).squareRoot()
                st[2 * row] = mean; st[2 * row + 1] = rstd
                i = 0
                while i + 16 <= c {
                    var o = (load16(xr + i) - mean) * rstd * load16(w + i)
                    if let b { o += load16(b + i) }
                    store16(o, yr + i); i += 16
                }
                while i < c { yr[i] = (xr[i] - mean) * rstd * w[i] + (b?[i] ?? 0); i += 1 }
            }
        }
        var inputs = [self, weight]
        if let bias { inputs.append(bias) }
        return y.record(inputs) { g in
            let gd = g.data, st = stats.data  // captures stats: it must outlive forward
            let dx = self.requiresGrad ? Tensor(uninitialized: self.shape) : nil
            let dw = Tensor.zeros([c]), db = Tensor.zeros([c])
            let dxd = dx?.data
            for row in 0..<rows {
                let xr = x + row * c, gr = gd + row * c
                let mean = st[2 * row], rstd = st[2 * row + 1]
                // dnorm = g·w; dx = rstd·(dnorm − mean(dnorm) − norm·mean(dnorm·norm))
                var s1: Float = 0, s2: Float = 0
                for i in 0..<c {
                    let n = (xr[i] - mean) * rstd
                    let dn = gr[i] * w[i]
                    s1 += dn; s2 += dn * n
                    dw.data[i] += gr[i] * n
                    db.data[i] += gr[i]
                }
                s1 /= Float(c); s2 /= Float(c)
                if let dxd {
                    let dr = dxd + row * c
                    for i in 0..<c {
                        let n = (xr[i] - mean) * rstd
                        dr[i] = rstd * (gr[i] * w[i] - s1 - n * s2)
                    }
                }
            }
            if let dx { self.adoptGrad(dx) }
            weight.adoptGrad(dw)
            bias?.adoptGrad(db)
        }
    }
}
