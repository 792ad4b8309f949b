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
        let out = Tensor(uninitialized: outShape, on: backend)
        backend.permute(data, shape: shape, perm: perm, into: out.data)
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
        let backend = self.backend
        let out = Tensor(uninitialized: s, on: backend)
        let m = range.count * inner
        backend.copyRows(data + range.lowerBound * inner, srcStride: n * inner, to: out.data, dstStride: m, rows: outer, cols: m,
                         accumulate: false)
        return out.record([self]) { g in
            self.withGrad { dx in
                backend.copyRows(g.data, srcStride: m, to: dx + range.lowerBound * inner, dstStride: n * inner, rows: outer, cols: m,
                                 accumulate: true)
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
        let backend = first.backend
        let out = Tensor(uninitialized: s, on: backend)
        let outer = s[..<a].reduce(1, *), inner = s[(a + 1)...].reduce(1, *)
        let rowOut = s[a] * inner
        var start = 0
        var starts: [Int] = []
        for p in parts {
            starts.append(start)
            let m = p.shape[a] * inner
            backend.copyRows(p.data, srcStride: m, to: out.data + start, dstStride: rowOut, rows: outer, cols: m, accumulate: false)
            start += m
        }
        return out.record(parts) { g in
            for (p, st) in zip(parts, starts) where p.requiresGrad {
                let m = p.shape[a] * inner
                p.withGrad { dx in
                    backend.copyRows(g.data + st, srcStride: rowOut, to: dx, dstStride: m, rows: outer, cols: m, accumulate: true)
                }
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
