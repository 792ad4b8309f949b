import CEmeraldSIMD

/// A bfloat16 copy of a weight for generating (see `DecodeWeights`): fp32's sign, exponent
/// and top 7 mantissa bits, half the bytes; each weight widens back to fp32 with a shift.
public final class BF16Matrix: DecodeWeights {
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
            BF16Matrix.round(src + r.lowerBound, into: dst + r.lowerBound, count: r.count)
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

    /// `round` of `count` floats, 16 at a time: a KV cache's new rows (scalar 2-byte stores to
    /// cold cache lines kept few misses in flight: 3% of a batched int8 step).
    public static func round(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<UInt16>, count: Int) {
        var i = 0
        while i + 16 <= count {
            let b = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<UInt32>.self)
            let rounded = (b &+ 0x7FFF &+ ((b &>> 16) & 1)) &>> 16
            let nan = (b & 0x7FFF_FFFF) .> 0x7F80_0000
            let bits = rounded.replacing(with: (b &>> 16) | 0x40, where: nan)
            UnsafeMutableRawPointer(out + i).storeBytes(of: SIMD16<UInt16>(truncatingIfNeeded: bits), as: SIMD16<UInt16>.self)
            i += 16
        }
        while i < count { out[i] = round(x[i]); i += 1 }
    }

    /// bfloat16 bits → fp32 (exact).
    @inline(__always) public static func widen(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }

    /// 2 bytes per weight.
    public var byteCount: Int { 2 * rows * cols }

    /// See `DecodeWeights.linear`.
    public func linear(_ x: UnsafePointer<Float>, rows m: Int, bias: UnsafePointer<Float>?, into out: UnsafeMutablePointer<Float>) {
        let k = cols, w = UnsafePointer(data)
        decodeLinear(n: rows, k: k, rows: m, bias: bias, into: out,
                     dot4: { i, row, ld in BF16Matrix.dot4(x + i * k, w + row * k, ld * k, k) },
                     dot: { i, row in
                         var s: Float = 0
                         for p in 0..<k { s += x[i * k + p] * BF16Matrix.widen(w[row * k + p]) }
                         return s
                     })
    }

    /// x·y₀ … x·y₃ for four bfloat16 rows y_q = y + q·ldy of n values.
    @inline(__always)
    static func dot4(_ x: UnsafePointer<Float>, _ y: UnsafePointer<UInt16>, _ ldy: Int, _ n: Int) -> SIMD4<Float> {
        @inline(__always) func wide(_ p: UnsafePointer<UInt16>, _ o: Int) -> V8 { emerald_widen_bf16x8(p + o) }
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
        var s = horizontalSums(a0 + b0, a1 + b1, a2 + b2, a3 + b3)
        while p < n {
            let xp = x[p]
            s += SIMD4(xp * widen(y0[p]), xp * widen(y1[p]), xp * widen(y2[p]), xp * widen(y3[p]))
            p += 1
        }
        return s
    }
}
