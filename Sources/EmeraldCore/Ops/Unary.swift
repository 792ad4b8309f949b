// Elementwise ops. Each forward sits next to its backward rule.

extension Tensor {
    /// Applies an elementwise function by this tensor's backend and records its backward rule.
    public func apply(_ op: UnaryOp) -> Tensor {
        let backend = self.backend
        let y = Tensor(uninitialized: shape, on: backend)
        backend.unary(op, data, into: y.data, count: count)
        return y.record([self]) { [unowned y] g in
            let dx = Tensor(uninitialized: self.shape, on: backend)
            backend.unaryBackward(op, x: self.data, y: y.data, g: g.data, into: dx.data, count: self.count)
            self.adoptGrad(dx)
        }
    }

    /// e^x.
    public func exp() -> Tensor { apply(.exp) }
    /// Natural logarithm.
    public func log() -> Tensor { apply(.log) }
    /// Square root.
    public func sqrt() -> Tensor { apply(.sqrt) }
    /// x².
    public func square() -> Tensor { apply(.square) }
    /// Hyperbolic tangent.
    public func tanh() -> Tensor { apply(.tanh) }
    /// Logistic sigmoid.
    public func sigmoid() -> Tensor { apply(.sigmoid) }
    /// max(x, 0).
    public func relu() -> Tensor { apply(.relu) }
    /// x·sigmoid(x) (SiLU / swish).
    public func silu() -> Tensor { apply(.silu) }
    /// GELU (tanh approximation, GPT-2's `gelu_new`).
    public func gelu() -> Tensor { apply(.gelu) }

    /// −x.
    public static prefix func - (x: Tensor) -> Tensor { x * -1 }

    /// x · s.
    public static func * (x: Tensor, s: Float) -> Tensor {
        let backend = x.backend
        let y = Tensor(uninitialized: x.shape, on: backend)
        backend.scale(x.data, by: s, into: y.data, count: x.count)
        return y.record([x]) { g in
            let dx = Tensor(uninitialized: x.shape, on: backend)
            backend.scale(g.data, by: s, into: dx.data, count: x.count)
            x.adoptGrad(dx)
        }
    }

    /// x + s.
    public static func + (x: Tensor, s: Float) -> Tensor {
        let backend = x.backend
        let y = Tensor(uninitialized: x.shape, on: backend)
        backend.shift(x.data, by: s, into: y.data, count: x.count)
        return y.record([x]) { g in x.accumulateGrad(g) }
    }

    /// x − s.
    public static func - (x: Tensor, s: Float) -> Tensor { x + (-s) }

    /// x / s.
    public static func / (x: Tensor, s: Float) -> Tensor { x * (1 / s) }

    /// s · x.
    public static func * (s: Float, x: Tensor) -> Tensor { x * s }
}
