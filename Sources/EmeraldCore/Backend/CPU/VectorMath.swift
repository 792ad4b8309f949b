/// Vectorized transcendental functions on 16 lanes (one AVX-512 register).
///
/// Scalar `expf` loops run 7–15× slower than these on Zen 5 (MEASUREMENTS.md);
/// softmax, GELU and cross-entropy all sit on them.
public typealias F16 = SIMD16<Float>

/// Loads 16 floats from `p` (no alignment needed).
@inline(__always) public func load16(_ p: UnsafePointer<Float>) -> F16 {
    UnsafeRawPointer(p).loadUnaligned(as: F16.self)
}

/// Stores 16 floats at `p` (no alignment needed).
@inline(__always) public func store16(_ v: F16, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: F16.self)
}

/// e^x, max relative error ≈ 2 ulp over the finite range; +∞ above
/// ln(Float.greatestFiniteMagnitude) ≈ 88.72; 0 below -88 (masked logits;
/// results there would be subnormal, < 2^-126).
@inline(__always) public func exp16(_ x: F16) -> F16 {
    let magic: Float = 12_582_912  // 1.5·2^23: adding it leaves round(v) in the low mantissa bits
    // pointwiseMin/Max, never `clamped`: the generic `clamped` is not inlined
    // and once took 57% of a GPT training step.
    let xc = pointwiseMin(pointwiseMax(x, F16(repeating: -88)), F16(repeating: 88.8))
    let t = xc * 1.442_695_04 + magic
    let n = t - magic
    var r = xc - n * 0.693_359_375
    r = r - n * -2.121_944_4e-4
    var p = F16(repeating: 1.987_569_15e-4)
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_6e-2
    p = p * r + 1.666_666_55e-1
    p = p * r + 5.000_000_1e-1
    p = p * (r * r) + r + 1
    // Biased exponent n + 127 (0 at the bottom flushes to zero). n = 128 (x ≳ 88.38)
    // does not fit the exponent field: build 2^127 and double p instead.
    let bits = unsafeBitCast(t, to: SIMD16<UInt32>.self)
    var e = bits &- 0x4B3F_FF81
    let top = e .== 255
    e.replace(with: 254, where: top)
    p.replace(with: p * 2, where: top)
    let scale = unsafeBitCast(e &<< 23, to: F16.self)
    return (p * scale).replacing(with: .infinity, where: x .> 88.722_839)
}

/// tanh(x): an odd polynomial for |x| < 0.625 (Cephes `tanhf`), else
/// sign(x)·(1 − 2/(e^{2|x|}+1)); relative error a few ulp everywhere (the
/// second form alone loses all relative precision as x → 0).
@inline(__always) public func tanh16(_ x: F16) -> F16 {
    let a = x.replacing(with: -x, where: x .< 0)
    let e = exp16(2 * a)
    var t = 1 - 2 / (e + 1)
    let s = a * a
    var p = F16(repeating: -5.704_988_727_45e-3)
    p = p * s + 2.063_908_879_54e-2
    p = p * s - 5.373_971_555_31e-2
    p = p * s + 1.333_144_220_36e-1
    p = p * s - 3.333_328_194_22e-1
    t.replace(with: p * s * a + a, where: a .< 0.625)
    return t.replacing(with: -t, where: x .< 0)
}

/// Logistic sigmoid 1/(1+e^{-x}).
@inline(__always) public func sigmoid16(_ x: F16) -> F16 { 1 / (1 + exp16(-x)) }

/// √(2/π), the GELU tanh-approximation constant.
public let geluC: Float = 0.797_884_560_8

/// Horizontal sum (the stdlib's generic `sum()` is not inlined).
@inline(__always) public func hsum(_ v: F16) -> Float {
    let a = v.lowHalf + v.highHalf
    let b = a.lowHalf + a.highHalf
    let c = b.lowHalf + b.highHalf
    return c[0] + c[1]
}

/// Scalar versions through the same vector code (tails, single values).
@inline(__always) public func scalar(_ f: (F16) -> F16, _ x: Float) -> Float { f(F16(repeating: x))[0] }
