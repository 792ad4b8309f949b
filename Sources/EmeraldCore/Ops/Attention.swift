/// Columns `range` of the last axis of a tensor, read in place: an attention operand.
///
/// GPT-2 projects queries, keys and values with one packed `c_attn` (B, T, 3C); Llama-family
/// models with three separate projections. Attention reads either layout without copying:
/// q, k and v are column ranges of one tensor or of several.
public struct Columns {
    /// The tensor the columns belong to (rank ≥ 2; its last axis holds them).
    public let tensor: Tensor
    /// Which columns of the last axis.
    public let range: Range<Int>

    /// Columns `range` of `tensor`'s last axis.
    public init(_ tensor: Tensor, _ range: Range<Int>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= (tensor.shape.last ?? 0),
                     "columns \(range) outside a last axis of \(tensor.shape.last ?? 0)")
        self.tensor = tensor
        self.range = range
    }

    /// Distance between rows (the tensor's last dimension).
    var rowStride: Int { tensor.shape.last! }
}

extension Tensor {
    /// Columns `range` of the last axis, read in place by attention.
    public func columns(_ range: Range<Int>) -> Columns { Columns(self, range) }
    /// Every column of the last axis.
    public var allColumns: Columns { Columns(self, 0..<(shape.last ?? 0)) }

    /// `causalAttention` on packed qkv (B, T, 3C) as GPT-2's `c_attn` makes it: channels
    /// [0, C) are queries, [C, 2C) keys, [2C, 3C) values. Output (B, T, C).
    public func causalSelfAttention(heads: Int, dropout: Float = 0, seed: UInt64 = 0) -> Tensor {
        precondition(rank == 3 && shape[2] % 3 == 0, "attention expects qkv of shape (B, T, 3C), got \(shape)")
        let c = shape[2] / 3
        return .causalAttention(q: columns(0..<c), k: columns(c..<(2 * c)), v: columns((2 * c)..<(3 * c)),
                                heads: heads, kvHeads: heads, dropout: dropout, seed: seed)
    }

    /// Fused masked multi-head attention, flash-style, with `kvHeads` key/value heads shared
    /// by groups of `heads / kvHeads` query heads (grouped-query attention; equal counts are
    /// plain multi-head attention).
    ///
    /// q is (B, T, heads·hs), k and v (B, T, kvHeads·hs), each a column range of some tensor
    /// (`Columns`); query head h owns columns h·hs ..< (h+1)·hs and reads key/value head
    /// h / (heads / kvHeads). Output (B, T, heads·hs).
    ///
    /// Work is split across cores by (batch, head). Within a head, rows are processed in
    /// blocks of `AttentionKernel.rowBlock` queries: scores for a block are one small GEMM
    /// against the keys it may see (the causal triangle, never the masked upper part),
    /// softmaxed in place, then one GEMM with V. Forward keeps only each row's log-sum-exp
    /// (B·H·T floats); backward recomputes the probabilities block by block, so no T×T matrix
    /// per head outlives the kernel.
    ///
    /// With `dropout` > 0, attention probabilities are dropped (and the kept ones scaled by
    /// 1/(1−p)) as nanoGPT does; the mask comes from a counter hash of (`seed`, position), so
    /// backward regenerates it instead of storing it.
    public static func causalAttention(q: Columns, k: Columns, v: Columns, heads: Int, kvHeads: Int,
                                       dropout: Float = 0, seed: UInt64 = 0) -> Tensor {
        let qs = q.tensor.shape
        precondition(qs.count == 3 && k.tensor.rank == 3 && v.tensor.rank == 3, "attention expects (B, T, channels) operands")
        precondition(k.tensor.shape.prefix(2) == qs.prefix(2) && v.tensor.shape.prefix(2) == qs.prefix(2),
                     "attention: q \(qs), k \(k.tensor.shape) and v \(v.tensor.shape) differ in batch or time")
        precondition(heads > 0 && kvHeads > 0 && heads % kvHeads == 0, "\(heads) query heads do not group over \(kvHeads) key/value heads")
        precondition(q.range.count % heads == 0, "\(q.range.count) query channels do not split into \(heads) heads")
        let hs = q.range.count / heads
        precondition(k.range.count == kvHeads * hs && v.range.count == kvHeads * hs,
                     "attention: keys and values need \(kvHeads)×\(hs) channels, got \(k.range.count) and \(v.range.count)")
        precondition(dropout >= 0 && dropout < 1, "attention dropout must be in [0, 1)")
        // Inside a data-parallel shard, mask positions count (batch, head) pairs from the
        // start of the whole batch (see `ShardRows`).
        let geo = AttentionGeometry(b: qs[0], t: qs[1], heads: heads, kvHeads: kvHeads, hs: hs,
                                           ldq: q.rowStride, ldk: k.rowStride, ldv: v.rowStride,
                                           dropout: dropout, seed: seed, firstPair: ShardRows.elementOffset(qs[0]) * heads)
        let backend = q.tensor.backend
        let out = Tensor(uninitialized: [geo.b, geo.t, geo.c], on: backend)
        let lse = Tensor(uninitialized: [geo.b, heads, geo.t], on: backend)
        let qp = q.tensor.data + q.range.lowerBound, kp = k.tensor.data + k.range.lowerBound
        let vp = v.tensor.data + v.range.lowerBound
        backend.attentionForward(geo, q: qp, k: kp, v: vp, out: out.data, lse: lse.data)
        var parents: [Tensor] = []
        for t in [q.tensor, k.tensor, v.tensor] where !parents.contains(where: { $0 === t }) { parents.append(t) }
        return out.record(parents) { [unowned out] g in
            // A fresh gradient is written, not zero-filled first (each head zeroes its own rows).
            withGradients(parents) { grads in
                func slot(_ c: Columns) -> (UnsafeMutablePointer<Float>, Bool) {
                    let (p, accumulate) = grads[parents.firstIndex { $0 === c.tensor }!]
                    return (p + c.range.lowerBound, accumulate)
                }
                backend.attentionBackward(geo, q: qp, k: kp, v: vp, out: out.data, lse: lse.data, dout: g.data,
                                          dq: slot(q), dk: slot(k), dv: slot(v))
            }
        }
    }

    /// Runs `body` with a gradient buffer for each of `tensors` and whether it already holds a
    /// gradient to add to (GEMM's beta 1) or must be overwritten (beta 0). A tensor that takes
    /// no gradient gets a throwaway buffer.
    static func withGradients(_ tensors: ArraySlice<Tensor>, _ taken: [(UnsafeMutablePointer<Float>, Bool)] = [],
                              _ body: ([(UnsafeMutablePointer<Float>, Bool)]) -> Void) {
        guard let first = tensors.first else { return body(taken) }
        if first.requiresGrad {
            first.withGrad { p, beta in withGradients(tensors.dropFirst(), taken + [(p, beta != 0)], body) }
        } else {
            let unused = Tensor(uninitialized: first.shape)
            withGradients(tensors.dropFirst(), taken + [(unused.data, false)], body)
        }
    }

    static func withGradients(_ tensors: [Tensor], _ body: ([(UnsafeMutablePointer<Float>, Bool)]) -> Void) {
        withGradients(tensors[...], [], body)
    }
}
