/// Broadcast shape of two shapes (NumPy rules), or nil if incompatible.
public func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int]? {
    let n = max(a.count, b.count)
    var out = [Int](repeating: 1, count: n)
    for i in 0..<n {
        let da = i < n - a.count ? 1 : a[i - (n - a.count)]
        let db = i < n - b.count ? 1 : b[i - (n - b.count)]
        if da != db && da != 1 && db != 1 { return nil }
        out[i] = da == 1 ? db : da
    }
    return out
}

/// Element strides of `shape` seen inside `outShape` (0 along broadcast dims).
func broadcastStrides(_ shape: [Int], in outShape: [Int]) -> [Int] {
    var strides = [Int](repeating: 0, count: outShape.count)
    var s = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
        let o = i + outShape.count - shape.count
        strides[o] = shape[i] == 1 ? 0 : s
        s *= shape[i]
    }
    return strides
}

/// Calls `body(outIndex, srcIndex)` for every element of `outShape`.
@inline(__always)
func forEachBroadcast(_ outShape: [Int], _ strides: [Int], _ body: (Int, Int) -> Void) {
    let n = outShape.reduce(1, *)
    if n == 0 { return }
    var idx = [Int](repeating: 0, count: outShape.count)
    var src = 0
    for o in 0..<n {
        body(o, src)
        var d = outShape.count - 1
        while d >= 0 {
            idx[d] += 1
            src += strides[d]
            if idx[d] < outShape[d] { break }
            src -= strides[d] * idx[d]
            idx[d] = 0
            d -= 1
        }
    }
}

extension Tensor {
    /// Materialises this tensor broadcast to `outShape`.
    public func expand(to outShape: [Int]) -> Tensor {
        if shape == outShape { return self }
        precondition(broadcastShape(shape, outShape) == outShape, "cannot broadcast \(shape) to \(outShape)")
        let out = Tensor(uninitialized: outShape, on: backend)
        backend.broadcast(data, from: shape, into: out.data, to: outShape)
        return out.record([self]) { g in self.accumulateGrad(g.sum(toShape: self.shape)) }
    }

    /// Sums a broadcast gradient back down to `target` (inverse of `expand`).
    public func sum(toShape target: [Int]) -> Tensor {
        if shape == target { return self }
        let out = Tensor(uninitialized: target, on: backend)
        backend.reduceBroadcast(data, from: shape, into: out.data, to: target)
        return out.record([self]) { g in self.accumulateGrad(g.expand(to: self.shape)) }
    }

    /// Elementwise op with broadcasting; `da`/`db` give each side's gradient
    /// before reduction, from (a, b, g) at the broadcast shape.
    func binary(_ other: Tensor, _ op: BinaryOp) -> Tensor {
        guard let outShape = broadcastShape(shape, other.shape) else {
            preconditionFailure("shapes \(shape) and \(other.shape) do not broadcast")
        }
        let a = withNoGrad { self.expand(to: outShape) }
        let b = withNoGrad { other.expand(to: outShape) }
        let backend = self.backend
        let out = Tensor(uninitialized: outShape, on: backend)
        backend.binary(op, a.data, b.data, into: out.data, count: out.count)
        return out.record([self, other]) { g in
            for (side, t) in [self, other].enumerated() where t.requiresGrad {
                let d = Tensor(uninitialized: outShape, on: backend)
                backend.binaryBackward(op, side: side, a: a.data, b: b.data, g: g.data, into: d.data, count: d.count)
                t.adoptGrad(withNoGrad { d.sum(toShape: t.shape) })
            }
        }
    }

    /// a + b (broadcasting). Residual connections and biases: the gradient
    /// of each side is the output gradient, summed over broadcast dimensions.
    public static func + (a: Tensor, b: Tensor) -> Tensor {
        guard let outShape = broadcastShape(a.shape, b.shape) else {
            preconditionFailure("shapes \(a.shape) and \(b.shape) do not broadcast")
        }
        let backend = a.backend
        let out = Tensor(uninitialized: outShape, on: backend)
        if a.shape == outShape && Array(outShape.suffix(b.rank)) == b.shape {
            // Same shape, or b repeats along leading dims (position embeddings, biases).
            let m = b.count
            backend.addRows(a.data, b.data, into: out.data, rows: out.count / Swift.max(m, 1), count: m)
        } else {
            let ea = withNoGrad { a.expand(to: outShape) }, eb = withNoGrad { b.expand(to: outShape) }
            backend.binary(.add, ea.data, eb.data, into: out.data, count: out.count)
        }
        return out.record([a, b]) { g in
            for t in [a, b] where t.requiresGrad {
                if t.shape == outShape { t.accumulateGrad(g) } else { t.adoptGrad(withNoGrad { g.sum(toShape: t.shape) }) }
            }
        }
    }

    /// a − b (broadcasting).
    public static func - (a: Tensor, b: Tensor) -> Tensor {
        a.binary(b, .subtract)
    }

    /// a · b elementwise (broadcasting).
    public static func * (a: Tensor, b: Tensor) -> Tensor {
        a.binary(b, .multiply)
    }

    /// a / b elementwise (broadcasting).
    public static func / (a: Tensor, b: Tensor) -> Tensor {
        a.binary(b, .divide)
    }
}
