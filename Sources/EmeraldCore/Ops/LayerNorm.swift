extension Tensor {
    /// Fused layer normalisation over the last axis (C):
    /// y = (x − mean) · rstd · weight + bias, rstd = 1/√(var + eps).
    /// Forward keeps mean and rstd per row (B·T floats each) for backward.
    public func layerNorm(weight: Tensor, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
        let c = shape.last ?? 1
        precondition(weight.count == c && (bias?.count ?? c) == c, "layerNorm parameters do not match \(c) features")
        let rows = count / Swift.max(c, 1)
        let backend = self.backend
        let y = Tensor(uninitialized: shape, on: backend)
        let stats = Tensor(uninitialized: [rows, 2], on: backend)  // (mean, rstd)
        backend.layerNormForward(data, weight: weight.data, bias: bias?.data, into: y.data, stats: stats.data, rows: rows, c: c, eps: eps)
        var inputs = [self, weight]
        if let bias { inputs.append(bias) }
        return y.record(inputs) { g in
            // Captures stats: it must outlive forward.
            let dx = self.requiresGrad ? Tensor(uninitialized: self.shape, on: backend) : nil
            let dw = Tensor(uninitialized: [c], on: backend), db = Tensor(uninitialized: [c], on: backend)
            backend.layerNormBackward(self.data, g: g.data, weight: weight.data, stats: stats.data, dx: dx?.data, dw: dw.data,
                                      db: db.data, rows: rows, c: c)
            if let dx { self.adoptGrad(dx) }
            weight.adoptGrad(dw)
            bias?.adoptGrad(db)
        }
    }
}
