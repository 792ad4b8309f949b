/// AdamW (Loshchilov & Hutter) with PyTorch's update order: decoupled weight
/// decay `p ← p·(1 − lr·wd)`, then the bias-corrected Adam step.
public final class AdamW {
    /// Parameters in order.
    public let parameters: [Tensor]
    /// Names, for saving moments.
    public let names: [String]
    /// Whether weight decay applies (≥ 2-D weights only, as in nanoGPT).
    public let decays: [Bool]
    /// β₁, β₂.
    public var betas: (Float, Float)
    /// ε.
    public var eps: Float
    /// Decoupled weight decay factor.
    public var weightDecay: Float
    /// Steps taken (bias correction).
    public private(set) var stepCount = 0
    /// First moments.
    public private(set) var m: [Tensor]
    /// Second moments.
    public private(set) var v: [Tensor]

    /// An optimizer over `named` parameters.
    public init(_ named: [(name: String, tensor: Tensor)], betas: (Float, Float) = (0.9, 0.999),
                eps: Float = 1e-8, weightDecay: Float = 0.01) {
        parameters = named.map(\.tensor)
        names = named.map(\.name)
        decays = named.map { $0.tensor.rank >= 2 }
        self.betas = betas
        self.eps = eps
        self.weightDecay = weightDecay
        m = parameters.map { .zeros($0.shape) }
        v = parameters.map { .zeros($0.shape) }
    }

    /// One update with learning rate `lr`; parameters without a gradient are skipped.
    public func step(lr: Float) {
        stepCount += 1
        let (b1, b2) = betas
        let c1 = 1 - Float(Double(b1).power(stepCount)), c2 = 1 - Float(Double(b2).power(stepCount))
        let eps = self.eps
        // PyTorch's form: p ← p·(1 − lr·wd) − (lr/c1)·m / (√v/√c2 + ε); one division and one
        // square root per element (the bias corrections are per-step scalars).
        let stepSize = lr / c1, invSqrtC2 = 1 / c2.squareRoot()
        for (i, p) in parameters.enumerated() {
            guard let g = p.grad else { continue }
            let decay = decays[i] ? 1 - lr * weightDecay : 1
            let pd = p.data, gd = g.data, md = m[i].data, vd = v[i].data
            parallelFor(p.count, grain: 1 << 14) { r in
                var j = r.lowerBound
                while j + 16 <= r.upperBound {
                    let gj = load16(gd + j)
                    let mj = b1 * load16(md + j) + (1 - b1) * gj
                    let vj = b2 * load16(vd + j) + (1 - b2) * gj * gj
                    store16(mj, md + j); store16(vj, vd + j)
                    let denom = vj.squareRoot() * invSqrtC2 + eps
                    store16(load16(pd + j) * decay - stepSize * mj / denom, pd + j)
                    j += 16
                }
                while j < r.upperBound {
                    md[j] = b1 * md[j] + (1 - b1) * gd[j]
                    vd[j] = b2 * vd[j] + (1 - b2) * gd[j] * gd[j]
                    pd[j] = pd[j] * decay - stepSize * md[j] / (vd[j].squareRoot() * invSqrtC2 + eps)
                    j += 1
                }
            }
        }
    }

    /// Restores moments and step count (from a checkpoint).
    public func restore(m: [Tensor], v: [Tensor], stepCount: Int) throws {
        try require(m.count == parameters.count && v.count == parameters.count, "optimizer state does not match the model")
        for i in parameters.indices {
            try require(m[i].shape == parameters[i].shape && v[i].shape == parameters[i].shape,
                        "optimizer state for \(names[i]) has the wrong shape")
            self.m[i].data.update(from: m[i].data, count: m[i].count)
            self.v[i].data.update(from: v[i].data, count: v[i].count)
        }
        self.stepCount = stepCount
    }
}

/// Scales all gradients so their global L2 norm is at most `maxNorm`;
/// returns the norm before clipping.
@discardableResult
public func clipGradNorm(_ parameters: [Tensor], maxNorm: Float) -> Float {
    var total: Double = 0
    for p in parameters { if let g = p.grad { total += Double(Kernels.dot(g.data, g.data, g.count)) } }
    let norm = Float(total.squareRoot())
    if maxNorm > 0 && norm > maxNorm {
        let s = maxNorm / (norm + 1e-6)
        for p in parameters { if let g = p.grad { Kernels.map(g.data, g.data, g.count) { $0 * s } } }
    }
    return norm
}


extension Double {
    /// self^n for a non-negative integer n.
    func power(_ n: Int) -> Double {
        var r = 1.0, b = self, e = n
        while e > 0 { if e & 1 == 1 { r *= b }; b *= b; e >>= 1 }
        return r
    }
}
