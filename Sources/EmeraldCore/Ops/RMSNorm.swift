extension Tensor {
    /// Root-mean-square normalisation over the last axis (C), Llama's `LlamaRMSNorm`:
    /// y = x · rstd · weight, rstd = 1/√(mean(x²) + eps). No mean is subtracted and there is no
    /// bias. Forward keeps rstd per row (B·T floats) for backward.
    public func rmsNorm(weight: Tensor, eps: Float = 1e-6) -> Tensor {
        let c = shape.last ?? 1
        precondition(weight.count == c, "rmsNorm weight of \(weight.count) does not match \(c) features")
        let rows = count / Swift.max(c, 1)
        let backend = self.backend
        let y = Tensor(uninitialized: shape, on: backend)
        let rstd = Tensor(uninitialized: [rows], on: backend)
        backend.rmsNormForward(data, weight: weight.data, into: y.data, rstd: rstd.data, rows: rows, c: c, eps: eps)
        return y.record([self, weight]) { g in
            // Captures rstd: it must outlive forward.
            let dx = self.requiresGrad ? Tensor(uninitialized: self.shape, on: backend) : nil
            let dw = Tensor(uninitialized: [c], on: backend)
            backend.rmsNormBackward(self.data, g: g.data, weight: weight.data, rstd: rstd.data, dx: dx?.data, dw: dw.data,
                                    rows: rows, c: c)
            if let dx { self.adoptGrad(dx) }
            weight.adoptGrad(dw)
        }
    }
}
