/// A compressed copy of an (out, in) weight that one-token products read while generating.
///
/// Decoding one token reads every weight once and does two flops per weight read: it is bound
/// by memory bandwidth, not arithmetic, so fewer bytes per weight is a faster token. Copies
/// widen to fp32 in registers; products and sums stay fp32.
public protocol DecodeWeights: AnyObject {
    /// Rows (output features) and columns (input features).
    var rows: Int { get }
    var cols: Int { get }
    /// Bytes one product reads (the whole copy).
    var byteCount: Int { get }
    /// out[i, j] = Σ_p x[i, p]·W[j, p] (+ bias[j]) for i < m: x·Wᵀ, as `Tensor.linear`. Each
    /// row's result is the same whatever m is (batched decoding = one sequence alone).
    func linear(_ x: UnsafePointer<Float>, rows m: Int, bias: UnsafePointer<Float>?, into out: UnsafeMutablePointer<Float>)
}

/// The copies' `linear` for m rows of output into `out` (m × n), with the fp32 one-row
/// path's chunks and row order (`GEMMDriver.forEachColumnChunk`, `GEMMDriver.fourRowGroups`):
/// `dot4(i, row, ld)` returns x_i·W[row + q·ld] for q < 4, `dot(i, row)` one of them.
@inline(__always)
func decodeLinear(n: Int, k: Int, rows m: Int, bias: UnsafePointer<Float>?, into out: UnsafeMutablePointer<Float>,
                  dot4: (Int, Int, Int) -> SIMD4<Float>, dot: (Int, Int) -> Float) {
    // Each group of four weight rows (in L1) against every row of x before the next group.
    GEMMDriver.forEachColumnChunk(n: n, k: k, threads: ThreadPool.shared.availableThreads) { cols in
        GEMMDriver.fourRowGroups(cols, four: { j, ld in
            for i in 0..<m {
                let s = dot4(i, j, ld), oi = out + i * n
                for q in 0..<4 { oi[j + q * ld] = s[q] + (bias?[j + q * ld] ?? 0) }
            }
        }, one: { j in
            for i in 0..<m { out[i * n + j] = dot(i, j) + (bias?[j] ?? 0) }
        })
    }
}

/// Lane q of the result: the horizontal sum of a_q.
@inline(__always)
func horizontalSums(_ a0: V8, _ a1: V8, _ a2: V8, _ a3: V8) -> SIMD4<Float> {
    let h01 = V8(lowHalf: a0.lowHalf + a0.highHalf, highHalf: a1.lowHalf + a1.highHalf)
    let h23 = V8(lowHalf: a2.lowHalf + a2.highHalf, highHalf: a3.lowHalf + a3.highHalf)
    let e = h01.evenHalf + h01.oddHalf, f = h23.evenHalf + h23.oddHalf
    return SIMD4<Float>(e[0] + e[1], e[2] + e[3], f[0] + f[1], f[2] + f[3])
}
