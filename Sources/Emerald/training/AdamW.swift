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
        // On the parameters' device.
        m = parameters.map { .full($0.shape, 0, on: $0.backend) }
        v = parameters.map { .full($0.shape, 0, on: $0.backend) }
    }

    /// Clears the gradients of the parameters this optimizer updates (`Module.zeroGrad()`
    /// finds them by reflection each call: 3% of a small model's step).
    public func zeroGrad() { for p in parameters { p.grad = nil } }

    /// One update with learning rate `lr`; parameters without a gradient are skipped.
    /// Gradients are read multiplied by `gradScale` (a global-norm clip folded into the
    /// update, so clipping costs no pass of its own over the gradients).
    public func step(lr: Float, gradScale: Float = 1) {
        stepCount += 1
        let (b1, b2) = betas
        let c1 = 1 - Float(Double(b1).power(stepCount)), c2 = 1 - Float(Double(b2).power(stepCount))
        let eps = self.eps
        // PyTorch's form: p ← p·(1 − lr·wd) − (lr/c1)·m / (√v/√c2 + ε); one division and one
        // square root per element (the bias corrections are per-step scalars).
        let stepSize = lr / c1, invSqrtC2 = 1 / c2.squareRoot()
        Optimizer.adamW(parameters: parameters, m: m, v: v, decays: decays.map { $0 ? 1 - lr * weightDecay : 1 },
                        step: AdamWStep(beta1: b1, beta2: b2, eps: eps, stepSize: stepSize, invSqrtC2: invSqrtC2, gradScale: gradScale))
    }

    /// Clips the gradients' global L2 norm to `maxNorm` (PyTorch's `clip_grad_norm_` factor
    /// maxNorm / (norm + 1e-6), applied only above maxNorm; 0 disables) inside the update;
    /// returns the norm before clipping. The stored gradients are left unscaled.
    @discardableResult
    public func step(lr: Float, clippingGradientNormTo maxNorm: Float) -> Float {
        let norm = gradientNorm()
        step(lr: lr, gradScale: maxNorm > 0 && norm > maxNorm ? maxNorm / (norm + 1e-6) : 1)
        return norm
    }

    /// Global L2 norm of all gradients (summed in Double, in an order fixed by the sizes).
    public func gradientNorm() -> Float { Optimizer.globalNorm(parameters.compactMap(\.grad)) }

    /// Restores moments and step count (from a checkpoint).
    public func restore(m: [Tensor], v: [Tensor], stepCount: Int) throws {
        try require(m.count == parameters.count && v.count == parameters.count, "optimizer state does not match the model")
        for i in parameters.indices {
            try require(m[i].shape == parameters[i].shape && v[i].shape == parameters[i].shape,
                        "optimizer state for \(names[i]) has the wrong shape")
            self.m[i].assign(from: m[i])
            self.v[i].assign(from: v[i])
        }
        self.stepCount = stepCount
    }
}

/// Scales all gradients so their global L2 norm is at most `maxNorm`;
/// returns the norm before clipping.
@discardableResult
public func clipGradNorm(_ parameters: [Tensor], maxNorm: Float) -> Float {
    let grads = parameters.compactMap(\.grad)
    let norm = Optimizer.globalNorm(grads)
    if maxNorm > 0 && norm > maxNorm { Optimizer.scale(grads, by: maxNorm / (norm + 1e-6)) }
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
