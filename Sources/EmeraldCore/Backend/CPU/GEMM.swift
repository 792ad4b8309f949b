import Foundation

/// Single-precision matrix multiply, row-major:
/// C[m×n] = alpha · op(A) · op(B) (+ bias on every row) + beta · C, with op(X) = X or Xᵀ.
///
/// `lda`, `ldb`, `ldc` are row strides of the matrices as stored.
public enum GEMM {
    /// The entry point every matmul in Emerald goes through.
    public static func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                             alpha: Float = 1,
                             a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0,
                             c: UnsafeMutablePointer<Float>, ldc: Int,
                             bias: UnsafePointer<Float>? = nil, rowInvariant: Bool = false, tuning: GEMMTuning = .current) {
        // Packed, register-blocked, threaded kernel: see GEMMKernel.swift. A bias (n floats)
        // is added in the micro-kernel's store, so a linear layer writes its output once.
        let args = GEMMArgs(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                            a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, bias: bias,
                            rowInvariant: rowInvariant, tuning: tuning)
        guard GEMMProfile.isEnabled else { GEMMDriver.sgemm(args); return }
        let start = DispatchTime.now().uptimeNanoseconds
        GEMMDriver.sgemm(args)
        GEMMProfile.record(m: m, n: n, k: k, transA: transA, transB: transB,
                           nanoseconds: DispatchTime.now().uptimeNanoseconds - start)
    }

    /// Straightforward row-times-panel GEMM: correct for every layout, used as
    /// the oracle in tests.
    public static func reference(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                                 alpha: Float = 1,
                                 a: UnsafePointer<Float>, lda: Int,
                                 b: UnsafePointer<Float>, ldb: Int,
                                 beta: Float = 0,
                                 c: UnsafeMutablePointer<Float>, ldc: Int) {
        // B as k×n rows (copy when transposed) so the inner loop is contiguous.
        var bRows = b, bStride = ldb
        var packed: UnsafeMutablePointer<Float>?
        if transB {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(k * n, 1))
            for j in 0..<n { for p_ in 0..<k { p[p_ * n + j] = b[j * ldb + p_] } }
            packed = p; bRows = UnsafePointer(p); bStride = n
        }
        defer { packed?.deallocate() }
        let bR = bRows, bS = bStride
        parallelFor(m, grain: max(1, 4096 / max(n * k / 1024, 1))) { rows in
            for i in rows {
                let ci = c + i * ldc
                if beta == 0 { ci.update(repeating: 0, count: n) }
                else if beta != 1 { for j in 0..<n { ci[j] *= beta } }
                for p in 0..<k {
                    let aip = alpha * (transA ? a[p * lda + i] : a[i * lda + p])
                    if aip != 0 { Kernels.axpy(aip, bR + p * bS, ci, n) }
                }
            }
        }
    }
}
