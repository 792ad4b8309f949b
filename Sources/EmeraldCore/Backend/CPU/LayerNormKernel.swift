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
