// Elementwise ops. Each forward sits next to its backward rule.

extension Tensor {
    /// Applies a vector function, recording `grad(x, y, g) -> dx` for backward.
    @inline(__always)
    func unary(_ f: (F16) -> F16, grad: @escaping (F16, F16, F16) -> F16) -> Tensor {
        let y = Tensor(uninitialized: shape)
        Kernels.map(data, y.data, count, f)
        return y.record([self]) { [unowned y] g in
            let dx = Tensor(uninitialized: self.shape)
            Kernels.zip3(self.data, y.data, g.data, dx.data, self.count, grad)
            self.adoptGrad(dx)
        }
    }

    /// e^x.
    public func exp() -> Tensor { unary(exp16) { _, y, g in g * y } }

    /// Natural logarithm.
    public func log() -> Tensor {
        unary({ x in
            var o = F16()
            for i in 0..<16 { o[i] = _logf(x[i]) }
            return o
        }) { x, _, g in g / x }
    }

    /// Square root.
    public func sqrt() -> Tensor { unary({ $0.squareRoot() }) { _, y, g in g * 0.5 / y } }

    /// x².
    public func square() -> Tensor { unary({ $0 * $0 }) { x, _, g in 2 * x * g } }

    /// Hyperbolic tangent.
    public func tanh() -> Tensor { unary(tanh16) { _, y, g in g * (1 - y * y) } }

    /// Logistic sigmoid.
    public func sigmoid() -> Tensor { unary(sigmoid16) { _, y, g in g * y * (1 - y) } }

    /// max(x, 0).
    public func relu() -> Tensor {
        unary({ $0.replacing(with: 0, where: $0 .< 0) }) { x, _, g in g.replacing(with: 0, where: x .<= 0) }
    }

    /// GELU with the tanh approximation (GPT-2).
    public func gelu() -> Tensor { unary(gelu16) { x, _, g in g * geluGrad16(x) } }

    /// x·sigmoid(x) (SiLU / swish).
    public func silu() -> Tensor {
        unary({ $0 * sigmoid16($0) }) { x, _, g in
            let s = sigmoid16(x)
            return g * (s + x * s * (1 - s))
        }
    }

    /// −x.
    public static prefix func - (x: Tensor) -> Tensor { x * -1 }

    /// x · s.
    public static func * (x: Tensor, s: Float) -> Tensor { x.unary({ $0 * s }) { _, _, g in g * s } }

    /// x + s.
    public static func + (x: Tensor, s: Float) -> Tensor { x.unary({ $0 + s }) { _, _, g in g } }

    /// x − s.
    public static func - (x: Tensor, s: Float) -> Tensor { x + (-s) }

    /// x / s.
    public static func / (x: Tensor, s: Float) -> Tensor { x * (1 / s) }

    /// s · x.
    public static func * (s: Float, x: Tensor) -> Tensor { x * s }
}

#if canImport(Glibc)
import Glibc
@inline(__always) func _logf(_ x: Float) -> Float { Glibc.logf(x) }
#else
import Darwin
@inline(__always) func _logf(_ x: Float) -> Float { Darwin.logf(x) }
#endif
