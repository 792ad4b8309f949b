extension Tensor {
    /// Softmax along the last axis (numerically stable).
    public func softmax() -> Tensor {
        let n = shape.last ?? 1
        let y = Tensor(uninitialized: shape)
        let rows = count / Swift.max(n, 1)
        let x = data, yd = y.data
        parallelFor(rows, grain: Swift.max(1, 8192 / Swift.max(n, 1))) { r in
            for row in r { SoftmaxKernel.forward(x + row * n, yd + row * n, n) }
        }
        return y.record([self]) { [unowned y] g in
            // dx = y ⊙ (g − Σ g⊙y)
            let dx = Tensor(uninitialized: self.shape)
            for row in 0..<rows {
                let yr = y.data + row * n, gr = g.data + row * n, d = dx.data + row * n
                let s = Kernels.dot(yr, gr, n)
                for i in 0..<n { d[i] = yr[i] * (gr[i] - s) }
            }
            self.adoptGrad(dx)
        }
    }

    /// log(softmax(x)) along the last axis.
    public func logSoftmax() -> Tensor {
        let n = shape.last ?? 1
        let y = Tensor(uninitialized: shape)
        let rows = count / Swift.max(n, 1)
        for row in 0..<rows {
            let xr = data + row * n, yr = y.data + row * n
            let lse = SoftmaxKernel.logSumExp(xr, n)
            for i in 0..<n { yr[i] = xr[i] - lse }
        }
        return y.record([self]) { [unowned y] g in
            // dx = g − softmax · Σ g
            let dx = Tensor(uninitialized: self.shape)
            for row in 0..<rows {
                let yr = y.data + row * n, gr = g.data + row * n, d = dx.data + row * n
                let s = Kernels.sum(gr, n)
                for i in 0..<n { d[i] = gr[i] - _expf(yr[i]) * s }
            }
            self.adoptGrad(dx)
        }
    }

    /// Mean cross-entropy of `[N, V]` logits against `N` integer targets,
    /// fused: log-softmax and the loss in one pass, gradient (softmax − onehot)/N.
    public func crossEntropy(targets: [Int32]) -> Tensor {
        let v = shape.last ?? 1
        let rows = count / Swift.max(v, 1)
        precondition(targets.count == rows, "cross-entropy needs \(rows) targets, got \(targets.count)")
        let probs = Tensor(uninitialized: shape, on: backend)
        let p = probs.data
        let losses = backend.softmaxCrossEntropy(logits: data, probabilities: p, rows: rows, columns: v, targets: targets)
        let loss = Tensor([Float(losses.reduce(0.0) { $0 + Double($1) } / Double(rows))], shape: [])
        return loss.record([self]) { g in
            let scale = g.data[0] / Float(rows)
            for (row, t) in targets.enumerated() { p[row * v + Int(t)] -= 1 }
            Kernels.map(p, p, probs.count) { $0 * scale }
            self.adoptGrad(probs)
        }
    }
}

extension Tensor {
    /// Each row's cross-entropy against its target, logsumexp(row) − row[target], for rows
    /// (…, V) and one target per row (nil: that row is skipped and gets NaN). No gradient.
    public func rowLosses(targets: [Int32?]) -> [Float] {
        let v = shape.last ?? 1, rows = count / Swift.max(v, 1)
        precondition(targets.count == rows, "rowLosses needs \(rows) targets, got \(targets.count)")
        return withHostBuffer { x in
            (0..<rows).map { r in
                guard let t = targets[r] else { return .nan }
                precondition(t >= 0 && Int(t) < v, "target \(t) out of range 0..<\(v)")
                let row = x.baseAddress! + r * v
                return SoftmaxKernel.logSumExp(row, v) - row[Int(t)]
            }
        }
    }
}

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
