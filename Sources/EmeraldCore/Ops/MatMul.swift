extension Tensor {
    /// Batched matrix product: `[..., m, k] @ [..., k, n] -> [..., m, n]`.
    /// `other` may also be a plain `[k, n]` matrix shared by every batch.
    public func matmul(_ other: Tensor, transposeOther: Bool = false) -> Tensor {
        precondition(rank >= 2 && other.rank >= 2, "matmul needs matrices, got \(shape) and \(other.shape)")
        let m = shape[rank - 2], k = shape[rank - 1]
        let (ok, n) = transposeOther ? (other.shape[other.rank - 1], other.shape[other.rank - 2])
                                     : (other.shape[other.rank - 2], other.shape[other.rank - 1])
        precondition(k == ok, "matmul inner dimensions differ: \(shape) @ \(other.shape)\(transposeOther ? "ᵀ" : "")")
        let batch = count / Swift.max(m * k, 1)
        let shared = other.rank == 2
        precondition(shared || Array(other.shape.dropLast(2)) == Array(shape.dropLast(2)),
                     "matmul batch dimensions differ: \(shape) @ \(other.shape)")
        let backend = self.backend
        let out = Tensor(uninitialized: Array(shape.dropLast(2)) + [m, n], on: backend)
        let bStride = shared ? 0 : k * n, ldb = transposeOther ? k : n
        if shared {
            // One GEMM over all rows: [batch·m, k] @ [k, n].
            backend.sgemm(transA: false, transB: transposeOther, m: batch * m, n: n, k: k,
                       a: data, lda: k, b: other.data, ldb: ldb, c: out.data, ldc: n)
        } else {
            for i in 0..<batch {
                backend.sgemm(transA: false, transB: transposeOther, m: m, n: n, k: k,
                           a: data + i * m * k, lda: k, b: other.data + i * bStride, ldb: ldb,
                           c: out.data + i * m * n, ldc: n)
            }
        }
        return out.record([self, other]) { g in
            if self.requiresGrad {
                // dA = g · Bᵀ  (or g · B when B was used transposed)
                self.withGrad { da in
                    if shared {
                        backend.sgemm(transA: false, transB: !transposeOther, m: batch * m, n: k, k: n,
                                   a: g.data, lda: n, b: other.data, ldb: ldb, beta: 1, c: da, ldc: k)
                    } else {
                        for i in 0..<batch {
                            backend.sgemm(transA: false, transB: !transposeOther, m: m, n: k, k: n,
                                       a: g.data + i * m * n, lda: n, b: other.data + i * bStride, ldb: ldb,
                                       beta: 1, c: da + i * m * k, ldc: k)
                        }
                    }
                }
            }
            if other.requiresGrad {
                // dB = Aᵀ · g  (k×n), or gᵀ · A (n×k) when B was used transposed.
                other.withGrad { db in
                    let rows = shared ? 1 : batch
                    let mm = shared ? batch * m : m
                    for i in 0..<rows {
                        let a = self.data + i * m * k, gi = g.data + i * m * n, d = db + i * bStride
                        if transposeOther {
                            backend.sgemm(transA: true, transB: false, m: n, n: k, k: mm,
                                       a: gi, lda: n, b: a, ldb: k, beta: 1, c: d, ldc: k)
                        } else {
                            backend.sgemm(transA: true, transB: false, m: k, n: n, k: mm,
                                       a: a, lda: k, b: gi, ldb: n, beta: 1, c: d, ldc: n)
                        }
                    }
                }
            }
        }
    }
}
