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
            let dxd = dx?.data
            // Rows split across threads; each sums its rows' dw, db into its own partial
            // (2·c floats), merged after: one pass over x and g.
            let parts = Swift.max(1, Swift.min(ThreadPool.shared.availableThreads, rows * c / 16384))
            let partial = Tensor(uninitialized: [parts, 2 * c])
            let pd = partial.data
            parallelFor(parts) { r in
                for part in r {
                    let dwp = pd + part * 2 * c, dbp = dwp + c
                    dwp.initialize(repeating: 0, count: 2 * c)
                    for row in (rows * part / parts)..<(rows * (part + 1) / parts) {
                        Kernels.layerNormBackwardRow(x + row * c, gd + row * c, w, c, mean: st[2 * row],
                                                     rstd: st[2 * row + 1], dx: dxd.map { $0 + row * c },
                                                     dw: dwp, db: dbp)
                    }
                }
            }
            let dw = Tensor(uninitialized: [c]), db = Tensor(uninitialized: [c])
            dw.data.update(from: pd, count: c)
            db.data.update(from: pd + c, count: c)
            for part in 1..<parts {
                Kernels.axpy(1, pd + part * 2 * c, dw.data, c)
                Kernels.axpy(1, pd + part * 2 * c + c, db.data, c)
            }
            if let dx { self.adoptGrad(dx) }
            weight.adoptGrad(dw)
            bias?.adoptGrad(db)
        }
    }
}

extension Kernels {
    /// One row of layer-norm backward: dx = rstd·(dn − mean(dn) − n·mean(dn·n)) with
    /// n = (x − mean)·rstd and dn = g·w; adds g·n to dw and g to db.
    @inline(__always)
    static func layerNormBackwardRow(_ x: UnsafePointer<Float>, _ g: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                                     _ c: Int, mean: Float, rstd: Float, dx: UnsafeMutablePointer<Float>?,
                                     dw: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>) {
        var a1 = F16(repeating: 0), a2 = F16(repeating: 0)
        var i = 0
        while i + 16 <= c {
            let n = (load16(x + i) - mean) * rstd, gi = load16(g + i), dn = gi * load16(w + i)
            a1 += dn; a2 = a2.addingProduct(dn, n)
            store16(load16(dw + i).addingProduct(gi, n), dw + i)
            store16(load16(db + i) + gi, db + i)
            i += 16
        }
        var s1 = hsum(a1), s2 = hsum(a2)
        while i < c {
            let n = (x[i] - mean) * rstd, dn = g[i] * w[i]
            s1 += dn; s2 += dn * n; dw[i] += g[i] * n; db[i] += g[i]
            i += 1
        }
        guard let dx else { return }
        s1 /= Float(c); s2 /= Float(c)
        i = 0
        while i + 16 <= c {
            let n = (load16(x + i) - mean) * rstd
            store16(rstd * (load16(g + i) * load16(w + i) - s1 - n * s2), dx + i)
            i += 16
        }
        while i < c {
            let n = (x[i] - mean) * rstd
            dx[i] = rstd * (g[i] * w[i] - s1 - n * s2)
            i += 1
        }
    }
}
