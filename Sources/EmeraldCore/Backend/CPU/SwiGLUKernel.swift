// SwiGLU (the gated MLP of Llama-family models): y = silu(gate)·up, forward and backward side
// by side. silu(a) = a·σ(a), silu′(a) = σ(a)·(1 + a·(1 − σ(a))).

extension CPUBackend {
    public func swigluForward(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>,
                              count n: Int) {
        Kernels.zip(gate, up, y, n) { a, b in a * sigmoid16(a) * b }
    }

    public func swigluBackward(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, g: UnsafePointer<Float>,
                               dGate: UnsafeMutablePointer<Float>?, dUp: UnsafeMutablePointer<Float>?, count n: Int) {
        if let dGate {
            Kernels.zip3(gate, up, g, dGate, n) { a, b, g in
                let s = sigmoid16(a)
                return g * b * s * (1 + a * (1 - s))
            }
        }
        if let dUp { Kernels.zip3(gate, up, g, dUp, n) { a, _, g in g * a * sigmoid16(a) } }
    }
}
