extension Tensor {
    /// (outer, axis length, inner) sizes around `axis`.
    func split(around axis: Int) -> (outer: Int, n: Int, inner: Int) {
        let a = normalize(axis: axis)
        return (shape[..<a].reduce(1, *), shape[a], shape[(a + 1)...].reduce(1, *))
    }

    func reducedShape(_ axis: Int, keepDims: Bool) -> [Int] {
        var s = shape
        let a = normalize(axis: axis)
        if keepDims { s[a] = 1 } else { s.remove(at: a) }
        return s
    }

    /// Sum of all elements (a scalar tensor of shape []).
    public func sum() -> Tensor {
        let backend = self.backend
        let out = Tensor([backend.sum(data, count: count)], shape: []).to(device)
        return out.record([self]) { g in self.accumulateGrad(.full(self.shape, g.item, on: backend)) }
    }

    /// Mean of all elements.
    public func mean() -> Tensor { sum() * (1 / Float(Swift.max(count, 1))) }

    /// Sum along `axis`.
    public func sum(axis: Int, keepDims: Bool = false) -> Tensor {
        let (outer, n, inner) = split(around: axis)
        let out = Tensor(uninitialized: reducedShape(axis, keepDims: keepDims), on: backend)
        backend.sumAxis(data, outer: outer, n: n, inner: inner, into: out.data)
        let keptShape = reducedShape(axis, keepDims: true)
        return out.record([self]) { g in
            self.accumulateGrad(withNoGrad { g.reshaped(keptShape).expand(to: self.shape) })
        }
    }

    /// Mean along `axis`.
    public func mean(axis: Int, keepDims: Bool = false) -> Tensor {
        sum(axis: axis, keepDims: keepDims) * (1 / Float(size(axis)))
    }

    /// Maximum along `axis`; the gradient goes to the first maximal element.
    public func max(axis: Int, keepDims: Bool = false) -> Tensor {
        let (outer, n, inner) = split(around: axis)
        precondition(n > 0, "max over an empty axis")
        let backend = self.backend
        let out = Tensor(uninitialized: reducedShape(axis, keepDims: keepDims), on: backend)
        let arg = backend.maxAxis(data, outer: outer, n: n, inner: inner, into: out.data)
        return out.record([self]) { g in
            self.withGrad { dx in backend.maxAxisBackward(g.data, arg: arg, outer: outer, n: n, inner: inner, into: dx) }
        }
    }

    /// Index of the maximum along the last axis, for each row.
    public func argmax() -> [Int] {
        let n = shape.last ?? 1
        return backend.argmax(data, rows: count / Swift.max(n, 1), columns: n)
    }
}
