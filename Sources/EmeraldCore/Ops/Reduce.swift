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
        let out = Tensor([Kernels.sum(data, count)], shape: [])
        return out.record([self]) { g in self.accumulateGrad(.full(self.shape, g.data[0])) }
    }

    /// Mean of all elements.
    public func mean() -> Tensor { sum() * (1 / Float(Swift.max(count, 1))) }

    /// Sum along `axis`.
    public func sum(axis: Int, keepDims: Bool = false) -> Tensor {
        let (outer, n, inner) = split(around: axis)
        let out = Tensor.zeros(reducedShape(axis, keepDims: keepDims))
        let x = data, y = out.data
        for o in 0..<outer {
            for i in 0..<n { Kernels.axpy(1, x + (o * n + i) * inner, y + o * inner, inner) }
        }
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
        let out = Tensor(uninitialized: reducedShape(axis, keepDims: keepDims))
        var arg = [Int](repeating: 0, count: outer * inner)
        let x = data, y = out.data
        for o in 0..<outer {
            for j in 0..<inner {
                var best = x[o * n * inner + j], bi = 0
                for i in 1..<n where x[(o * n + i) * inner + j] > best { best = x[(o * n + i) * inner + j]; bi = i }
                y[o * inner + j] = best
                arg[o * inner + j] = bi
            }
        }
        return out.record([self]) { g in
            self.withGrad { dx in
                for o in 0..<outer { for j in 0..<inner { dx[(o * n + arg[o * inner + j]) * inner + j] += g.data[o * inner + j] } }
            }
        }
    }

    /// Index of the maximum along the last axis, for each row.
    public func argmax() -> [Int] {
        let n = shape.last ?? 1
        return (0..<(count / Swift.max(n, 1))).map { r in
            let row = data + r * n
            var bi = 0
            for i in 1..<n where row[i] > row[bi] { bi = i }
            return bi
        }
    }
}
