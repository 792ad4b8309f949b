// RMSNorm (Llama's normalisation): forward and backward side by side, as llm.c lays out its
// layers. No mean is subtracted and there is no bias: y = x · rstd · w, rstd = 1/√(mean(x²) + eps).

extension CPUBackend {
    public func rmsNormForward(_ x: UnsafePointer<Float>, weight w: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>,
                               rstd st: UnsafeMutablePointer<Float>, rows: Int, c: Int, eps: Float) {
        // One row at a time, the same arithmetic whatever the row count: a sequence decoded in a
        // batch is normalised to the bit as alone.
        parallelFor(rows, grain: Swift.max(1, 16384 / Swift.max(c, 1))) { r in
            for row in r {
                let xr = x + row * c, yr = y + row * c
                let rstd = 1 / (Kernels.dot(xr, xr, c) / Float(c) + eps).squareRoot()
                st[row] = rstd
                var i = 0
                while i + 16 <= c { store16(load16(xr + i) * rstd * load16(w + i), yr + i); i += 16 }
                while i < c { yr[i] = xr[i] * rstd * w[i]; i += 1 }
            }
        }
    }

    public func rmsNormBackward(_ x: UnsafePointer<Float>, g: UnsafePointer<Float>, weight w: UnsafePointer<Float>,
                                rstd st: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>,
                                rows: Int, c: Int) {
        // Rows split across threads; each sums its rows' dw into its own partial, merged after.
        let parts = Swift.max(1, Swift.min(ThreadPool.shared.availableThreads, rows * c / 16384))
        let partial = Tensor(uninitialized: [parts, c])
        let pd = partial.data
        parallelFor(parts) { r in
            for part in r {
                let dwp = pd + part * c
                dwp.initialize(repeating: 0, count: c)
                for row in (rows * part / parts)..<(rows * (part + 1) / parts) {
                    Kernels.rmsNormBackwardRow(x + row * c, g + row * c, w, c, rstd: st[row],
                                               dx: dx.map { $0 + row * c }, dw: dwp)
                }
            }
        }
        dw.update(from: pd, count: c)
        for part in 1..<parts { Kernels.axpy(1, pd + part * c, dw, c) }
    }
}

extension Kernels {
    /// One row of RMSNorm backward: with n = x·rstd and dn = g·w,
    /// dx = rstd·(dn − n·mean(dn·n)); adds g·n to dw.
    @inline(__always)
    static func rmsNormBackwardRow(_ x: UnsafePointer<Float>, _ g: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ c: Int,
                                   rstd: Float, dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>) {
        var acc = F16(repeating: 0)
        var i = 0
        while i + 16 <= c {
            let n = load16(x + i) * rstd, gi = load16(g + i)
            acc = acc.addingProduct(gi * load16(w + i), n)
            store16(load16(dw + i).addingProduct(gi, n), dw + i)
            i += 16
        }
        var s = hsum(acc)
        while i < c {
            let n = x[i] * rstd
            s += g[i] * w[i] * n; dw[i] += g[i] * n
            i += 1
        }
        guard let dx else { return }
        s /= Float(c)
        i = 0
        while i + 16 <= c {
            let n = load16(x + i) * rstd
            store16(rstd * (load16(g + i) * load16(w + i) - n * s), dx + i)
            i += 16
        }
        while i < c {
            dx[i] = rstd * (g[i] * w[i] - x[i] * rstd * s)
            i += 1
        }
    }
}
