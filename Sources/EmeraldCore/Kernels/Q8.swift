import CEmeraldSIMD

/// An 8-bit copy of a weight for generating (see `DecodeWeights`), llama.cpp's q8_0 layout:
/// each run of 32 weights along a row is stored as 32 signed bytes q and one fp32 scale
/// d = max|w| / 127, with w ≈ d·q (round to nearest). 1.125 bytes per weight.
public final class Q8Matrix: DecodeWeights {
    /// Weights per scale.
    public static let block = 32
    /// Rows (output features) and columns (input features) of the (rows, cols) weight.
    public let rows: Int, cols: Int
    /// Row-major quantized weights (cols padded to a whole block, padding 0).
    public let quants: UnsafeMutablePointer<Int8>
    /// One scale per block, row-major.
    public let scales: UnsafeMutablePointer<Float>
    /// Blocks per row.
    public let blocksPerRow: Int

    /// A quantized copy of a 2-D fp32 tensor.
    public init(_ weight: Tensor) {
        precondition(weight.rank == 2, "Q8Matrix takes a 2-D weight, got \(weight.shape)")
        rows = weight.shape[0]; cols = weight.shape[1]
        let bpr = (cols + Q8Matrix.block - 1) / Q8Matrix.block
        blocksPerRow = bpr
        quants = .allocate(capacity: Swift.max(rows * bpr * Q8Matrix.block, 1))
        scales = .allocate(capacity: Swift.max(rows * bpr, 1))
        let src = weight.data, q = quants, d = scales, c = cols
        parallelFor(rows, grain: 64) { r in
            for row in r {
                for b in 0..<bpr {
                    let lo = b * Q8Matrix.block, hi = Swift.min(c, lo + Q8Matrix.block)
                    var amax: Float = 0
                    for p in lo..<hi { amax = Swift.max(amax, abs(src[row * c + p])) }
                    let scale = amax / 127, inv: Float = amax > 0 ? 127 / amax : 0
                    d[row * bpr + b] = scale
                    let dst = q + (row * bpr + b) * Q8Matrix.block
                    for p in 0..<Q8Matrix.block {
                        dst[p] = lo + p < hi ? Int8((src[row * c + lo + p] * inv).rounded()) : 0
                    }
                }
            }
        }
    }

    deinit { quants.deallocate(); scales.deallocate() }

    /// The weight a product reads in place of W[row, col].
    public func value(row: Int, col: Int) -> Float {
        let b = col / Q8Matrix.block
        return scales[row * blocksPerRow + b] * Float(quants[(row * blocksPerRow + b) * Q8Matrix.block + col % Q8Matrix.block])
    }

    /// 1 byte per weight and 4 per 32.
    public var byteCount: Int { rows * blocksPerRow * (Q8Matrix.block + 4) }

    /// See `DecodeWeights.linear`.
    public func linear(_ x: UnsafePointer<Float>, rows m: Int, bias: UnsafePointer<Float>?, into out: UnsafeMutablePointer<Float>) {
        let k = cols, bpr = blocksPerRow, q = UnsafePointer(quants), d = UnsafePointer(scales)
        let rowBytes = bpr * Q8Matrix.block
        decodeLinear(n: rows, k: k, x: x, rows: m, bias: bias, into: out,
                     dot4: { xi, row, ld in Q8Matrix.dot4(xi, q + row * rowBytes, d + row * bpr, ld, k, bpr) },
                     dot: { xi, row in
                         var s: Float = 0
                         for p in 0..<k { s += xi[p] * d[row * bpr + p / Q8Matrix.block] * Float(q[row * rowBytes + p]) }
                         return s
                     })
    }

    /// x·W[q·ld] for four rows q < 4 starting at quants `q` and scales `d`.
    @inline(__always)
    static func dot4(_ x: UnsafePointer<Float>, _ q: UnsafePointer<Int8>, _ d: UnsafePointer<Float>, _ ld: Int,
                     _ k: Int, _ bpr: Int) -> SIMD4<Float> {
        @inline(__always) func wide(_ p: UnsafePointer<Int8>, _ o: Int) -> V8 { emerald_widen_i8x8(p + o) }
        let rx = UnsafeRawPointer(x), qs = ld * bpr * block, ds = ld * bpr
        var a0 = V8(), a1 = V8(), a2 = V8(), a3 = V8()
        var b = 0
        // Whole blocks inside k: four 8-wide products per row, then one scale.
        while (b + 1) * block <= k {
            let o = b * block
            let x0 = rx.loadUnaligned(fromByteOffset: 4 * o, as: V8.self), x1 = rx.loadUnaligned(fromByteOffset: 4 * o + 32, as: V8.self)
            let x2 = rx.loadUnaligned(fromByteOffset: 4 * o + 64, as: V8.self), x3 = rx.loadUnaligned(fromByteOffset: 4 * o + 96, as: V8.self)
            @inline(__always) func accumulate(_ r: Int, _ acc: V8) -> V8 {
                let p = q + r * qs + o
                let s = (x0 * wide(p, 0)).addingProduct(x1, wide(p, 8)).addingProduct(x2, wide(p, 16)).addingProduct(x3, wide(p, 24))
                return acc.addingProduct(s, V8(repeating: d[r * ds + b]))
            }
            a0 = accumulate(0, a0); a1 = accumulate(1, a1); a2 = accumulate(2, a2); a3 = accumulate(3, a3)
            b += 1
        }
        var s = horizontalSums(a0, a1, a2, a3)
        // A last partial block (k not a multiple of 32).
        for p in (b * block)..<k {
            let xp = x[p]
            for r in 0..<4 { s[r] += xp * d[r * ds + b] * Float(q[r * qs + p]) }
        }
        return s
    }
}
