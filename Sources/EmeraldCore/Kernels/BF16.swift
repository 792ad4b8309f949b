/// bfloat16 weights for generating.
///
/// Decoding one token reads every weight once and does two flops per weight read: it is
/// bound by memory bandwidth, not arithmetic. A bfloat16 copy (fp32's sign, exponent and top
/// 7 mantissa bits) halves the bytes; each weight widens back to fp32 in a register (a shift),
/// and products and sums stay fp32.
public final class BF16Matrix {
    /// Rows (output features) and columns (input features) of the (rows, cols) weight.
    public let rows: Int, cols: Int
    /// Row-major bfloat16 bit patterns.
    public let data: UnsafeMutablePointer<UInt16>

    /// A rounded (to nearest, ties to even) copy of a 2-D fp32 tensor.
    public init(_ weight: Tensor) {
        precondition(weight.rank == 2, "BF16Matrix takes a 2-D weight, got \(weight.shape)")
        rows = weight.shape[0]; cols = weight.shape[1]
        data = .allocate(capacity: Swift.max(rows * cols, 1))
        let src = weight.data, dst = data, n = rows * cols
        parallelFor(n, grain: 1 << 16) { r in
            for i in r { dst[i] = BF16Matrix.round(src[i]) }
        }
    }

    deinit { data.deallocate() }

    /// fp32 → bfloat16 bits, rounding to nearest with ties to even (as PyTorch's `.bfloat16()`);
    /// a NaN stays a (quiet) NaN.
    @inline(__always) public static func round(_ x: Float) -> UInt16 {
        let b = x.bitPattern
        if x.isNaN { return UInt16(truncatingIfNeeded: b >> 16) | 0x40 }
        return UInt16(truncatingIfNeeded: (b &+ 0x7FFF &+ ((b >> 16) & 1)) >> 16)
    }

    /// bfloat16 bits → fp32 (exact).
    @inline(__always) public static func widen(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }

    /// out[i, j] = Σ_p x[i, p]·W[j, p] (+ bias[j]) for i < m: x·Wᵀ, as `Tensor.linear` computes
    /// it, for the few rows (m ≤ 4) of generation. W's rows go in 128-row chunks taken from a
    /// counter by every thread, four rows 32 apart at a time (four long memory streams, as in
    /// the fp32 path).
    public func linear(_ x: UnsafePointer<Float>, rows m: Int, bias: UnsafePointer<Float>?, into out: UnsafeMutablePointer<Float>) {
        let n = rows, k = cols, w = UnsafePointer(data)
        let chunk = 128, tasks = (n + chunk - 1) / chunk
        // Below 64k weights (128 KiB) the hand-off costs more than a second core's bandwidth gives.
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
                                let s = BF16Matrix.dot4(xi, w + row * k, 32 * k, k)
                                for q in 0..<4 { oi[row + 32 * q] = s[q] + (bias?[row + 32 * q] ?? 0) }
                            }
                            j = j1
                        }
                        while j + 4 <= j1 {
                            let s = BF16Matrix.dot4(xi, w + j * k, k, k)
                            for q in 0..<4 { oi[j + q] = s[q] + (bias?[j + q] ?? 0) }
                            j += 4
                        }
                        while j < j1 {
                            var s: Float = 0
                            for p in 0..<k { s += xi[p] * BF16Matrix.widen(w[j * k + p]) }
                            oi[j] = s + (bias?[j] ?? 0)
                            j += 1
                        }
                    }
                }
            }
        }
    }

    /// x·y₀ … x·y₃ for four bfloat16 rows y_q = y + q·ldy of n values.
    @inline(__always)
    static func dot4(_ x: UnsafePointer<Float>, _ y: UnsafePointer<UInt16>, _ ldy: Int, _ n: Int) -> SIMD4<Float> {
        @inline(__always) func wide(_ p: UnsafePointer<UInt16>, _ o: Int) -> V8 {
            let h = UnsafeRawPointer(p).loadUnaligned(fromByteOffset: 2 * o, as: SIMD8<UInt16>.self)
            return unsafeBitCast(SIMD8<UInt32>(truncatingIfNeeded: h) &<< 16, to: V8.self)
        }
        let rx = UnsafeRawPointer(x)
        let y0 = y, y1 = y + ldy, y2 = y + 2 * ldy, y3 = y + 3 * ldy
        var a0 = V8(), a1 = V8(), a2 = V8(), a3 = V8(), b0 = V8(), b1 = V8(), b2 = V8(), b3 = V8()
        var p = 0
        while p + 16 <= n {
            let x0 = rx.loadUnaligned(fromByteOffset: 4 * p, as: V8.self), x1 = rx.loadUnaligned(fromByteOffset: 4 * p + 32, as: V8.self)
            a0 = a0.addingProduct(x0, wide(y0, p)); b0 = b0.addingProduct(x1, wide(y0, p + 8))
            a1 = a1.addingProduct(x0, wide(y1, p)); b1 = b1.addingProduct(x1, wide(y1, p + 8))
            a2 = a2.addingProduct(x0, wide(y2, p)); b2 = b2.addingProduct(x1, wide(y2, p + 8))
            a3 = a3.addingProduct(x0, wide(y3, p)); b3 = b3.addingProduct(x1, wide(y3, p + 8))
            p += 16
        }
        a0 += b0; a1 += b1; a2 += b2; a3 += b3
        let h01 = V8(lowHalf: a0.lowHalf + a0.highHalf, highHalf: a1.lowHalf + a1.highHalf)
        let h23 = V8(lowHalf: a2.lowHalf + a2.highHalf, highHalf: a3.lowHalf + a3.highHalf)
        let e = h01.evenHalf + h01.oddHalf, f = h23.evenHalf + h23.oddHalf
        var s = SIMD4<Float>(e[0] + e[1], e[2] + e[3], f[0] + f[1], f[2] + f[3])
        while p < n {
            let xp = x[p]
            s += SIMD4(xp * widen(y0[p]), xp * widen(y1[p]), xp * widen(y2[p]), xp * widen(y3[p]))
            p += 1
        }
        return s
    }
}
