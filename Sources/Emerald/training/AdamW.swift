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
        let grads = parameters.map { $0.grad?.data }
        let pds = parameters.map(\.data), mds = m.map(\.data), vds = v.map(\.data)
        let decayFactors = decays.map { $0 ? 1 - lr * weightDecay : 1 }
        forEachPiece { i, range in
            guard let gd = grads[i] else { return }
            let decay = decayFactors[i], pd = pds[i], md = mds[i], vd = vds[i]
            var j = range.lowerBound
            while j + 8 <= range.upperBound {
                let gj = load8(gd + j) * gradScale
                let mj = b1 * load8(md + j) + (1 - b1) * gj
                let vj = b2 * load8(vd + j) + (1 - b2) * gj * gj
                store8(mj, md + j); store8(vj, vd + j)
                let denom = sqrt8(vj) * invSqrtC2 + eps
                store8(load8(pd + j) * decay - stepSize * mj / denom, pd + j)
                j += 8
            }
            while j < range.upperBound {
                let gj = gd[j] * gradScale
                md[j] = b1 * md[j] + (1 - b1) * gj
                vd[j] = b2 * vd[j] + (1 - b2) * gj * gj
                pd[j] = pd[j] * decay - stepSize * md[j] / (vd[j].squareRoot() * invSqrtC2 + eps)
                j += 1
            }
        }
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

    /// Global L2 norm of all gradients (summed in Double, per thread then in order).
    public func gradientNorm() -> Float {
        let grads = parameters.map { $0.grad?.data }
        let t = ThreadPool.shared.threadCount
        var partial = [Double](repeating: 0, count: t)
        partial.withUnsafeMutableBufferPointer { pp in
            let out = pp.baseAddress!
            forEachPiece(threadIndexed: out) { i, range in
                guard let g = grads[i] else { return 0 }
                return Double(Kernels.dot(g + range.lowerBound, g + range.lowerBound, range.count))
            }
        }
        return Float(partial.reduce(0, +).squareRoot())
    }

    /// Parameters cut into pieces of at most 16k floats (four 64 KiB streams fit L2): the
    /// units one `parallelFor` spreads over the threads, so a step is one hand-off rather
    /// than one per parameter, and small parameters no longer run alone on one core.
    private lazy var pieces: [(param: Int, range: Range<Int>)] = {
        var out: [(Int, Range<Int>)] = []
        for (i, p) in parameters.enumerated() {
            var lo = 0
            while lo < p.count { let hi = Swift.min(p.count, lo + 16384); out.append((i, lo..<hi)); lo = hi }
        }
        return out
    }()

    /// Floats before each piece (and the total at the end): threads split by floats, not by
    /// piece count (small parameters make many short pieces).
    private lazy var offsets: [Int] = pieces.reduce(into: [0]) { $0.append($0.last! + $1.range.count) }

    /// Pieces of thread w of t: those starting in its 1/t share of all floats.
    private func share(_ w: Int, of t: Int) -> Range<Int> {
        let total = offsets.last!
        func first(_ at: Int) -> Int {  // first piece starting at or after `at`
            var lo = 0, hi = pieces.count
            while lo < hi { let mid = (lo + hi) / 2; if offsets[mid] < at { lo = mid + 1 } else { hi = mid } }
            return lo
        }
        return first(total * w / t)..<(w + 1 == t ? pieces.count : first(total * (w + 1) / t))
    }

    private func threads() -> Int { offsets.last! < 32768 ? 1 : ThreadPool.shared.threadCount }

    /// Runs `body(thread, pieces)` on each thread with its share of the pieces.
    private func forEachShare(_ body: (Int, ArraySlice<(param: Int, range: Range<Int>)>) -> Void) {
        let pieces = self.pieces, t = threads()
        parallelFor(t) { r in for w in r { body(w, pieces[share(w, of: t)]) } }
    }

    private func forEachPiece(_ body: (Int, Range<Int>) -> Void) {
        forEachShare { _, share in for piece in share { body(piece.param, piece.range) } }
    }

    /// Sums `body` over the pieces, thread by thread into out[thread] (0 for idle threads).
    private func forEachPiece(threadIndexed out: UnsafeMutablePointer<Double>, _ body: (Int, Range<Int>) -> Double) {
        for w in 0..<ThreadPool.shared.threadCount { out[w] = 0 }
        forEachShare { w, share in out[w] = share.reduce(0.0) { $0 + body($1.param, $1.range) } }
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
