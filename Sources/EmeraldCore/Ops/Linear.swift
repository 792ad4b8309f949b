extension Tensor {
    /// The most rows a product without gradient computes row by row (see `linear`): the
    /// largest decode batch whose tokens equal each sequence's alone.
    public static let rowInvariantRows = 64

    /// Fused affine map on the last axis (llm.c's matmul_forward/backward):
    /// out (N, OC) = inp (N, C) · Wᵀ + b with W (OC, C), N = all leading dims.
    /// The bias is added by the GEMM's micro-kernel as it stores C, so the
    /// output is written once; gradients made fresh here are written, not zeroed
    /// then accumulated.
    ///
    /// Products of at most `Tensor.rowInvariantRows` rows that record no gradient (generation:
    /// a prompt, one token, or one token of each sequence in a batch) compute each row alone,
    /// with the same arithmetic whatever the number of rows: a sequence decoded in a batch
    /// gets the logits it gets alone. They read `decodeCopy`, a compressed copy of `weight`
    /// (bfloat16 or 8-bit) its layer keeps for generating, when there is one.
    public func linear(weight: Tensor, bias: Tensor?, decodeCopy: (any DecodeWeights)? = nil) -> Tensor {
        let c = shape.last ?? 1
        precondition(weight.rank == 2 && weight.shape[1] == c, "linear: weight \(weight.shape) does not take \(c) features")
        let oc = weight.shape[0]
        precondition(bias == nil || bias!.count == oc, "linear: bias has \(bias!.count) entries, expected \(oc)")
        let n = count / Swift.max(c, 1)
        let backend = self.backend
        let out = Tensor(uninitialized: Array(shape.dropLast()) + [oc], on: backend)
        if n <= Tensor.rowInvariantRows,
           !(Autograd.isEnabled && (requiresGrad || weight.requiresGrad || bias?.requiresGrad == true)) {
            if let copy = decodeCopy {
                precondition(copy.rows == oc && copy.cols == c, "linear: decode copy \(copy.rows)×\(copy.cols) of a \(weight.shape) weight")
                copy.linear(data, rows: n, bias: bias.map { UnsafePointer($0.data) }, into: out.data)
            } else {
                backend.sgemm(transA: false, transB: true, m: n, n: oc, k: c, a: data, lda: c, b: weight.data, ldb: c,
                              c: out.data, ldc: oc, bias: bias.map { UnsafePointer($0.data) }, rowInvariant: true)
            }
            return out
        }
        backend.sgemm(transA: false, transB: true, m: n, n: oc, k: c, a: data, lda: c,
                   b: weight.data, ldb: c, c: out.data, ldc: oc, bias: bias.map { UnsafePointer($0.data) })
        var inputs = [self, weight]
        if let bias { inputs.append(bias) }
        return out.record(inputs) { g in
            // dinp (N, C) += g (N, OC) · W (OC, C)
            self.withGrad { dx, beta in
                backend.sgemm(transA: false, transB: false, m: n, n: c, k: oc, a: g.data, lda: oc,
                           b: weight.data, ldb: c, beta: beta, c: dx, ldc: c)
            }
            // dW (OC, C) += gᵀ (OC, N) · inp (N, C)
            weight.withGrad { dw, beta in
                backend.sgemm(transA: true, transB: false, m: oc, n: c, k: n, a: g.data, lda: oc,
                           b: self.data, ldb: c, beta: beta, c: dw, ldc: c)
            }
            // db (OC) += Σ_rows g
            bias?.withGrad { db, beta in backend.sumRows(g.data, rows: n, cols: oc, into: db, beta: beta) }
        }
    }
}
