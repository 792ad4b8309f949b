/// Row softmax shared by softmax, cross-entropy and attention, on 8 lanes (one AVX2
/// register: `SIMD16` math is lowered through stack spills there and took 6% of a small
/// model's step in cross-entropy alone).
public enum SoftmaxKernel {
    /// y = softmax(x) over n; returns log Σ exp(x) (for the loss).
    @discardableResult @inline(__always)
    public static func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) -> Float {
        let m = maxValue(x, n), mv = F8(repeating: m)
        var acc = F8(repeating: 0)
        var i = 0
        while i + 8 <= n { let e = expShifted(load8(x + i) - mv); store8(e, y + i); acc += e; i += 8 }
        var s = hsum8(acc)
        while i < n { let e = expShifted(F8(repeating: x[i] - m))[0]; y[i] = e; s += e; i += 1 }
        let inv = 1 / s, iv = F8(repeating: inv)
        i = 0
        while i + 8 <= n { store8(load8(y + i) * iv, y + i); i += 8 }
        while i < n { y[i] *= inv; i += 1 }
        return m + _logf(s)
    }

    /// log Σ exp(x) over n.
    @inline(__always)
    public static func logSumExp(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        let m = maxValue(x, n), mv = F8(repeating: m)
        var acc = F8(repeating: 0)
        var i = 0
        while i + 8 <= n { acc += expShifted(load8(x + i) - mv); i += 8 }
        var s = hsum8(acc)
        while i < n { s += expShifted(F8(repeating: x[i] - m))[0]; i += 1 }
        return m + _logf(s)
    }

    /// e^d for d = x − max ≤ 0, exactly 0 below −87.3 (masked logits), where `exp8` clamps.
    @inline(__always) static func expShifted(_ d: F8) -> F8 {
        exp8(d).replacing(with: 0, where: d .< -87.3)
    }

    @inline(__always) static func maxValue(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var mv = F8(repeating: -.infinity)
        var i = 0
        // Selects, not pointwiseMax (an out-of-line generic call on SIMD8).
        while i + 8 <= n { let v = load8(x + i); mv.replace(with: v, where: v .> mv); i += 8 }
        let h = mv.lowHalf.replacing(with: mv.highHalf, where: mv.highHalf .> mv.lowHalf)
        var m = Swift.max(Swift.max(h[0], h[1]), Swift.max(h[2], h[3]))
        while i < n { m = Swift.max(m, x[i]); i += 1 }
        return m
    }
}

#if canImport(Glibc)
import Glibc
@inline(__always) func _expf(_ x: Float) -> Float { Glibc.expf(x) }
#else
import Darwin
@inline(__always) func _expf(_ x: Float) -> Float { Darwin.expf(x) }
#endif
