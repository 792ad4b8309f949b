import EmeraldCore
import Foundation
import XCTest

/// Forward values of the ops against hand-computed or Double-precision references.
final class OpTests: XCTestCase {
    // MARK: Helpers

    private func assertClose(_ got: [Float], _ want: [Float], tol: Float = 1e-6,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, "element count", file: file, line: line)
        for (i, (g, w)) in zip(got, want).enumerated() where !(abs(g - w) <= tol * Swift.max(1, abs(w))) {
            XCTFail("element \(i): got \(g), want \(w)", file: file, line: line)
            return
        }
    }

    /// Evenly spaced Floats in [lo, hi].
    private func grid(_ lo: Float, _ hi: Float, _ n: Int) -> [Float] {
        (0..<n).map { lo + (hi - lo) * Float($0) / Float(n - 1) }
    }

    /// ±10^e for e in [lo, hi] (dense, both signs).
    private func logGrid(_ lo: Double, _ hi: Double, _ n: Int) -> [Float] {
        let pos = (0..<n).map { Float(pow(10, lo + (hi - lo) * Double($0) / Double(n - 1))) }
        return pos + pos.map { -$0 }
    }

    /// Applies a Tensor op to a list of scalars (one big tensor, so SIMD bodies,
    /// tails and the multi-threaded split are all exercised).
    private func apply(_ xs: [Float], _ op: (Tensor) -> Tensor) -> [Float] {
        op(Tensor(xs, shape: [xs.count])).scalars
    }

    /// Relative-error check against a Double reference. Where the reference is
    /// below the smallest normal Float, the result must be within that of it.
    private func assertRelative(_ name: String, _ xs: [Float], _ got: [Float], tol: Double = 2e-6,
                                condition: (Double) -> Double = { _ in 1 },
                                _ ref: (Double) -> Double, file: StaticString = #filePath, line: UInt = #line) {
        var worst = 0.0, worstX: Float = 0
        for (x, g) in zip(xs, got) {
            let r = ref(Double(x))
            if g.isNaN { XCTFail("\(name)(\(x)) is NaN", file: file, line: line); return }
            if abs(r) < Double(Float.leastNormalMagnitude) {
                XCTAssertLessThanOrEqual(abs(Double(g) - r), Double(Float.leastNormalMagnitude),
                                         "\(name)(\(x)) = \(g), want ≈ \(r)", file: file, line: line)
                continue
            }
            let rel = abs(Double(g) - r) / abs(r) / Swift.max(1, condition(Double(x)))
            if rel > worst { worst = rel; worstX = x }
        }
        XCTAssertLessThanOrEqual(worst, tol, "\(name): worst relative error \(worst) at x = \(worstX)",
                                 file: file, line: line)
    }

    private func doubleLogSoftmax(_ row: [Float]) -> [Double] {
        let d = row.map(Double.init)
        let m = d.max()!
        let lse = m + Foundation.log(d.map { Foundation.exp($0 - m) }.reduce(0, +))
        return d.map { $0 - lse }
    }

    // MARK: Transcendentals vs Foundation

    func testExpMatchesFoundation() {
        var rng = RandomGenerator(seed: 1)
        let xs = grid(-87.3, 88.7, 200_001) + (0..<20_000).map { _ in rng.nextFloat() * 176 - 88 }
            + logGrid(-8, 1, 400) + [0, 88.72283, 88.5, 88.4, 88.38, 88.37]
        assertRelative("exp", xs, apply(xs) { $0.exp() }) { Foundation.exp($0) }

        // Underflow: 0 (never negative, never NaN) for large negative inputs.
        let low: [Float] = [-87.9, -88, -88.5, -100, -1_000, -1e30, -.greatestFiniteMagnitude, -.infinity]
        for (x, y) in zip(low, apply(low) { $0.exp() }) {
            XCTAssertFalse(y.isNaN, "exp(\(x)) is NaN")
            XCTAssertGreaterThanOrEqual(y, 0, "exp(\(x))")
            XCTAssertLessThan(y, Float.leastNormalMagnitude, "exp(\(x))")
        }
        for (x, y) in zip(low.dropFirst(2), apply(Array(low.dropFirst(2))) { $0.exp() }) {
            XCTAssertEqual(y, 0, "exp(\(x))")
        }
        // Overflow: +∞ like expf, finite just below ln(Float.greatestFiniteMagnitude).
        let high: [Float] = [88.722_85, 89, 100, 1e30, .infinity]
        for (x, y) in zip(high, apply(high) { $0.exp() }) { XCTAssertEqual(y, .infinity, "exp(\(x))") }
        let edge = apply([88.722_83]) { $0.exp() }[0]
        XCTAssertTrue(edge.isFinite && edge > 3.4e38, "exp(88.72283) = \(edge)")
        XCTAssertEqual(apply([0]) { $0.exp() }[0], 1)
    }

    func testTanhMatchesFoundation() {
        let xs = grid(-20, 20, 100_001) + logGrid(-10, 1.3, 2_000)
        assertRelative("tanh", xs, apply(xs) { $0.tanh() }) { Foundation.tanh($0) }
        let big: [Float] = [-.infinity, -1e30, -100, 100, 1e30, .infinity]
        XCTAssertEqual(apply(big) { $0.tanh() }, [-1, -1, -1, 1, 1, 1])
        XCTAssertEqual(apply([0]) { $0.tanh() }, [0])
    }

    func testSigmoidMatchesFoundation() {
        let xs = grid(-87, 40, 100_001) + logGrid(-10, 1.5, 1_000)
        assertRelative("sigmoid", xs, apply(xs) { $0.sigmoid() }) { 1 / (1 + Foundation.exp(-$0)) }
        let ends = apply([-.infinity, -1e30, -1_000, -100, 100, 1_000, .infinity]) { $0.sigmoid() }
        for y in ends.prefix(4) { XCTAssertTrue(y >= 0 && y < Float.leastNormalMagnitude, "sigmoid → 0, got \(y)") }
        XCTAssertEqual(Array(ends.suffix(3)), [1, 1, 1])
        XCTAssertEqual(apply([0]) { $0.sigmoid() }, [0.5])
    }

    func testGeluMatchesFoundation() {
        let c = (2 / Double.pi).squareRoot()
        func u(_ x: Double) -> Double { c * (x + 0.044715 * x * x * x) }
        // Relative error is measured in units of the condition number of σ(2u)
        // with respect to u, |2u|·(1 − σ(2u)): a float input's rounding of
        // x + 0.044715x³ alone moves the result that much in the negative tail.
        let condition: (Double) -> Double = { x in
            let v = 2 * u(x)
            return abs(v) / (1 + Foundation.exp(v))
        }
        // The textbook form 0.5x(1 + tanh u) in Double is exact enough down to x ≈ −5.
        let xs = grid(-5, 10, 60_001) + logGrid(-8, 0.5, 1_000)
        assertRelative("gelu (tanh form)", xs, apply(xs) { $0.gelu() }, condition: condition) { x in
            0.5 * x * (1 + Foundation.tanh(u(x)))
        }
        // Deep negative tail (values down to ~1e-37): the equivalent x·σ(2u) form.
        let tail = grid(-10, -3, 20_001)
        assertRelative("gelu (tail)", tail, apply(tail) { $0.gelu() }, condition: condition) { x in
            x / (1 + Foundation.exp(-2 * u(x)))
        }
        // Far ends: no NaN; 0 on the left (within a subnormal), identity on the right.
        let ends: [Float] = [-1e30, -1_000, -20, 20, 1_000, 1e30]
        let ys = apply(ends) { $0.gelu() }
        for (x, y) in zip(ends, ys) {
            XCTAssertFalse(y.isNaN, "gelu(\(x)) is NaN")
            if x < 0 { XCTAssertLessThan(abs(y), Float.leastNormalMagnitude, "gelu(\(x))") }
            else { XCTAssertEqual(y, x, "gelu(\(x))") }
        }
        XCTAssertEqual(apply([0]) { $0.gelu() }, [0])
        // Known values of GPT-2's gelu_new.
        assertClose(apply([1, -1, 2, -0.5]) { $0.gelu() }, [0.841_192, -0.158_808, 1.954_598, -0.154_286], tol: 2e-6)
    }

    func testSiluMatchesFoundation() {
        let xs = grid(-80, 40, 50_001) + logGrid(-8, 1, 500)
        assertRelative("silu", xs, apply(xs) { $0.silu() }) { $0 / (1 + Foundation.exp(-$0)) }
    }

    func testLogSqrtSquareRelu() {
        let pos = grid(1e-3, 1e4, 10_001) + logGrid(-30, 30, 200).filter { $0 > 0 }
        assertRelative("log", pos, apply(pos) { $0.log() }, tol: 1e-6) { Foundation.log($0) }
        assertRelative("sqrt", pos, apply(pos) { $0.sqrt() }, tol: 1e-7) { $0.squareRoot() }
        XCTAssertEqual(apply([0]) { $0.log() }, [-.infinity])
        let xs: [Float] = [-3, -0.5, 0, 0.25, 2, 7]
        XCTAssertEqual(apply(xs) { $0.square() }, [9, 0.25, 0, 0.0625, 4, 49])
        XCTAssertEqual(apply(xs) { $0.relu() }, [0, 0, 0, 0.25, 2, 7])
        XCTAssertEqual(apply(xs) { $0 * 2 }, [-6, -1, 0, 0.5, 4, 14])
        XCTAssertEqual(apply(xs) { $0 + 1 }, [-2, 0.5, 1, 1.25, 3, 8])
        XCTAssertEqual(apply(xs) { $0 - 1 }, [-4, -1.5, -1, -0.75, 1, 6])
        XCTAssertEqual(apply(xs) { $0 / 2 }, [-1.5, -0.25, 0, 0.125, 1, 3.5])
        XCTAssertEqual(apply(xs) { 3 * $0 }, [-9, -1.5, 0, 0.75, 6, 21])
        XCTAssertEqual(apply(xs) { -$0 }, [3, 0.5, 0, -0.25, -2, -7])
    }

    func testUnaryBackwardOnLargeTensor() {
        // Gradients on a tensor long enough to be split across threads, odd length.
        var rng = RandomGenerator(seed: 2)
        let n = 70_001
        let x = Tensor.uniform([n], low: -3, high: 3, using: &rng, requiresGrad: true)
        let seed = Tensor.randn([n], using: &rng)
        x.tanh().backward(seed: seed)
        let g = x.grad!
        for i in stride(from: 0, to: n, by: 7) + [n - 1] {
            let t = Foundation.tanh(Double(x.data[i]))
            XCTAssertEqual(Double(g.data[i]), Double(seed.data[i]) * (1 - t * t), accuracy: 1e-5)
        }
    }

    // MARK: Softmax family

    func testSoftmaxMatchesDouble() {
        var rng = RandomGenerator(seed: 3)
        for n in [1, 5, 16, 17, 37, 100, 1_000] {
            let rows = n == 1_000 ? 64 : 40
            let x = Tensor.randn([rows, n], std: 4, using: &rng)
            let y = x.softmax()
            XCTAssertEqual(y.shape, x.shape)
            for r in 0..<rows {
                let row = Array(x.scalars[(r * n)..<((r + 1) * n)])
                let ref = doubleLogSoftmax(row).map { Foundation.exp($0) }
                var total = 0.0
                for i in 0..<n {
                    let got = Double(y.data[r * n + i])
                    total += got
                    XCTAssertEqual(got, ref[i], accuracy: 1e-5 * ref[i] + 1e-8, "n=\(n) row \(r) col \(i)")
                }
                XCTAssertEqual(total, 1, accuracy: 1e-5, "n=\(n) row \(r) sums to \(total)")
            }
        }
    }

    func testSoftmaxIsStableForLargeAndMaskedLogits() {
        let x = Tensor([1000, 1001, 1002, -1000, -.infinity, 0, -.infinity, 3], shape: [2, 4])
        let y = x.softmax().scalars
        XCTAssertFalse(y.contains { $0.isNaN })
        let e = [Foundation.exp(-2.0), Foundation.exp(-1.0), 1.0]
        let s = e.reduce(0, +)
        assertClose(Array(y[0..<4]), e.map { Float($0 / s) } + [0], tol: 1e-6)
        let s2 = 1 + Foundation.exp(3.0)
        assertClose(Array(y[4..<8]), [0, Float(1 / s2), 0, Float(Foundation.exp(3.0) / s2)], tol: 1e-6)
        // Uniform row.
        assertClose(Tensor.full([1, 8], 7).softmax().scalars, [Float](repeating: 0.125, count: 8))
    }

    func testLogSoftmaxMatchesDouble() {
        var rng = RandomGenerator(seed: 4)
        for n in [1, 7, 16, 33, 300] {
            let x = Tensor.randn([3, 5, n], std: 5, using: &rng)
            let y = x.logSoftmax()
            XCTAssertEqual(y.shape, x.shape)
            for r in 0..<15 {
                let ref = doubleLogSoftmax(Array(x.scalars[(r * n)..<((r + 1) * n)]))
                for i in 0..<n {
                    XCTAssertEqual(Double(y.data[r * n + i]), ref[i], accuracy: 2e-6 * Swift.max(1, abs(ref[i])))
                }
            }
        }
        let big = Tensor([500, 0, -500], shape: [1, 3]).logSoftmax().scalars
        assertClose(big, [0, -500, -1000])
    }

    func testCrossEntropyMatchesDouble() {
        var rng = RandomGenerator(seed: 5)
        for (rows, v) in [(1, 2), (6, 7), (32, 50), (64, 1_000)] {
            let x = Tensor.randn([rows, v], std: 3, using: &rng)
            let targets = (0..<rows).map { _ in Int32(rng.nextInt(below: v)) }
            var ref = 0.0
            for r in 0..<rows {
                ref -= doubleLogSoftmax(Array(x.scalars[(r * v)..<((r + 1) * v)]))[Int(targets[r])]
            }
            ref /= Double(rows)
            let loss = x.crossEntropy(targets: targets)
            XCTAssertEqual(loss.shape, [])
            XCTAssertEqual(Double(loss.item), ref, accuracy: 2e-6 * Swift.max(1, ref), "rows \(rows) v \(v)")
        }
        // Hand-computed: uniform logits give log V.
        XCTAssertEqual(Tensor.zeros([3, 10]).crossEntropy(targets: [0, 5, 9]).item, Float(Foundation.log(10.0)),
                       accuracy: 1e-6)
        // Confident and right: ~0; confident and wrong: ~margin. No overflow.
        let l = Tensor([100, 0, 0, 100], shape: [2, 2]).crossEntropy(targets: [0, 0]).item
        XCTAssertEqual(l, 50, accuracy: 1e-4)
        // 3-D logits: one target per leading position.
        let x3 = Tensor.randn([2, 3, 4], using: &rng)
        let t3: [Int32] = [0, 1, 2, 3, 2, 1]
        XCTAssertEqual(x3.crossEntropy(targets: t3).item, x3.reshaped([6, 4]).crossEntropy(targets: t3).item)
    }

    // MARK: Broadcasting

    func testBroadcastShapeRules() {
        XCTAssertEqual(broadcastShape([2, 3, 4], [4]), [2, 3, 4])
        XCTAssertEqual(broadcastShape([4], [2, 3, 4]), [2, 3, 4])
        XCTAssertEqual(broadcastShape([2, 3, 4], [3, 1]), [2, 3, 4])
        XCTAssertEqual(broadcastShape([3, 1], [1, 4]), [3, 4])
        XCTAssertEqual(broadcastShape([2, 1, 4], [3, 1]), [2, 3, 4])
        XCTAssertEqual(broadcastShape([], [2, 3]), [2, 3])
        XCTAssertEqual(broadcastShape([1], []), [1])
        XCTAssertEqual(broadcastShape([5, 1], [1]), [5, 1])
        XCTAssertEqual(broadcastShape([0, 3], [1, 3]), [0, 3])
        XCTAssertNil(broadcastShape([2, 3], [3, 2]))
        XCTAssertNil(broadcastShape([2, 3, 4], [3]))
        XCTAssertNil(broadcastShape([2, 1], [8, 4, 3]))
        XCTAssertNil(broadcastShape([0], [2]))
    }

    func testBinaryBroadcastValues() {
        let a = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])
        let row = Tensor([10, 20, 30], shape: [3])
        let col = Tensor([100, 200], shape: [2, 1])
        let s = Tensor([2], shape: [])
        XCTAssertEqual((a + row).scalars, [11, 22, 33, 14, 25, 36])
        XCTAssertEqual((row + a).scalars, [11, 22, 33, 14, 25, 36])
        XCTAssertEqual((a - col).scalars, [-99, -98, -97, -196, -195, -194])
        XCTAssertEqual((col - a).scalars, [99, 98, 97, 196, 195, 194])
        XCTAssertEqual((a * s).scalars, [2, 4, 6, 8, 10, 12])
        XCTAssertEqual((a / s).scalars, [0.5, 1, 1.5, 2, 2.5, 3])
        XCTAssertEqual((s / a).shape, [2, 3])
        assertClose((s / a).scalars, [2, 1, 2.0 / 3, 0.5, 0.4, 2.0 / 6])
        let outer = Tensor([1, 2, 3], shape: [3, 1]) * Tensor([1, 10], shape: [1, 2])
        XCTAssertEqual(outer.shape, [3, 2])
        XCTAssertEqual(outer.scalars, [1, 10, 2, 20, 3, 30])
        // [2,1,2] with [3,1] -> [2,3,2].
        let p = Tensor([1, 2, 3, 4], shape: [2, 1, 2]) + Tensor([0, 10, 20], shape: [3, 1])
        XCTAssertEqual(p.shape, [2, 3, 2])
        XCTAssertEqual(p.scalars, [1, 2, 11, 12, 21, 22, 3, 4, 13, 14, 23, 24])
        // Long operands (vector bodies and tails).
        var rng = RandomGenerator(seed: 6)
        let x = Tensor.randn([3, 45], using: &rng), y = Tensor.randn([45], using: &rng)
        let z = (x * y).scalars
        for i in 0..<135 { XCTAssertEqual(z[i], x.data[i] * y.data[i % 45]) }
    }

    func testExpandAndSumToShape() {
        let c = Tensor([1, 2, 3], shape: [3, 1])
        let e = c.expand(to: [2, 3, 2])
        XCTAssertEqual(e.scalars, [1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3])
        XCTAssertEqual(Tensor([1, 2], shape: [2]).expand(to: [2, 2]).scalars, [1, 2, 1, 2])
        XCTAssertEqual(Tensor([5], shape: []).expand(to: [3]).scalars, [5, 5, 5])
        let x = Tensor((1...12).map(Float.init), shape: [2, 3, 2])
        XCTAssertEqual(x.sum(toShape: [3, 1]).scalars, [18, 26, 34])  // 1+2+7+8, 3+4+9+10, 5+6+11+12
        XCTAssertEqual(x.sum(toShape: [2]).scalars, [36, 42])
        XCTAssertEqual(x.sum(toShape: [2, 1, 2]).scalars, [9, 12, 27, 30])
        XCTAssertEqual(x.sum(toShape: []).scalars, [78])
        XCTAssertEqual(x.sum(toShape: [2, 3, 2]).scalars, x.scalars)
    }

    // MARK: Reductions

    func testReductions() {
        let x = Tensor([1, 5, 3, 4, 2, 6, 0, -1, 9, 8, 7, -2], shape: [2, 3, 2])
        XCTAssertEqual(x.sum().item, 42)
        XCTAssertEqual(x.sum().shape, [])
        XCTAssertEqual(x.mean().item, 3.5)
        XCTAssertEqual(x.sum(axis: 0).scalars, [1, 4, 12, 12, 9, 4])
        XCTAssertEqual(x.sum(axis: 1).shape, [2, 2])
        XCTAssertEqual(x.sum(axis: 1).scalars, [6, 15, 16, 5])
        XCTAssertEqual(x.sum(axis: -1, keepDims: true).shape, [2, 3, 1])
        XCTAssertEqual(x.sum(axis: -1, keepDims: true).scalars, [6, 7, 8, -1, 17, 5])
        assertClose(x.mean(axis: 1).scalars, [2, 5, 16.0 / 3, 5.0 / 3])
        XCTAssertEqual(x.max(axis: 0).scalars, [1, 5, 9, 8, 7, 6])
        XCTAssertEqual(x.max(axis: 1, keepDims: true).shape, [2, 1, 2])
        XCTAssertEqual(x.max(axis: 1).scalars, [3, 6, 9, 8])
        XCTAssertEqual(x.max(axis: -1).scalars, [5, 4, 6, 0, 9, 7])
        XCTAssertEqual(x.argmax(), [1, 1, 1, 0, 0, 0])
        XCTAssertEqual(Tensor([-3, -1, -2, -1], shape: [4]).argmax(), [1])  // first maximum
        // Long sum vs Double.
        var rng = RandomGenerator(seed: 7)
        let big = Tensor.randn([100_003], mean: 0.5, using: &rng)
        let ref = big.scalars.reduce(0.0) { $0 + Double($1) }
        XCTAssertEqual(Double(big.sum().item), ref, accuracy: 1e-6 * abs(ref) + 1e-3)
        XCTAssertEqual(Double(big.mean().item), ref / 100_003, accuracy: 1e-6)
        // Max over a long row (vector bodies and tails), and a negative row.
        let neg = Tensor.full([3, 40], -7)
        neg.data[40 + 33] = -2
        XCTAssertEqual(neg.max(axis: -1).scalars, [-7, -2, -7])
    }

    // MARK: Shape ops

    func testReshapeSharesStorage() {
        let x = Tensor((0..<12).map(Float.init), shape: [3, 4])
        let r = x.reshaped([2, -1])
        XCTAssertEqual(r.shape, [2, 6])
        XCTAssertTrue(r.storage === x.storage)
        XCTAssertEqual(r.scalars, x.scalars)
        x.data[5] = 42
        XCTAssertEqual(r.data[5], 42)
        r.data[0] = -1
        XCTAssertEqual(x.data[0], -1)
        XCTAssertEqual(x.reshaped([-1]).shape, [12])
        XCTAssertEqual(x.reshaped([2, 2, 3]).shape, [2, 2, 3])
        // Reshape of a reshape still shares, and detached/copy behave.
        XCTAssertTrue(r.reshaped([12]).storage === x.storage)
        XCTAssertTrue(x.detached().storage === x.storage)
        let c = x.copy()
        XCTAssertFalse(c.storage === x.storage)
        c.data[1] = 99
        XCTAssertEqual(x.data[1], 1)
    }

    func testPermuteTransposeValues() {
        let x = Tensor((0..<24).map(Float.init), shape: [2, 3, 4])
        let p = x.permuted([2, 0, 1])
        XCTAssertEqual(p.shape, [4, 2, 3])
        for i in 0..<2 { for j in 0..<3 { for k in 0..<4 {
            XCTAssertEqual(p.data[k * 6 + i * 3 + j], x.data[i * 12 + j * 4 + k])
        } } }
        let t = x.transposed()
        XCTAssertEqual(t.shape, [2, 4, 3])
        XCTAssertEqual(Array(t.scalars[0..<6]), [0, 4, 8, 1, 5, 9])
        XCTAssertEqual(x.transposed(0, 1).transposed(0, 1).scalars, x.scalars)
        XCTAssertEqual(Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3]).transposed().scalars, [1, 4, 2, 5, 3, 6])
    }

    func testSliceConcatStackValues() {
        let x = Tensor((0..<24).map(Float.init), shape: [2, 3, 4])
        XCTAssertEqual(x.slice(axis: 0, 1..<2).scalars, Array(x.scalars[12..<24]))
        XCTAssertEqual(x.slice(axis: 1, 1..<3).shape, [2, 2, 4])
        XCTAssertEqual(x.slice(axis: 1, 2..<3).scalars, [8, 9, 10, 11, 20, 21, 22, 23])
        XCTAssertEqual(x.slice(axis: -1, 1..<3).scalars,
                       [1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22])
        XCTAssertEqual(x.slice(axis: 2, 0..<0).shape, [2, 3, 0])

        let a = Tensor([1, 2, 3, 4], shape: [2, 2]), b = Tensor([5, 6], shape: [2, 1])
        XCTAssertEqual(Tensor.concat([a, b], axis: 1).scalars, [1, 2, 5, 3, 4, 6])
        XCTAssertEqual(Tensor.concat([a, b.reshaped([1, 2])], axis: 0).scalars, [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(Tensor.concat([b, a, b], axis: -1).shape, [2, 4])
        XCTAssertEqual(Tensor.concat([b, a, b], axis: -1).scalars, [5, 1, 2, 5, 6, 3, 4, 6])
        // Round trip: slices of a concat give back the parts.
        let cat = Tensor.concat([x, x * 2], axis: 1)
        XCTAssertEqual(cat.slice(axis: 1, 3..<6).scalars, (x * 2).scalars)

        let c = Tensor([7, 8, 9, 10], shape: [2, 2])
        XCTAssertEqual(Tensor.stack([a, c]).shape, [2, 2, 2])
        XCTAssertEqual(Tensor.stack([a, c]).scalars, [1, 2, 3, 4, 7, 8, 9, 10])
        XCTAssertEqual(Tensor.stack([a, c], axis: 1).scalars, [1, 2, 7, 8, 3, 4, 9, 10])
        XCTAssertEqual(Tensor.stack([a, c], axis: -1).shape, [2, 2, 2])
        XCTAssertEqual(Tensor.stack([a, c], axis: -1).scalars, [1, 7, 2, 8, 3, 9, 4, 10])
    }

    // MARK: Index ops and masking

    func testIndexSelectAndGather() {
        let table = Tensor((0..<12).map(Float.init), shape: [4, 3])
        let e = table.indexSelect([2, 0, 2, 3], shape: [2, 2])
        XCTAssertEqual(e.shape, [2, 2, 3])
        XCTAssertEqual(e.scalars, [6, 7, 8, 0, 1, 2, 6, 7, 8, 9, 10, 11])
        let g = table.gather(lastAxis: [2, 0, 1, 1])
        XCTAssertEqual(g.shape, [4])
        XCTAssertEqual(g.scalars, [2, 3, 7, 10])
        let ids = Tensor.ids([3, 1, 4], shape: [1, 3])
        XCTAssertEqual(ids.shape, [1, 3])
        XCTAssertEqual(ids.scalars, [3, 1, 4])
    }

    func testMaskedFill() {
        let x = Tensor((0..<8).map(Float.init), shape: [2, 2, 2])
        let y = x.maskedFill(Tensor([0, 1, 0, 0], shape: [2, 2]), -9)
        XCTAssertEqual(y.scalars, [0, -9, 2, 3, 4, -9, 6, 7])
        XCTAssertEqual(x.scalars, (0..<8).map(Float.init), "maskedFill must not modify its input")
        let s = Tensor.ones([3, 3]).maskedFill(Tensor.causalMask(3), 0)
        XCTAssertEqual(s.scalars, Tensor.tril(3).scalars)
    }

    func testTrilAndCausalMask() {
        XCTAssertEqual(Tensor.tril(3).scalars, [1, 0, 0, 1, 1, 0, 1, 1, 1])
        XCTAssertEqual(Tensor.causalMask(3).scalars, [0, 1, 1, 0, 0, 1, 0, 0, 0])
        XCTAssertEqual(Tensor.causalMask(1).scalars, [0])
        XCTAssertEqual(Tensor.tril(1).scalars, [1])
        for n in [2, 5, 17] {
            XCTAssertEqual(Tensor.tril(n).shape, [n, n])
            XCTAssertEqual((Tensor.tril(n) + Tensor.causalMask(n)).scalars, [Float](repeating: 1, count: n * n))
        }
    }

    // MARK: Matmul

    private func naiveMatmul(_ a: Tensor, _ b: Tensor, transposeOther: Bool) -> [Double] {
        let m = a.shape[a.rank - 2], k = a.shape[a.rank - 1]
        let n = transposeOther ? b.shape[b.rank - 2] : b.shape[b.rank - 1]
        let batch = a.count / (m * k)
        let bStride = b.rank == 2 ? 0 : k * n
        var out = [Double](repeating: 0, count: batch * m * n)
        for t in 0..<batch { for i in 0..<m { for j in 0..<n {
            var s = 0.0
            for p in 0..<k {
                let bv = transposeOther ? b.data[t * bStride + j * k + p] : b.data[t * bStride + p * n + j]
                s += Double(a.data[t * m * k + i * k + p]) * Double(bv)
            }
            out[t * m * n + i * n + j] = s
        } } }
        return out
    }

    func testMatmulMatchesNaive() {
        var rng = RandomGenerator(seed: 8)
        let cases: [([Int], [Int], Bool, [Int])] = [
            ([3, 4], [4, 5], false, [3, 5]),
            ([3, 4], [5, 4], true, [3, 5]),
            ([2, 20, 33], [2, 33, 19], false, [2, 20, 19]),
            ([2, 20, 33], [2, 19, 33], true, [2, 20, 19]),
            ([3, 7, 33], [33, 18], false, [3, 7, 18]),
            ([3, 7, 33], [18, 33], true, [3, 7, 18]),
            ([2, 2, 5, 6], [2, 2, 6, 3], false, [2, 2, 5, 3]),
            ([1, 1], [1, 1], false, [1, 1]),
        ]
        for (sa, sb, tr, so) in cases {
            let a = Tensor.randn(sa, using: &rng), b = Tensor.randn(sb, using: &rng)
            let c = a.matmul(b, transposeOther: tr)
            XCTAssertEqual(c.shape, so)
            let ref = naiveMatmul(a, b, transposeOther: tr)
            for (g, r) in zip(c.scalars, ref) {
                XCTAssertEqual(Double(g), r, accuracy: 1e-5 * Swift.max(1, abs(r)), "\(sa) @ \(sb) tr \(tr)")
            }
        }
        XCTAssertEqual(Tensor([1, 2, 3, 4], shape: [2, 2]).matmul(Tensor([5, 6, 7, 8], shape: [2, 2])).scalars,
                       [19, 22, 43, 50])
    }

    // MARK: Autograd bookkeeping

    func testWithNoGradRecordsNothing() {
        let x = Tensor([1, 2, 3], shape: [3], requiresGrad: true)
        XCTAssertTrue(Autograd.isEnabled)
        let y = withNoGrad { (x.exp() * 2 + x).softmax().sum() }
        XCTAssertFalse(y.requiresGrad)
        XCTAssertTrue(Autograd.isEnabled, "withNoGrad must restore recording")
        y.backward()
        XCTAssertNil(x.grad)
        // Nested and throwing bodies restore the previous state.
        withNoGrad {
            withNoGrad { XCTAssertFalse(Autograd.isEnabled) }
            XCTAssertFalse(Autograd.isEnabled)
            XCTAssertFalse(x.square().requiresGrad)
        }
        struct Boom: Error {}
        XCTAssertThrowsError(try withNoGrad { () throws -> Int in throw Boom() })
        XCTAssertTrue(Autograd.isEnabled)
        // Recording resumes afterwards; inputs without requiresGrad record nothing.
        XCTAssertTrue((x * 3).requiresGrad)
        XCTAssertFalse((Tensor.ones([3]) * 3).exp().requiresGrad)
    }

    func testGradientsAccumulateAcrossBackwardCallsAndZeroGrad() {
        let x = Tensor([1, -2, 3], shape: [3], requiresGrad: true)
        let w = Tensor([0.5, 0.5, 2], shape: [3], requiresGrad: true)
        (x * w).sum().backward()
        XCTAssertEqual(x.grad?.scalars, [0.5, 0.5, 2])
        XCTAssertEqual(w.grad?.scalars, [1, -2, 3])
        (x * w).sum().backward()
        XCTAssertEqual(x.grad?.scalars, [1, 1, 4])
        XCTAssertEqual(w.grad?.scalars, [2, -4, 6])
        x.zeroGrad()
        XCTAssertNil(x.grad)
        (x.square()).sum().backward()
        XCTAssertEqual(x.grad?.scalars, [2, -4, 6])
        XCTAssertEqual(w.grad?.scalars, [2, -4, 6], "unused leaf keeps its gradient")
        // Multi-use within one graph accumulates too: d/dx (x·x + 3x) = 2x + 3.
        x.zeroGrad()
        (x * x + x * 3).sum().backward()
        XCTAssertEqual(x.grad?.scalars, [5, -1, 9])
        // Intermediate gradients are released after backward.
        let h = x * 2
        h.sum().backward()
        XCTAssertNil(h.grad)
    }

    func testBackwardWithSeedAndScalarShapes() {
        let x = Tensor([1, 2, 3, 4], shape: [2, 2], requiresGrad: true)
        let y = x * 3
        y.backward(seed: Tensor([1, 0, -1, 2], shape: [2, 2]))
        XCTAssertEqual(x.grad?.scalars, [3, 0, -3, 6])
        x.zeroGrad()
        x.mean().backward()
        XCTAssertEqual(x.grad?.scalars, [0.25, 0.25, 0.25, 0.25])
    }

    // MARK: Cached attention

    /// Attention against a cache equals a plain fp64 softmax(q·Kᵀ/√hs)·V for head sizes that
    /// exercise each column path (64-wide blocks, 8-wide vectors, single columns), key counts
    /// around the four-key groups, several new queries, and both cache layouts (rows of C;
    /// each head's positions together).
    func testCachedAttentionMatchesReference() {
        var rng = RandomGenerator(seed: 31)
        for hs in [16, 24, 64, 100, 128] {
            for (start, n) in [(0, 1), (5, 1), (37, 3), (2, 6)] {
                let heads = 3, c = heads * hs, capacity = 48, total = start + n
                let q = (0..<(n * 2 * c)).map { _ in rng.nextNormal() }  // qStride 2C
                let kRows = (0..<(capacity * c)).map { _ in rng.nextNormal() }
                let vRows = (0..<(capacity * c)).map { _ in rng.nextNormal() }
                func key(_ h: Int, _ j: Int, _ d: Int) -> Float { kRows[j * c + h * hs + d] }
                func value(_ h: Int, _ j: Int, _ d: Int) -> Float { vRows[j * c + h * hs + d] }
                var want = [Double](repeating: 0, count: n * c)
                for i in 0..<n {
                    for h in 0..<heads {
                        let visible = start + i + 1
                        let s = (0..<visible).map { j in
                            (0..<hs).reduce(0.0) { $0 + Double(q[i * 2 * c + h * hs + $1]) * Double(key(h, j, $1)) } / Double(hs).squareRoot()
                        }
                        let m = s.max()!, e = s.map { Foundation.exp($0 - m) }, z = e.reduce(0, +)
                        for d in 0..<hs {
                            want[i * c + h * hs + d] = (0..<visible).reduce(0.0) { $0 + e[$1] / z * Double(value(h, $1, d)) }
                        }
                    }
                }
                // Head-major copies: head h's position j at (h·capacity + j)·hs.
                var kHeads = [Float](repeating: .nan, count: capacity * c), vHeads = kHeads
                for h in 0..<heads {
                    for j in 0..<total {
                        for d in 0..<hs {
                            kHeads[(h * capacity + j) * hs + d] = key(h, j, d)
                            vHeads[(h * capacity + j) * hs + d] = value(h, j, d)
                        }
                    }
                }
                for (layout, k, v, rowStride, headStride) in [("rows", kRows, vRows, c, hs), ("heads", kHeads, vHeads, hs, capacity * hs)] {
                    var got = [Float](repeating: .nan, count: n * c)
                    CachedAttention.forward(q: q, qStride: 2 * c, k: k, v: v, rowStride: rowStride, headStride: headStride,
                                            start: start, n: n, heads: heads, headSize: hs, out: &got)
                    for (g, w) in zip(got, want) {
                        XCTAssertEqual(Double(g), w, accuracy: 1e-5, "hs \(hs) start \(start) n \(n) \(layout)")
                    }
                }
            }
        }
    }

    // MARK: Random

    func testRandomGeneratorDeterminism() {
        var a = RandomGenerator(seed: 42), b = RandomGenerator(seed: 42), c = RandomGenerator(seed: 43)
        let sa = (0..<1_000).map { _ in a.next() }, sb = (0..<1_000).map { _ in b.next() }
        let sc = (0..<1_000).map { _ in c.next() }
        XCTAssertEqual(sa, sb)
        XCTAssertNotEqual(sa, sc)
        XCTAssertEqual(Set(sa).count, 1_000)
        XCTAssertNotEqual(RandomGenerator(seed: 0), RandomGenerator(seed: 1))
        // Tensors from equal seeds are equal.
        var r1 = RandomGenerator(seed: 9), r2 = RandomGenerator(seed: 9), r3 = RandomGenerator(seed: 10)
        XCTAssertEqual(Tensor.randn([50], using: &r1).scalars, Tensor.randn([50], using: &r2).scalars)
        XCTAssertNotEqual(Tensor.uniform([50], using: &r1).scalars, Tensor.uniform([50], using: &r3).scalars)
        // State survives a Codable round trip and continues the same stream.
        var d = RandomGenerator(seed: 7)
        _ = d.next()
        var restored = try! JSONDecoder().decode(RandomGenerator.self, from: JSONEncoder().encode(d))
        XCTAssertEqual((0..<10).map { _ in d.next() }, (0..<10).map { _ in restored.next() })
        // Ranges.
        var e = RandomGenerator(seed: 11)
        for _ in 0..<10_000 {
            let f = e.nextFloat(), g = e.nextDouble(), i = e.nextInt(below: 7)
            XCTAssertTrue(f >= 0 && f < 1 && g >= 0 && g < 1 && (0..<7).contains(i))
        }
    }

    /// `randn` fills chunks of normals on both threads from uniforms drawn in order: the
    /// values and the generator's state afterwards equal one `nextNormal()` at a time, across
    /// chunk boundaries, on 1 and 2 threads.
    func testRandnEqualsOneNormalAtATime() {
        let pool = ThreadPool.shared
        defer { ThreadPool.shared = pool }
        for threads in [1, 2] {
            GEMMBenchmark.usePool(threads: threads)
            for n in [1, 7, 65_536, 140_001] {
                var bulk = RandomGenerator(seed: 21), single = RandomGenerator(seed: 21)
                let got = Tensor.randn([n], mean: 0.5, std: 0.02, using: &bulk).scalars
                let want = (0..<n).map { _ in 0.5 + 0.02 * single.nextNormal() }
                XCTAssertEqual(got, want, "n \(n) threads \(threads)")
                XCTAssertEqual(bulk, single, "state after n \(n)")
            }
        }
    }

    func testRandnAndUniformStatistics() {
        var rng = RandomGenerator(seed: 12)
        let n = 200_000
        let x = Tensor.randn([n], mean: 3, std: 0.5, using: &rng).scalars.map(Double.init)
        let mean = x.reduce(0, +) / Double(n)
        let std = (x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n)).squareRoot()
        XCTAssertEqual(mean, 3, accuracy: 0.01)
        XCTAssertEqual(std, 0.5, accuracy: 0.01)
        XCTAssertFalse(x.contains { !$0.isFinite })
        // About 68% within one standard deviation.
        let within = Double(x.filter { abs($0 - 3) < 0.5 }.count) / Double(n)
        XCTAssertEqual(within, 0.6827, accuracy: 0.01)

        let u = Tensor.uniform([n], low: -2, high: 6, using: &rng).scalars
        XCTAssertTrue(u.allSatisfy { $0 >= -2 && $0 < 6 })
        XCTAssertEqual(u.reduce(0.0) { $0 + Double($1) } / Double(n), 2, accuracy: 0.03)
        XCTAssertTrue(Tensor.randn([4], using: &rng, requiresGrad: true).requiresGrad)
    }

    func testMultinomialFrequencies() {
        var rng = RandomGenerator(seed: 13)
        let weights: [Float] = [1, 0, 3, 6]
        var counts = [0, 0, 0, 0]
        let n = 50_000
        for _ in 0..<n { counts[Sampling.multinomial(weights, using: &rng)] += 1 }
        XCTAssertEqual(counts[1], 0, "zero weight must never be drawn")
        for (i, w) in [0.1, 0.0, 0.3, 0.6].enumerated() {
            XCTAssertEqual(Double(counts[i]) / Double(n), w, accuracy: 0.01, "index \(i)")
        }
        // Unnormalised weights and a single positive weight.
        XCTAssertEqual(Sampling.multinomial([0, 0, 5], using: &rng), 2)
    }

    /// Greedy's token: the first index of the largest value, as a scalar scan finds it, at
    /// every position relative to the 16-wide blocks (ties, ±0, infinities, a row of NaN).
    func testArgmaxIsTheFirstLargest() {
        var rng = RandomGenerator(seed: 29)
        for n in [1, 7, 15, 16, 17, 33, 50_257] {
            for _ in 0..<20 {
                var row = (0..<n).map { _ in Float(rng.nextInt(below: 9)) - 4 }  // many ties
                if n > 3 && rng.nextInt(below: 2) == 0 { row[rng.nextInt(below: n)] = 4 }
                let first = row.indices.first { row[$0] == row.max()! }!
                XCTAssertEqual(Sampling.argmax(row, n), first, "n \(n)")
                var r = RandomGenerator(seed: 1)
                XCTAssertEqual(Sampling.pick(row, rule: SamplingRule(temperature: 0), rng: &r), first)
            }
        }
        XCTAssertEqual(Sampling.argmax([-0.0, 0, 1, .infinity, 3, .infinity], 6), 3)
        XCTAssertEqual(Sampling.argmax([0, -0.0], 2), 0)
        XCTAssertEqual(Sampling.argmax([-.infinity, -.infinity], 2), 0)
        XCTAssertEqual(Sampling.argmax([.nan, .nan], 2), 0)
        XCTAssertEqual(Sampling.argmax(Array(repeating: 1, count: 40) + [2] + Array(repeating: 2, count: 9), 50), 40)
    }

    func testTopK() {
        let row: [Float] = [0.1, 0.5, -1, 0.5, 2, 0.3]
        let top = Sampling.topK(row, 3)
        XCTAssertEqual(top.map(\.index), [4, 1, 3])
        XCTAssertEqual(top.map(\.value), [2, 0.5, 0.5])
        XCTAssertEqual(Sampling.topK(row, 1).map(\.index), [4])
        XCTAssertEqual(Sampling.topK(row, 10).map(\.index), [4, 1, 3, 5, 0, 2])
        // The heap equals a full sort's prefix, ties included (values on a coarse grid).
        var rng = RandomGenerator(seed: 17)
        for n in [1, 5, 100, 3_000] {
            let r = (0..<n).map { _ in Float(rng.nextInt(below: 40)) / 4 }
            let sorted = r.indices.sorted { r[$0] > r[$1] || (r[$0] == r[$1] && $0 < $1) }
            for k in [1, 2, 7, 64, n, n + 3] {
                XCTAssertEqual(Sampling.topK(r, k).map(\.index), Array(sorted.prefix(k)), "n \(n) k \(k)")
            }
        }
    }

    /// Top-p keeps the smallest most-likely set whose share reaches p (ties: lower index
    /// first), checked against sorting the whole row: rows of many ties, of continuous values
    /// (a flat GPT-2-sized row among them), with zeros, and with most values in one band of
    /// bit patterns (the part that is sorted).
    func testNucleus() {
        XCTAssertEqual(Sampling.nucleus([0.1, 0.6, 0.3], 0.5), [0, 0.6, 0])
        XCTAssertEqual(Sampling.nucleus([0.1, 0.6, 0.3], 0.7), [0, 0.6, 0.3])
        XCTAssertEqual(Sampling.nucleus([0.25, 0.25, 0.25, 0.25], 0.5), [0.25, 0.25, 0, 0])
        XCTAssertEqual(Sampling.nucleus([0, 0.5, 0, 0.5], 1), [0, 0.5, 0, 0.5])
        XCTAssertEqual(Sampling.nucleus([-0.0, 0.2, 0.8], 0.9), [0, 0.2, 0.8])  // −0 is the smallest
        var rng = RandomGenerator(seed: 19)
        let rows: [(String, Int, () -> Float)] = [
            ("ties", 3, { Float(rng.nextInt(below: 50)) + 1 }), ("ties", 70, { Float(rng.nextInt(below: 50)) + 1 }),
            ("ties", 5_000, { Float(rng.nextInt(below: 50)) + 1 }),
            ("flat", 50_257, { Float(Foundation.exp(Double(rng.nextNormal()) * 0.1)) }),
            ("peaked", 50_257, { Float(Foundation.exp(Double(rng.nextNormal()) * 4)) }),
            ("zeros", 300, { rng.nextInt(below: 3) == 0 ? 0 : rng.nextFloat() }),
            ("one band", 2_000, { 1 + Float(rng.nextInt(below: 1 << 16)) * .ulpOfOne }),
        ]
        for (kind, n, draw) in rows {
            for p: Float in [0.05, 0.5, 0.9, 0.999] {
                let probs = (0..<n).map { _ in draw() }
                let total = probs.reduce(0.0) { $0 + Double($1) }
                let order = probs.indices.sorted { probs[$0] > probs[$1] || (probs[$0] == probs[$1] && $0 < $1) }
                var want = [Float](repeating: 0, count: n), acc = 0.0
                for i in order {
                    want[i] = probs[i]; acc += Double(probs[i])
                    if acc >= Double(p) * total { break }
                }
                let got = Sampling.nucleus(probs, p)
                XCTAssertTrue(got == want, "\(kind) n \(n) p \(p): kept \(got.filter { $0 > 0 }.count), want \(want.filter { $0 > 0 }.count)")
            }
        }
    }

    // MARK: Creation

    func testCreation() {
        XCTAssertEqual(Tensor.arange(5).scalars, [0, 1, 2, 3, 4])
        XCTAssertEqual(Tensor.arange(1, 2, step: 0.25).scalars, [1, 1.25, 1.5, 1.75])
        XCTAssertEqual(Tensor.arange(5, 0, step: -2).scalars, [5, 3, 1])
        XCTAssertEqual(Tensor.arange(3, 3).count, 0)
        XCTAssertEqual(Tensor.arange(0, 1, step: 0.1).count, 10)
        XCTAssertEqual(Tensor.arange(2, 7).scalars, [2, 3, 4, 5, 6])
        XCTAssertEqual(Tensor.zeros([2, 3]).scalars, [Float](repeating: 0, count: 6))
        XCTAssertEqual(Tensor.ones([4]).scalars, [1, 1, 1, 1])
        XCTAssertEqual(Tensor.full([2, 2], 3.5).scalars, [3.5, 3.5, 3.5, 3.5])
        XCTAssertTrue(Tensor.zeros([2], requiresGrad: true).requiresGrad)
        let t = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])
        XCTAssertEqual(t.rank, 2)
        XCTAssertEqual(t.size(-1), 3)
        XCTAssertEqual(Tensor([7], shape: []).item, 7)
    }

    func testDropoutForward() {
        var rng = RandomGenerator(seed: 14)
        let x = Tensor.ones([10_000])
        let y = x.dropout(0.25, using: &rng).scalars
        let kept = y.filter { $0 != 0 }
        XCTAssertTrue(kept.allSatisfy { abs($0 - 1 / 0.75) < 1e-6 })
        XCTAssertEqual(Double(kept.count) / 10_000, 0.75, accuracy: 0.02)
        // Expectation preserved.
        XCTAssertEqual(y.reduce(0.0) { $0 + Double($1) } / 10_000, 1, accuracy: 0.03)
    }
}
