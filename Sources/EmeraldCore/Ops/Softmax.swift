extension Tensor {
    /// Softmax along the last axis (numerically stable).
    public func softmax() -> Tensor {
        let n = shape.last ?? 1
        let backend = self.backend
        let y = Tensor(uninitialized: shape, on: backend)
        let rows = count / Swift.max(n, 1)
        backend.softmax(data, into: y.data, rows: rows, n: n)
        return y.record([self]) { [unowned y] g in
            let dx = Tensor(uninitialized: self.shape, on: backend)
            backend.softmaxBackward(y: y.data, g: g.data, into: dx.data, rows: rows, n: n)
            self.adoptGrad(dx)
        }
    }

    /// log(softmax(x)) along the last axis.
    public func logSoftmax() -> Tensor {
        let n = shape.last ?? 1
        let backend = self.backend
        let y = Tensor(uninitialized: shape, on: backend)
        let rows = count / Swift.max(n, 1)
        backend.logSoftmax(data, into: y.data, rows: rows, n: n)
        return y.record([self]) { [unowned y] g in
            let dx = Tensor(uninitialized: self.shape, on: backend)
            backend.logSoftmaxBackward(y: y.data, g: g.data, into: dx.data, rows: rows, n: n)
            self.adoptGrad(dx)
        }
    }

    /// Mean cross-entropy of `[N, V]` logits against `N` integer targets,
    /// fused: log-softmax and the loss in one pass, gradient (softmax − onehot)/N.
    public func crossEntropy(targets: [Int32]) -> Tensor {
        let v = shape.last ?? 1
        let rows = count / Swift.max(v, 1)
        precondition(targets.count == rows, "cross-entropy needs \(rows) targets, got \(targets.count)")
        let backend = self.backend
        let probs = Tensor(uninitialized: shape, on: backend)
        let p = probs.data
        let losses = backend.softmaxCrossEntropy(logits: data, probabilities: p, rows: rows, columns: v, targets: targets)
        let loss = Tensor([Float(losses.reduce(0.0) { $0 + Double($1) } / Double(rows))], shape: []).to(device)
        return loss.record([self]) { g in
            backend.crossEntropyBackward(p, rows: rows, columns: v, targets: targets, scale: g.item / Float(rows))
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
        for t in targets { if let t { precondition(t >= 0 && Int(t) < v, "target \(t) out of range 0..<\(v)") } }
        return backend.rowLosses(data, rows: rows, columns: v, targets: targets)
    }
}
