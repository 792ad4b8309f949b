// Elementwise kernels: each forward sits next to its backward rule.

/// An elementwise function with its derivative, as static members so that
/// generic specialisation inlines both into the loops (a function value would
/// be called indirectly per vector).
public protocol UnaryKernel {
    /// y = f(x).
    static func forward(_ x: F16) -> F16
    /// dx = g · f′(x), given x, y = f(x) and the output gradient g.
    static func backward(_ x: F16, _ y: F16, _ g: F16) -> F16
}

/// e^x.
public enum ExpKernel: UnaryKernel {
    @inline(__always) public static func forward(_ x: F16) -> F16 { exp16(x) }
    @inline(__always) public static func backward(_ x: F16, _ y: F16, _ g: F16) -> F16 { g * y }
}
/// ln x.
public enum LogKernel: UnaryKernel {
    @inline(__always) public static func forward(_ x: F16) -> F16 {
        var o = F16()
        for i in 0..<16 { o[i] = _logf(x[i]) }
        return o
    }
    @inline(__always) public static func backward(_ x: F16, _ y: F16, _ g: F16) -> F16 { g / x }
}
/// √x.
public enum SqrtKernel: UnaryKernel {
    @inline(__always) public static func forward(_ x: F16) -> F16 {
        F16(lowHalf: sqrt8(x.lowHalf), highHalf: sqrt8(x.highHalf))  // F16.squareRoot() is 16 scalar roots
    }
    @inline(__always) public static func backward(_ x: F16, _ y: F16, _ g: F16) -> F16 { g * 0.5 / y }
}
/// x².
public enum SquareKernel: UnaryKernel {
    @inline(__always) public static func forward(_ x: F16) -> F16 { x * x }
    @inline(__always) public static func backward(_ x: F16, _ y: F16, _ g: F16) -> F16 { 2 * x * g }
}
/// tanh x.
public enum TanhKernel: UnaryKernel {
    @inline(__always) public static func forward(_ x: F16) -> F16 { tanh16(x) }
    @inline(__always) public static func backward(_ x: F16, _ y: F16, _ g: F16) -> F16 { g * (1 - y * y) }
}
/// σ(x).
public enum SigmoidKernel: UnaryKernel {
    @inline(__always) public static func forward(_ x: F16) -> F16 { sigmoid16(x) }
    @inline(__always) public static func backward(_ x: F16, _ y: F16, _ g: F16) -> F16 { g * y * (1 - y) }
}
/// max(x, 0).
public enum ReLUKernel: UnaryKernel {
    @inline(__always) public static func forward(_ x: F16) -> F16 { x.replacing(with: 0, where: x .< 0) }
    @inline(__always) public static func backward(_ x: F16, _ y: F16, _ g: F16) -> F16 { g.replacing(with: 0, where: x .<= 0) }
}
/// x·σ(x).
public enum SiLUKernel: UnaryKernel {
    @inline(__always) public static func forward(_ x: F16) -> F16 { x * sigmoid16(x) }
    @inline(__always) public static func backward(_ x: F16, _ y: F16, _ g: F16) -> F16 {
        let s = sigmoid16(x)
        return g * (s + x * s * (1 - s))
    }
}

extension Kernels {
    /// y = K.forward(x), split across cores.
    static func unaryForward<K: UnaryKernel>(_: K.Type, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        parallelFor(n, grain: parallelGrain) { r in
            var i = r.lowerBound
            while i + 16 <= r.upperBound { store16(K.forward(load16(x + i)), y + i); i += 16 }
            if i < r.upperBound {
                var v = F16(repeating: 0)
                for j in 0..<(r.upperBound - i) { v[j] = x[i + j] }
                let o = K.forward(v)
                for j in 0..<(r.upperBound - i) { y[i + j] = o[j] }
            }
        }
    }

    /// dx = K.backward(x, y, g), split across cores.
    static func unaryBackward<K: UnaryKernel>(_: K.Type, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>,
                                              _ g: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ n: Int) {
        parallelFor(n, grain: parallelGrain) { r in
            var i = r.lowerBound
            while i + 16 <= r.upperBound { store16(K.backward(load16(x + i), load16(y + i), load16(g + i)), dx + i); i += 16 }
            if i < r.upperBound {
                var a = F16(repeating: 1), b = F16(repeating: 1), c = F16(repeating: 0)
                for j in 0..<(r.upperBound - i) { a[j] = x[i + j]; b[j] = y[i + j]; c[j] = g[i + j] }
                let o = K.backward(a, b, c)
                for j in 0..<(r.upperBound - i) { dx[i + j] = o[j] }
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
@inline(__always) func _logf(_ x: Float) -> Float { Glibc.logf(x) }
#else
import Darwin
@inline(__always) func _logf(_ x: Float) -> Float { Darwin.logf(x) }
#endif
