import CEmeraldSIMD

/// 8-lane (one AVX2 register) versions of the hottest transcendental loops.
///
/// On AVX2-only machines swiftc lowers non-inlined `SIMD16` math through
/// 128-bit halves, and it never fuses `c + a*b`; these kernels use 8 lanes and
/// `addingProduct` (vfmadd) explicitly, as explicit loops (no function values).
public typealias F8 = SIMD8<Float>

/// Loads 8 floats from `p` (no alignment needed).
@inline(__always) public func load8(_ p: UnsafePointer<Float>) -> F8 { UnsafeRawPointer(p).loadUnaligned(as: F8.self) }
/// Stores 8 floats at `p` (no alignment needed).
@inline(__always) public func store8(_ v: F8, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: F8.self) }

/// Lane-wise square root (one vsqrtps; `F8.squareRoot()` is eight scalar ones).
@inlinable @inline(__always) public func sqrt8(_ x: F8) -> F8 { emerald_sqrt8(x) }

/// Horizontal sum of 8 lanes (the stdlib's generic `sum()` is not inlined).
@inline(__always) public func hsum8(_ v: F8) -> Float {
    let s = v.lowHalf + v.highHalf
    return (s[0] + s[2]) + (s[1] + s[3])
}

/// e^x with x clamped to [−87.3, 88.3] (so 2^n needs no special cases):
/// Cephes' polynomial, ≈ 2 ulp inside that range.
@inline(__always) public func exp8(_ x: F8) -> F8 {
    // Selects, not pointwiseMin/Max: on SIMD8 those stay out-of-line generic calls (3% of a step).
    var x = x.replacing(with: -87.3, where: x .< -87.3)
    x.replace(with: 88.3, where: x .> 88.3)
    let magic = F8(repeating: 12_582_912)  // 1.5·2^23: round(v) lands in the low mantissa bits
    let t = magic.addingProduct(x, F8(repeating: 1.442_695_04))
    let n = t - magic
    var r = x.addingProduct(n, F8(repeating: -0.693_359_375))
    r = r.addingProduct(n, F8(repeating: 2.121_944_4e-4))
    var p = F8(repeating: 1.398_199_95e-3).addingProduct(F8(repeating: 1.987_569_15e-4), r)
    p = F8(repeating: 8.333_451_9e-3).addingProduct(p, r)
    p = F8(repeating: 4.166_579_6e-2).addingProduct(p, r)
    p = F8(repeating: 1.666_666_55e-1).addingProduct(p, r)
    p = F8(repeating: 5.000_000_1e-1).addingProduct(p, r)
    p = (r + 1).addingProduct(p, r * r)
    let bits = unsafeBitCast(t, to: SIMD8<UInt32>.self)
    return p * unsafeBitCast((bits &- 0x4B3F_FF81) &<< 23, to: F8.self)
}

/// GELU (tanh approximation) as x·σ(2u), u = √(2/π)(x + 0.044715x³).
@inline(__always) func gelu8(_ x: F8) -> F8 {
    let u = geluC * x.addingProduct(x * x * x, F8(repeating: 0.044715))
    // Past u < −44, e^{−2u} would overflow: the true value is below float's range.
    return (x / (1 + exp8(-2 * u))).replacing(with: 0, where: u .< -44)
}

/// dGELU/dx = s + 2x·s(1−s)·u′, s = σ(2u).
@inline(__always) func geluGrad8(_ x: F8) -> F8 {
    let x2 = x * x
    let u = geluC * x.addingProduct(x2 * x, F8(repeating: 0.044715))
    let s = 1 / (1 + exp8(-2 * u))
    let du = geluC * F8(repeating: 1).addingProduct(x2, F8(repeating: 3 * 0.044715))
    return s.addingProduct(2 * x * s * (1 - s), du)
}

/// murmur3's 32-bit finalizer on 8 lanes: a cheap, well-mixed counter hash.
@inline(__always) func mix8(_ x: SIMD8<UInt32>) -> SIMD8<UInt32> {
    var h = x ^ (x &>> 16)
    h = h &* 0x85EB_CA6B
    h ^= h &>> 13
    h = h &* 0xC2B2_AE35
    return h ^ (h &>> 16)
}

extension Kernels {
    /// y[i] = x[i]·keep(i) with keep(i) = 0 with probability p, else 1/(1−p);
    /// keep is a hash of (seed, offset + i), so the same call in backward gives the same mask
    /// (`offset`: position of element 0 in a larger tensor, see `ShardRows`).
    public static func dropout(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, p: Float, seed: UInt32,
                               offset: Int = 0) {
        let scaleBits = SIMD8<UInt32>(repeating: (1 / (1 - p)).bitPattern)
        let lanes = SIMD8<UInt32>(0, 1, 2, 3, 4, 5, 6, 7) &+ UInt32(truncatingIfNeeded: offset)
        let key = SIMD8<UInt32>(repeating: seed &* 0x9E37_79B9)
        let one = SIMD8<UInt32>(repeating: 0x3F80_0000), pv = F8(repeating: p)
        /// 0 or 1/(1−p) per lane, with bit operations only (no lane loops):
        /// u ∈ [0, 1) from 23 hash bits; the sign of u − p selects drop or keep.
        @inline(__always) func factor(_ index: SIMD8<UInt32>) -> F8 {
            let h = mix8(index ^ key)
            let u = unsafeBitCast(one | (h &>> 9), to: F8.self) - 1
            let negative = unsafeBitCast(u - pv, to: SIMD8<UInt32>.self) &>> 31
            return unsafeBitCast((negative &- 1) & scaleBits, to: F8.self)
        }
        parallelFor(n, grain: parallelGrain) { r in
            var i = r.lowerBound
            while i + 8 <= r.upperBound {
                store8(load8(x + i) * factor(SIMD8(repeating: UInt32(truncatingIfNeeded: i)) &+ lanes), y + i)
                i += 8
            }
            while i < r.upperBound {
                y[i] = x[i] * factor(SIMD8(repeating: UInt32(truncatingIfNeeded: i)) &+ lanes)[0]
                i += 1
            }
        }
    }

    /// y = gelu(x) over n floats, split across cores.
    public static func geluForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        parallelFor(n, grain: parallelGrain) { r in
            var i = r.lowerBound
            while i + 8 <= r.upperBound { store8(gelu8(load8(x + i)), y + i); i += 8 }
            while i < r.upperBound { y[i] = gelu8(F8(repeating: x[i]))[0]; i += 1 }
        }
    }

    /// dx = g · gelu′(x) over n floats.
    public static func geluBackward(_ x: UnsafePointer<Float>, _ g: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ n: Int) {
        parallelFor(n, grain: parallelGrain) { r in
            var i = r.lowerBound
            while i + 8 <= r.upperBound { store8(load8(g + i) * geluGrad8(load8(x + i)), dx + i); i += 8 }
            while i < r.upperBound { dx[i] = g[i] * geluGrad8(F8(repeating: x[i]))[0]; i += 1 }
        }
    }

    /// p[i] = e^{p[i] − m} over n values; returns their sum (softmax rows).
    @inline(__always)
    public static func expShiftSum8(_ p: UnsafeMutablePointer<Float>, _ n: Int, minus m: Float) -> Float {
        var acc = F8(repeating: 0)
        let mv = F8(repeating: m)
        var i = 0
        while i + 8 <= n { let e = exp8(load8(p + i) - mv); store8(e, p + i); acc += e; i += 8 }
        var total = hsum8(acc)
        while i < n { let e = exp8(F8(repeating: p[i] - m))[0]; p[i] = e; total += e; i += 1 }
        return total
    }
}
