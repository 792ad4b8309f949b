extension Tensor {
    /// Rows of this 2-D table picked by `ids` (an embedding lookup).
    /// Output shape: `idsShape + [columns]`.
    public func indexSelect(_ ids: [Int32], shape idsShape: [Int]) -> Tensor {
        precondition(rank == 2, "indexSelect needs a 2-D table, shape is \(shape)")
        let (rows, cols) = (shape[0], shape[1])
        precondition(ids.count == idsShape.reduce(1, *), "\(ids.count) ids do not fill shape \(idsShape)")
        let out = Tensor(uninitialized: idsShape + [cols])
        for (i, id) in ids.enumerated() {
            precondition(id >= 0 && Int(id) < rows, "index \(id) out of range 0..<\(rows)")
            (out.data + i * cols).update(from: data + Int(id) * cols, count: cols)
        }
        return out.record([self]) { g in
            self.withGrad { dw in
                for (i, id) in ids.enumerated() { Kernels.axpy(1, g.data + i * cols, dw + Int(id) * cols, cols) }
            }
        }
    }

    /// Picks one element per row of the last axis: `out[r] = self[r, index[r]]`.
    public func gather(lastAxis index: [Int32]) -> Tensor {
        let n = shape.last ?? 1
        precondition(index.count * n == count, "gather needs one index per row")
        let out = Tensor(uninitialized: Array(shape.dropLast()))
        for (r, i) in index.enumerated() {
            precondition(i >= 0 && Int(i) < n, "index \(i) out of range 0..<\(n)")
            out.data[r] = data[r * n + Int(i)]
        }
        return out.record([self]) { g in
            self.withGrad { dx in for (r, i) in index.enumerated() { dx[r * n + Int(i)] += g.data[r] } }
        }
    }
}
