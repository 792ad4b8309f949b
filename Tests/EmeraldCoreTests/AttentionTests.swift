import EmeraldCore
import XCTest

/// Attention over separate q, k, v with grouped key/value heads, the rotary embedding and the
/// key/value cache, each against a composite of primitive ops or a direct formula.
final class AttentionTests: XCTestCase {
    /// softmax(mask(q_h k_{h/g}ᵀ/√hs)) v_{h/g} per head, from primitive ops.
    private func composite(_ q: Tensor, _ k: Tensor, _ v: Tensor, heads: Int, kvHeads: Int) -> Tensor {
        let (b, t) = (q.shape[0], q.shape[1]), hs = q.shape[2] / heads, group = heads / kvHeads
        let mask = Tensor.causalMask(t)
        func head(_ x: Tensor, _ h: Int) -> Tensor { x.slice(axis: -1, (h * hs)..<((h + 1) * hs)).reshaped([b, t, hs]) }
        let outs = (0..<heads).map { h -> Tensor in
            let att = (head(q, h).matmul(head(k, h / group), transposeOther: true) * (1 / Float(hs).squareRoot()))
                .maskedFill(mask, -1e9).softmax()
            return att.matmul(head(v, h / group))
        }
        return Tensor.concat(outs, axis: -1)
    }

    func testGroupedQueryAttentionMatchesComposite() {
        var g = Inputs(60)
        let (b, t, heads, kvHeads, hs) = (2, 37, 4, 2, 5)  // 37 rows: two row blocks, the second partial
        let q = g.normal([b, t, heads * hs]), k = g.normal([b, t, kvHeads * hs]), v = g.normal([b, t, kvHeads * hs])
        let r = g.normal([b, t, heads * hs])
        func grads(_ f: () -> Tensor) -> (out: [Float], grads: [[Float]]) {
            for x in [q, k, v] { x.requiresGrad = true; x.zeroGrad() }
            let out = f()
            out.backward(seed: r)
            return (out.scalars, [q, k, v].map { $0.grad!.scalars })
        }
        let fused = grads { .causalAttention(q: q.allColumns, k: k.allColumns, v: v.allColumns, heads: heads, kvHeads: kvHeads) }
        let ref = grads { composite(q, k, v, heads: heads, kvHeads: kvHeads) }
        XCTAssertLessThan(TestSupportCore.maxAbsDiff(fused.out, ref.out), 1e-5)
        for (name, (f, c)) in zip(["dq", "dk", "dv"], zip(fused.grads, ref.grads)) {
            let scale = Swift.max(1, c.map { abs($0) }.max()!)
            XCTAssertLessThan(TestSupportCore.maxAbsDiff(f, c), 1e-5 * scale, name)
        }
        // A second backward adds to the gradients (beta 1), for every operand.
        let once = [q, k, v].map { $0.grad!.scalars }
        Tensor.causalAttention(q: q.allColumns, k: k.allColumns, v: v.allColumns, heads: heads, kvHeads: kvHeads).backward(seed: r)
        for (x, g1) in zip([q, k, v], once) {
            XCTAssertLessThan(TestSupportCore.maxAbsDiff(x.grad!.scalars, g1.map { 2 * $0 }), 1e-5 * Swift.max(1, g1.map { abs($0) }.max()!))
        }
    }

    func testGroupedQueryAttentionGradientsMatchFiniteDifferences() {
        var g = Inputs(61)
        GradCheck.check("grouped-query attention", [g.normal([1, 5, 6]), g.normal([1, 5, 2]), g.normal([1, 5, 2])], eps: 1e-3) { p in
            .causalAttention(q: p[0].allColumns, k: p[1].allColumns, v: p[2].allColumns, heads: 3, kvHeads: 1)
        }
    }

    /// Columns of one packed tensor and three separate tensors give the same output, and the
    /// packed gradient holds the three separate gradients side by side.
    func testPackedColumnsEqualSeparateOperands() {
        var g = Inputs(62)
        let (b, t, heads, c) = (2, 9, 2, 8)
        let qkv = g.normal([b, t, 3 * c]), r = g.normal([b, t, c])
        let parts = (0..<3).map { i in qkv.slice(axis: -1, (i * c)..<((i + 1) * c)).detached() }
        qkv.requiresGrad = true
        for p in parts { p.requiresGrad = true }
        let packed = qkv.causalSelfAttention(heads: heads)
        let separate = Tensor.causalAttention(q: parts[0].allColumns, k: parts[1].allColumns, v: parts[2].allColumns,
                                              heads: heads, kvHeads: heads)
        XCTAssertEqual(packed.scalars, separate.scalars)
        packed.backward(seed: r)
        separate.backward(seed: r)
        let joined = Tensor.concat(parts.map { $0.grad! }, axis: -1)
        XCTAssertEqual(qkv.grad!.scalars, joined.scalars)
    }

    /// Only q takes a gradient: k and v's backward goes to a throwaway buffer.
    func testOperandsWithoutGradientAreLeftAlone() {
        var g = Inputs(63)
        let q = g.normal([1, 4, 4]), k = g.normal([1, 4, 4]), v = g.normal([1, 4, 4])
        q.requiresGrad = true
        Tensor.causalAttention(q: q.allColumns, k: k.allColumns, v: v.allColumns, heads: 2, kvHeads: 2).sum().backward()
        XCTAssertNotNil(q.grad)
        XCTAssertNil(k.grad)
        XCTAssertNil(v.grad)
    }

    /// The cache, fed a prompt and then one position at a time, gives the rows of full causal
    /// attention, with grouped key/value heads.
    func testCacheMatchesFullAttentionWithGroupedHeads() {
        var g = Inputs(64)
        let (t, heads, kvHeads, hs) = (11, 6, 2, 4)
        let q = g.normal([1, t, heads * hs]), k = g.normal([1, t, kvHeads * hs]), v = g.normal([1, t, kvHeads * hs])
        let full = withNoGrad { Tensor.causalAttention(q: q.allColumns, k: k.allColumns, v: v.allColumns, heads: heads, kvHeads: kvHeads) }
        let cache = LayerKVCache(kvHeads: kvHeads, headSize: hs, capacity: 16)
        func rows(_ x: Tensor, _ r: Range<Int>) -> Columns { x.slice(axis: 1, r).allColumns }
        var got = cache.attend(q: rows(q, 0..<4), k: rows(k, 0..<4), v: rows(v, 0..<4), heads: heads).scalars
        for i in 4..<t { got += cache.attend(q: rows(q, i..<(i + 1)), k: rows(k, i..<(i + 1)), v: rows(v, i..<(i + 1)), heads: heads).scalars }
        XCTAssertEqual(cache.length, t)
        XCTAssertLessThan(TestSupportCore.maxAbsDiff(got, full.scalars), 1e-5)
    }

    /// A bf16 cache gives full causal attention over bf16-rounded keys and values (fp32
    /// otherwise), for head sizes through every loop of the kernel: 64-wide, 8-wide, a tail.
    func testBF16CacheIsAttentionOverRoundedKeysAndValues() {
        var g = Inputs(65)
        for (hs, kvHeads) in [(72, 1), (13, 2)] {
            let (t, heads) = (9, 2)
            let q = g.normal([1, t, heads * hs]), k = g.normal([1, t, kvHeads * hs]), v = g.normal([1, t, kvHeads * hs])
            let round = { (x: Tensor) in Tensor(x.scalars.map { BF16Matrix.widen(BF16Matrix.round($0)) }, shape: x.shape) }
            let full = withNoGrad {
                Tensor.causalAttention(q: q.allColumns, k: round(k).allColumns, v: round(v).allColumns, heads: heads, kvHeads: kvHeads)
            }
            let cache = LayerKVCache(kvHeads: kvHeads, headSize: hs, capacity: 12, storage: .bf16)
            func rows(_ x: Tensor, _ r: Range<Int>) -> Columns { x.slice(axis: 1, r).allColumns }
            var got = cache.attend(q: rows(q, 0..<5), k: rows(k, 0..<5), v: rows(v, 0..<5), heads: heads).scalars
            for i in 5..<t { got += cache.attend(q: rows(q, i..<(i + 1)), k: rows(k, i..<(i + 1)), v: rows(v, i..<(i + 1)), heads: heads).scalars }
            XCTAssertLessThan(TestSupportCore.maxAbsDiff(got, full.scalars), 1e-5, "head size \(hs)")
            let unrounded = withNoGrad { Tensor.causalAttention(q: q.allColumns, k: k.allColumns, v: v.allColumns, heads: heads, kvHeads: kvHeads) }
            XCTAssertGreaterThan(TestSupportCore.maxAbsDiff(got, unrounded.scalars), 1e-4, "the entries were rounded, head size \(hs)")
        }
    }

    func testRotaryEmbeddingMatchesFormula() {
        var g = Inputs(65)
        let (t, heads, hs, start) = (3, 2, 6, 5)
        let x = g.normal([1, t, heads * hs])
        let inv: [Float] = [1, 0.1, 0.01]
        let y = x.rotaryEmbedding(heads: heads, start: start, inverseFrequencies: inv)
        for p in 0..<t {
            for h in 0..<heads {
                for i in 0..<(hs / 2) {
                    let a = Double(x.data[p * heads * hs + h * hs + i]), b = Double(x.data[p * heads * hs + h * hs + i + hs / 2])
                    let angle = Double(start + p) * Double(inv[i])
                    let want0 = a * cos(angle) - b * sin(angle), want1 = b * cos(angle) + a * sin(angle)
                    XCTAssertEqual(Double(y.data[p * heads * hs + h * hs + i]), want0, accuracy: 1e-5)
                    XCTAssertEqual(Double(y.data[p * heads * hs + h * hs + i + hs / 2]), want1, accuracy: 1e-5)
                }
            }
        }
    }

    func testRotaryEmbeddingGradient() {
        var g = Inputs(66)
        GradCheck.check("rotary embedding", [g.normal([2, 3, 8])], eps: 1e-3) { p in
            p[0].rotaryEmbedding(heads: 2, start: 7, inverseFrequencies: [1, 0.3])
        }
    }

    /// Rotated queries and keys score by their distance only: q at m and k at n give the same
    /// dot product as q at m+d and k at n+d.
    func testRotaryScoresDependOnRelativePosition() {
        var g = Inputs(67)
        let q = g.normal([1, 1, 8]), k = g.normal([1, 1, 8])
        let inv: [Float] = [1, 0.5, 0.1, 0.01]
        func score(_ m: Int, _ n: Int) -> Float {
            let a = q.rotaryEmbedding(heads: 1, start: m, inverseFrequencies: inv)
            let b = k.rotaryEmbedding(heads: 1, start: n, inverseFrequencies: inv)
            return (a * b).sum().item
        }
        XCTAssertEqual(score(9, 4), score(25, 20), accuracy: 1e-4)
        XCTAssertNotEqual(score(9, 4), score(9, 5), accuracy: 1e-3)
    }
}

enum TestSupportCore {
    static func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count, "lengths \(a.count) and \(b.count)")
        return zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }
}

/// `backward(onLeafReady:)`: every leaf is reported once, when its gradient is already final
/// (a parameter read by several ops, early and late in the graph, included).
final class LeafReadyTests: XCTestCase {
    func testLeavesAreReportedOnceWithFinalGradients() {
        var g = Inputs(70)
        let w = g.normal([4, 4]), b = g.normal([4]), x = g.normal([3, 4])
        for t in [w, b] { t.requiresGrad = true }
        func loss() -> Tensor {
            let h = x.linear(weight: w, bias: b).tanh()
            return (h.linear(weight: w, bias: nil) * h).sum()  // w used at both ends
        }
        var seen: [(ObjectIdentifier, [Float])] = []
        loss().backward(onLeafReady: { t in seen.append((ObjectIdentifier(t), t.grad!.scalars)) })
        XCTAssertEqual(Set(seen.map(\.0)), [ObjectIdentifier(w), ObjectIdentifier(b)])
        XCTAssertEqual(seen.count, 2)
        for (id, grad) in seen { XCTAssertEqual(grad, (id == ObjectIdentifier(w) ? w : b).grad!.scalars) }
        let final = [w.grad!.scalars, b.grad!.scalars]
        for t in [w, b] { t.grad = nil }
        loss().backward()
        XCTAssertEqual([w.grad!.scalars, b.grad!.scalars], final)
    }
}
