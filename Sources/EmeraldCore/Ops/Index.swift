extension Tensor {
    /// Rows of this 2-D table picked by `ids` (an embedding lookup).
    /// Output shape: `idsShape + [columns]`.
    public func indexSelect(_ ids: [Int32], shape idsShape: [Int]) -> Tensor {
        precondition(rank == 2, "indexSelect needs a 2-D table, shape is \(shape)")
        let (rows, cols) = (shape[0], shape[1])
        precondition(ids.count == idsShape.reduce(1, *), "\(ids.count) ids do not fill shape \(idsShape)")
        for id in ids { precondition(id >= 0 && Int(id) < rows, "index \(id) out of range 0..<\(rows)") }
        let backend = self.backend
        let out = Tensor(uninitialized: idsShape + [cols], on: backend)
        backend.gatherRows(data, columns: cols, ids: ids, into: out.data)
        return out.record([self]) { g in
            self.withGrad { dw in backend.scatterAddRows(g.data, columns: cols, ids: ids, into: dw) }
        }
    }

    /// Picks one element per row of the last axis: `out[r] = self[r, index[r]]`.
    public func gather(lastAxis index: [Int32]) -> Tensor {
        let n = shape.last ?? 1
        precondition(index.count * n == count, "gather needs one index per row")
        for i in index { precondition(i >= 0 && Int(i) < n, "index \(i) out of range 0..<\(n)") }
        let backend = self.backend
        let out = Tensor(uninitialized: Array(shape.dropLast()), on: backend)
        backend.gatherColumns(data, n: n, index: index, into: out.data)
        return out.record([self]) { g in
            self.withGrad { dx in backend.scatterAddColumns(g.data, n: n, index: index, into: dx) }
        }
    }
}
