extension Tensor {
    /// The gated activation of Llama-family MLPs: silu(gate) ⊙ up, elementwise, one pass
    /// (no silu(gate) tensor kept). `gate` and `up` have the same shape.
    public static func swiglu(gate: Tensor, up: Tensor) -> Tensor {
        precondition(gate.shape == up.shape, "swiglu: gate \(gate.shape) and up \(up.shape) differ")
        let backend = gate.backend
        precondition(up.device == gate.device, "swiglu: gate on \(gate.device), up on \(up.device)")
        let y = Tensor(uninitialized: gate.shape, on: backend)
        backend.swigluForward(gate: gate.data, up: up.data, into: y.data, count: gate.count)
        return y.record([gate, up]) { g in
            let dGate = gate.requiresGrad ? Tensor(uninitialized: gate.shape, on: backend) : nil
            let dUp = up.requiresGrad ? Tensor(uninitialized: up.shape, on: backend) : nil
            backend.swigluBackward(gate: gate.data, up: up.data, g: g.data, dGate: dGate?.data, dUp: dUp?.data, count: gate.count)
            if let dGate { gate.adoptGrad(dGate) }
            if let dUp { up.adoptGrad(dUp) }
        }
    }
}
