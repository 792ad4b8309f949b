/// Vectorized transcendental functions on 16 lanes (one AVX-512 register).
///
/// Scalar `expf` loops run 7–15× slower than these on Zen 5 (MEASUREMENTS.md);
/// softmax, GELU and cross-entropy all sit on them.
public typealias F16 = SIMD16<Float>

@inline(__always) func load16(_ p: UnsafePointer<Float>) -> F16 {
    UnsafeRawPointer(p).loadUnaligned(as: F16.self)
}

@inline(__always) func store16(_ v: F16, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: F16.self)
}

/// e^x, max relative error ≈ 2 ulp on [-87, 88]; 0 below -88 (masked logits).
@inline(__always) public func exp16(_ x: F16) -> F16 {
    let magic: Float = 12_582_912  // 1.5·2^23: adding it leaves round(v) in the low mantissa bits
    let x = x.clamped(lowerBound: F16(repeating: -88), upperBound: F16(repeating: 88))
    let t = x * 1.442_695_04 + magic
    let n = t - magic
    var r = x - n * 0.693_359_375
    r = r - n * -2.121_944_4e-4
    var p = F16(repeating: 1.987_569_15e-4)
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_6e-2
    p = p * r + 1.666_666_55e-1
    p = p * r + 5.000_000_1e-1
    p = p * (r * r) + r + 1
    let bits = unsafeBitCast(t, to: SIMD16<UInt32>.self)
    let scale = unsafeBitCast((bits &- 0x4B3F_FF81) &<< 23, to: F16.self)
    return p * scale
}

/// tanh(x) = sign(x)·(1 − 2/(e^{2|x|}+1)); absolute error ≈ 1e-7.
@inline(__always) public func tanh16(_ x: F16) -> F16 {
    let a = x.replacing(with: -x, where: x .< 0)
    let e = exp16(2 * a)
    let t = 1 - 2 / (e + 1)
    return t.replacing(with: -t, where: x .< 0)
}

/// Logistic sigmoid 1/(1+e^{-x}).
@inline(__always) public func sigmoid16(_ x: F16) -> F16 { 1 / (1 + exp16(-x)) }

/// √(2/π), the GELU tanh-approximation constant.
public let geluC: Float = 0.797_884_560_8

/// GELU, tanh approximation (GPT-2's `gelu_new`).
@inline(__always) public func gelu16(_ x: F16) -> F16 {
    let u = geluC * (x + 0.044715 * x * x * x)
    return 0.5 * x * (1 + tanh16(u))
}

/// d gelu(x) / dx for the tanh approximation.
@inline(__always) public func geluGrad16(_ x: F16) -> F16 {
    let x2 = x * x
    let u = geluC * (x + 0.044715 * x2 * x)
    let t = tanh16(u)
    let du = geluC * (1 + 3 * 0.044715 * x2)
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du
}

/// Scalar versions through the same vector code (tails, single values).
@inline(__always) public func scalar(_ f: (F16) -> F16, _ x: Float) -> Float { f(F16(repeating: x))[0] }
