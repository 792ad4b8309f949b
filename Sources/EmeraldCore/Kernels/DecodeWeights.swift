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
    /// out[i, j] = Σ_p x[i, p]·W[j, p] (+ bias[j]) for i < m (m ≤ 4): x·Wᵀ, as `Tensor.linear`.
    func linear(_ x: UnsafePointer<Float>, rows m: Int, bias: UnsafePointer<Float>?, into out: UnsafeMutablePointer<Float>)
}

/// The threading and row order shared by the copies' `linear`: W's rows go in 128-row chunks
/// taken from a counter by every thread (one thread below 64k weights, where the hand-off
/// costs more than a second core's bandwidth gives), four rows 32 apart at a time, so each
/// of the four memory streams runs through 32 consecutive rows (as the fp32 path).
/// `dot4(xi, row, ldRows)` returns x·W[row + q·ldRows] for q < 4, `dot(xi, row)` one of them.
@inline(__always)
func decodeLinear(n: Int, k: Int, x: UnsafePointer<Float>, rows m: Int, bias: UnsafePointer<Float>?,
                  into out: UnsafeMutablePointer<Float>,
                  dot4: (UnsafePointer<Float>, Int, Int) -> SIMD4<Float>, dot: (UnsafePointer<Float>, Int) -> Float) {
    let chunk = 128, tasks = (n + chunk - 1) / chunk
    let threads = n * k < 1 << 16 ? 1 : Swift.min(ThreadPool.shared.availableThreads, tasks)
    let counter = GEMMScratch.current
    counter.nextTask.store(0, ordering: .relaxed)
    parallelFor(threads) { range in
        for _ in range {
            while true {
                let t = counter.nextTask.wrappingAdd(1, ordering: .relaxed).oldValue
                if t >= tasks { break }
                let j0 = t * chunk, j1 = Swift.min(n, j0 + chunk)
                for i in 0..<m {
                    let xi = x + i * k, oi = out + i * n
                    var j = j0
                    if j1 - j0 == chunk {
                        for row in j0..<(j0 + 32) {
                            let s = dot4(xi, row, 32)
                            for q in 0..<4 { oi[row + 32 * q] = s[q] + (bias?[row + 32 * q] ?? 0) }
                        }
                        j = j1
                    }
                    while j + 4 <= j1 {
                        let s = dot4(xi, j, 1)
                        for q in 0..<4 { oi[j + q] = s[q] + (bias?[j + q] ?? 0) }
                        j += 4
                    }
                    while j < j1 {
                        oi[j] = dot(xi, j) + (bias?[j] ?? 0)
                        j += 1
                    }
                }
            }
        }
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
