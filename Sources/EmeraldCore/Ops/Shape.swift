extension Tensor {
    /// Same data, new shape (free: shares storage). One dimension may be -1.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var s = newShape
        if let i = s.firstIndex(of: -1) {
            let known = s.enumerated().filter { $0.offset != i }.map(\.element).reduce(1, *)
            precondition(known > 0 && count % known == 0, "cannot reshape \(shape) to \(newShape)")
            s[i] = count / known
        }
        precondition(s.reduce(1, *) == count, "cannot reshape \(shape) (\(count) elements) to \(newShape)")
        let out = Tensor(shape: s, storage: storage, offset: offset)
        return out.record([self]) { g in self.accumulateGrad(g) }
    }

    /// Reorders dimensions: output dim i is input dim `perm[i]` (copies).
    public func permuted(_ perm: [Int]) -> Tensor {
        precondition(perm.sorted() == Array(0..<rank), "\(perm) is not a permutation of \(rank) axes")
        let outShape = perm.map { shape[$0] }
        let out = Tensor(uninitialized: outShape)
        var inStrides = [Int](repeating: 1, count: rank)
        for i in stride(from: rank - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * shape[i + 1] }
        let src = data, dst = out.data
        forEachBroadcast(outShape, perm.map { inStrides[$0] }) { o, s in dst[o] = src[s] }
        var inverse = [Int](repeating: 0, count: rank)
        for (i, p) in perm.enumerated() { inverse[p] = i }
        return out.record([self]) { g in self.accumulateGrad(withNoGrad { g.permuted(inverse) }) }
    }

    /// Swaps two dimensions (copies).
    public func transposed(_ a: Int = -2, _ b: Int = -1) -> Tensor {
        var perm = Array(0..<rank)
        perm.swapAt(normalize(axis: a), normalize(axis: b))
        return permuted(perm)
    }

    /// Elements `range` along `axis` (copies).
    public func slice(axis: Int, _ range: Range<Int>) -> Tensor {
        let (outer, n, inner) = split(around: axis)
        precondition(range.lowerBound >= 0 && range.upperBound <= n, "slice \(range) out of 0..<\(n)")
        var s = shape
        s[normalize(axis: axis)] = range.count
        let out = Tensor(uninitialized: s)
        let m = range.count * inner
        for o in 0..<outer { (out.data + o * m).update(from: data + (o * n + range.lowerBound) * inner, count: m) }
        return out.record([self]) { g in
            self.withGrad { dx in
                for o in 0..<outer { Kernels.axpy(1, g.data + o * m, dx + (o * n + range.lowerBound) * inner, m) }
            }
        }
    }

    /// Joins tensors along `axis`; all other dimensions must match.
    public static func concat(_ parts: [Tensor], axis: Int) -> Tensor {
        precondition(!parts.isEmpty, "concat of no tensors")
        let first = parts[0]
        let a = first.normalize(axis: axis)
        for p in parts {
            precondition(p.rank == first.rank, "concat rank mismatch \(p.shape) vs \(first.shape)")
            for d in 0..<first.rank where d != a {
                precondition(p.shape[d] == first.shape[d], "concat shape mismatch \(p.shape) vs \(first.shape)")
            }
        }
        var s = first.shape
        s[a] = parts.map { $0.shape[a] }.reduce(0, +)
        let out = Tensor(uninitialized: s)
        let outer = s[..<a].reduce(1, *), inner = s[(a + 1)...].reduce(1, *)
        let rowOut = s[a] * inner
        var start = 0
        var starts: [Int] = []
        for p in parts {
            starts.append(start)
            let m = p.shape[a] * inner
            for o in 0..<outer { (out.data + o * rowOut + start).update(from: p.data + o * m, count: m) }
            start += m
        }
        return out.record(parts) { g in
            for (p, st) in zip(parts, starts) where p.requiresGrad {
                let m = p.shape[a] * inner
                p.withGrad { dx in for o in 0..<outer { Kernels.axpy(1, g.data + o * rowOut + st, dx + o * m, m) } }
            }
        }
    }

    /// Stacks equal-shaped tensors along a new `axis`.
    public static func stack(_ parts: [Tensor], axis: Int = 0) -> Tensor {
        precondition(!parts.isEmpty, "stack of no tensors")
        let r = parts[0].rank
        let a = axis < 0 ? axis + r + 1 : axis
        return concat(parts.map { p -> Tensor in
            precondition(p.shape == parts[0].shape, "stack needs equal shapes, got \(p.shape) and \(parts[0].shape)")
            var s = p.shape
            s.insert(1, at: a)
            return p.reshaped(s)
        }, axis: a)
    }
}
