import EmeraldCore
import XCTest

// MARK: - Gradient checker

/// Central-finite-difference gradient checking for any differentiable op.
///
/// For `out = f(inputs)` the checked loss is `L = Σ out ⊙ R` with a fixed random
/// `R`, so every output element contributes with a distinct weight. The analytic
/// gradient comes from `out.backward(seed: R)`; the numerical one perturbs each
/// input element by ±eps and evaluates L in Double from the float outputs.
enum GradCheck {
    struct Report {
        var maxAbsError: Float = 0
        var maxAbsAnalytic: Float = 0
        var worst = ""
    }

    /// Loss Σ out ⊙ R in Double (reduces float summation noise in the difference).
    static func weightedSum(_ out: Tensor, _ r: Tensor) -> Double {
        var acc = 0.0
        for i in 0..<out.count { acc += Double(out.data[i]) * Double(r.data[i]) }
        return acc
    }

    /// Compares analytic and numerical gradients of every non-constant input
    /// (those are made leaves that require grad; inputs listed in `constant` are
    /// passed to `f` but do not require gradients). Asserts nothing.
    static func measure(_ inputs: [Tensor], constant: Set<Int> = [], eps: Float = 1e-2, seed: UInt64 = 1234,
                        _ f: ([Tensor]) -> Tensor) -> (report: Report, outputRequiresGrad: Bool, shapesMatch: Bool) {
        for (i, x) in inputs.enumerated() {
            x.requiresGrad = !constant.contains(i)
            x.zeroGrad()
        }
        let out = f(inputs)
        let outputRequiresGrad = out.requiresGrad
        var rng = RandomGenerator(seed: seed)
        let r = Tensor.randn(out.shape, using: &rng)
        out.backward(seed: r)

        var report = Report()
        var shapesMatch = true
        for (idx, x) in inputs.enumerated() where !constant.contains(idx) {
            let g = x.grad
            if let g, g.shape != x.shape { shapesMatch = false }
            for i in 0..<x.count {
                let orig = x.data[i]
                x.data[i] = orig + eps
                let plus = withNoGrad { weightedSum(f(inputs), r) }
                x.data[i] = orig - eps
                let minus = withNoGrad { weightedSum(f(inputs), r) }
                x.data[i] = orig
                let n = Float((plus - minus) / (2 * Double(eps)))
                let a = g?.data[i] ?? 0   // no gradient at all counts as zero
                report.maxAbsAnalytic = Swift.max(report.maxAbsAnalytic, a.isNaN ? .infinity : abs(a))
                let err = a.isNaN ? Float.infinity : abs(a - n)
                if err > report.maxAbsError || (err.isNaN && !report.maxAbsError.isNaN) {
                    report.maxAbsError = err
                    report.worst = "input \(idx) element \(i): analytic \(a), numerical \(n)"
                }
            }
        }
        return (report, outputRequiresGrad, shapesMatch)
    }

    /// `measure` plus assertions: max|num − ana| ≤ tolerance · max(1, max|ana|).
    @discardableResult
    static func check(_ name: String, _ inputs: [Tensor], constant: Set<Int> = [],
                      eps: Float = 1e-2, tolerance: Float = 1e-2, seed: UInt64 = 1234,
                      file: StaticString = #filePath, line: UInt = #line,
                      _ f: ([Tensor]) -> Tensor) -> Report {
        let (report, requiresGrad, shapesMatch) = measure(inputs, constant: constant, eps: eps, seed: seed, f)
        XCTAssertTrue(requiresGrad, "\(name): output does not require grad", file: file, line: line)
        XCTAssertTrue(shapesMatch, "\(name): a gradient has the wrong shape", file: file, line: line)
        let bound = tolerance * Swift.max(1, report.maxAbsAnalytic)
        XCTAssertLessThanOrEqual(report.maxAbsError, bound,
                                 "\(name): gradient mismatch, worst at \(report.worst)", file: file, line: line)
        // Guard against a vacuous check (everything zero on both sides).
        XCTAssertGreaterThan(report.maxAbsAnalytic, 0, "\(name): all gradients are zero", file: file, line: line)
        return report
    }
}

/// Deterministic test inputs.
struct Inputs {
    var rng: RandomGenerator
    init(_ seed: UInt64) { rng = RandomGenerator(seed: seed) }

    mutating func normal(_ shape: [Int], std: Float = 1) -> Tensor {
        Tensor.randn(shape, std: std, using: &rng)
    }

    mutating func uniform(_ shape: [Int], _ low: Float, _ high: Float) -> Tensor {
        Tensor.uniform(shape, low: low, high: high, using: &rng)
    }

    /// Values bounded away from zero (|x| ∈ [low, high]) with random signs,
    /// for ops with a kink or pole at 0.
    mutating func awayFromZero(_ shape: [Int], _ low: Float = 0.1, _ high: Float = 2) -> Tensor {
        let t = Tensor.uniform(shape, low: low, high: high, using: &rng)
        for i in 0..<t.count where rng.nextFloat() < 0.5 { t.data[i] = -t.data[i] }
        return t
    }

    /// Distinct values spaced by `gap` in random order (no ties for max).
    mutating func distinct(_ shape: [Int], gap: Float = 0.1) -> Tensor {
        let n = shape.reduce(1, *)
        var values = (0..<n).map { Float($0) * gap - Float(n) * gap / 2 }
        for i in stride(from: n - 1, to: 0, by: -1) { values.swapAt(i, rng.nextInt(below: i + 1)) }
        return Tensor(values, shape: shape)
    }
}

// MARK: - Tests

final class GradientCheckTests: XCTestCase {
    // MARK: The checker itself

    func testCheckerDetectsWrongGradients() {
        var g = Inputs(100)
        // Gradient flows through only one of the two uses: analytic = x, numerical = 2x.
        let broken = GradCheck.measure([g.normal([3, 4])]) { $0[0].detached() * $0[0] }.report
        XCTAssertGreaterThan(broken.maxAbsError, 0.1 * Swift.max(1, broken.maxAbsAnalytic))
        // No gradient at all while the function clearly depends on the input.
        let none = GradCheck.measure([g.normal([3, 4])]) { xs in
            withNoGrad { xs[0].exp() } + xs[0] * 0
        }.report
        XCTAssertGreaterThan(none.maxAbsError, 0.1)
        // The correct version of the first case passes.
        let ok = GradCheck.measure([g.normal([3, 4])]) { $0[0] * $0[0] }.report
        XCTAssertLessThan(ok.maxAbsError, 1e-2 * Swift.max(1, ok.maxAbsAnalytic))
    }

    // MARK: Unary

    func testExp() {
        var g = Inputs(1)
        GradCheck.check("exp", [g.normal([3, 7])]) { $0[0].exp() }
    }

    func testLog() {
        var g = Inputs(2)
        GradCheck.check("log", [g.uniform([3, 7], 0.5, 3)], eps: 1e-3) { $0[0].log() }
    }

    func testSqrt() {
        var g = Inputs(3)
        GradCheck.check("sqrt", [g.uniform([3, 7], 0.5, 4)], eps: 1e-3) { $0[0].sqrt() }
    }

    func testSquare() {
        var g = Inputs(4)
        GradCheck.check("square", [g.normal([3, 7])]) { $0[0].square() }
    }

    func testTanh() {
        var g = Inputs(5)
        GradCheck.check("tanh", [g.normal([3, 7], std: 1.5)]) { $0[0].tanh() }
    }

    func testSigmoid() {
        var g = Inputs(6)
        GradCheck.check("sigmoid", [g.normal([3, 7], std: 2)]) { $0[0].sigmoid() }
    }

    func testRelu() {
        var g = Inputs(7)
        GradCheck.check("relu", [g.awayFromZero([3, 7])]) { $0[0].relu() }
    }

    func testGelu() {
        var g = Inputs(8)
        // Wide range, including the negative tail and 17+ elements (vector body and tail).
        let x = g.uniform([5, 9], -6, 6)
        GradCheck.check("gelu", [x]) { $0[0].gelu() }
    }

    func testSilu() {
        var g = Inputs(9)
        GradCheck.check("silu", [g.uniform([5, 9], -6, 6)]) { $0[0].silu() }
    }

    func testScalarArithmetic() {
        var g = Inputs(10)
        GradCheck.check("x * s", [g.normal([4, 5])]) { $0[0] * 2.5 }
        GradCheck.check("s * x", [g.normal([4, 5])]) { -1.5 * $0[0] }
        GradCheck.check("x + s", [g.normal([4, 5])]) { $0[0] + 3 }
        GradCheck.check("x - s", [g.normal([4, 5])]) { $0[0] - 3 }
        GradCheck.check("x / s", [g.normal([4, 5])]) { $0[0] / 4 }
        GradCheck.check("-x", [g.normal([4, 5])]) { -$0[0] }
    }

    // MARK: Binary with broadcasting

    static let broadcastPairs: [([Int], [Int])] = [
        ([2, 3, 4], [2, 3, 4]),
        ([2, 3, 4], [4]), ([4], [2, 3, 4]),
        ([2, 3, 4], [3, 1]), ([3, 1], [2, 3, 4]),
        ([2, 3, 4], [1]), ([1], [2, 3, 4]),
        ([2, 3, 4], []), ([], [2, 3, 4]),
        ([2, 1, 4], [3, 1]), ([3, 1], [1, 4]),
        ([2, 3, 4], [2, 1, 4]), ([1, 3, 1], [2, 1, 4]),
    ]

    func checkBinary(_ name: String, positiveRight: Bool = false, _ op: @escaping (Tensor, Tensor) -> Tensor) {
        var g = Inputs(11)
        for (sa, sb) in Self.broadcastPairs {
            let a = g.normal(sa)
            let b = positiveRight ? g.uniform(sb, 0.5, 2) : g.normal(sb)
            GradCheck.check("\(name) \(sa) \(sb)", [a, b], eps: positiveRight ? 1e-3 : 1e-2) { op($0[0], $0[1]) }
        }
    }

    func testAdd() { checkBinary("+") { $0 + $1 } }
    func testSub() { checkBinary("-") { $0 - $1 } }
    func testMul() { checkBinary("*") { $0 * $1 } }
    func testDiv() { checkBinary("/", positiveRight: true) { $0 / $1 } }

    func testBinarySameTensorBothSides() {
        var g = Inputs(12)
        GradCheck.check("x * x", [g.normal([3, 5])]) { $0[0] * $0[0] }
        GradCheck.check("x + x", [g.normal([3, 5])]) { $0[0] + $0[0] }
        GradCheck.check("x - x*2", [g.normal([3, 5])]) { $0[0] - $0[0] * 2 }
        GradCheck.check("x / x.exp", [g.normal([3, 5])]) { $0[0] / $0[0].exp() }
    }

    func testExpandAndSumToShape() {
        var g = Inputs(13)
        GradCheck.check("expand [3,1]->[2,3,4]", [g.normal([3, 1])]) { $0[0].expand(to: [2, 3, 4]) }
        GradCheck.check("expand [4]->[2,3,4]", [g.normal([4])]) { $0[0].expand(to: [2, 3, 4]) }
        GradCheck.check("expand [1,3,1]->[2,3,4]", [g.normal([1, 3, 1])]) { $0[0].expand(to: [2, 3, 4]) }
        GradCheck.check("sum [2,3,4]->[3,1]", [g.normal([2, 3, 4])]) { $0[0].sum(toShape: [3, 1]) }
        GradCheck.check("sum [2,3,4]->[4]", [g.normal([2, 3, 4])]) { $0[0].sum(toShape: [4]) }
        GradCheck.check("sum [2,3,4]->[2,1,4]", [g.normal([2, 3, 4])]) { $0[0].sum(toShape: [2, 1, 4]) }
        GradCheck.check("sum [2,3,4]->[]", [g.normal([2, 3, 4])]) { $0[0].sum(toShape: []) }
    }

    // MARK: Reductions

    func testSumAndMeanAll() {
        var g = Inputs(14)
        GradCheck.check("sum()", [g.normal([3, 4, 5])]) { $0[0].sum() }
        GradCheck.check("mean()", [g.normal([3, 4, 5])]) { $0[0].mean() * 10 }
    }

    func testSumAndMeanAxis() {
        var g = Inputs(15)
        for axis in [0, 1, 2, -1, -2] {
            for keep in [false, true] {
                GradCheck.check("sum(axis: \(axis), keepDims: \(keep))", [g.normal([2, 3, 4])]) {
                    $0[0].sum(axis: axis, keepDims: keep)
                }
                GradCheck.check("mean(axis: \(axis), keepDims: \(keep))", [g.normal([2, 3, 4])]) {
                    $0[0].mean(axis: axis, keepDims: keep)
                }
            }
        }
    }

    func testMaxAxis() {
        var g = Inputs(16)
        for axis in [0, 1, 2, -1] {
            for keep in [false, true] {
                // Distinct values 0.1 apart, eps 1e-2: the argmax never changes.
                GradCheck.check("max(axis: \(axis), keepDims: \(keep))", [g.distinct([2, 3, 4])]) {
                    $0[0].max(axis: axis, keepDims: keep)
                }
            }
        }
    }

    // MARK: Shape ops

    func testReshape() {
        var g = Inputs(17)
        GradCheck.check("reshaped", [g.normal([2, 3, 4])]) { $0[0].reshaped([4, -1]).exp() }
        GradCheck.check("reshaped to 1-D", [g.normal([2, 3, 4])]) { $0[0].reshaped([24]) * $0[0].reshaped([-1]) }
    }

    func testPermuteAndTranspose() {
        var g = Inputs(18)
        for perm in [[0, 2, 1], [1, 0, 2], [2, 0, 1], [1, 2, 0], [2, 1, 0]] {
            GradCheck.check("permuted \(perm)", [g.normal([2, 3, 4])]) { $0[0].permuted(perm) }
        }
        GradCheck.check("permuted 4-D", [g.normal([2, 3, 2, 4])]) { $0[0].permuted([0, 2, 1, 3]) }
        GradCheck.check("transposed()", [g.normal([2, 3, 4])]) { $0[0].transposed() }
        GradCheck.check("transposed(0, 2)", [g.normal([2, 3, 4])]) { $0[0].transposed(0, 2) }
        GradCheck.check("transposed(1, 2) 4-D", [g.normal([2, 2, 3, 4])]) { $0[0].transposed(1, 2) }
    }

    func testSlice() {
        var g = Inputs(19)
        GradCheck.check("slice axis 0", [g.normal([4, 3, 5])]) { $0[0].slice(axis: 0, 1..<3) }
        GradCheck.check("slice axis 1", [g.normal([4, 3, 5])]) { $0[0].slice(axis: 1, 1..<3) }
        GradCheck.check("slice axis -1", [g.normal([4, 3, 5])]) { $0[0].slice(axis: -1, 2..<5) }
        // Overlapping slices of the same tensor accumulate.
        GradCheck.check("two slices", [g.normal([4, 3, 5])]) {
            $0[0].slice(axis: 2, 0..<3) * $0[0].slice(axis: 2, 2..<5)
        }
    }

    func testConcat() {
        var g = Inputs(20)
        GradCheck.check("concat axis 0", [g.normal([1, 3, 4]), g.normal([2, 3, 4])]) {
            Tensor.concat($0, axis: 0)
        }
        GradCheck.check("concat axis 1", [g.normal([2, 1, 4]), g.normal([2, 3, 4]), g.normal([2, 2, 4])]) {
            Tensor.concat($0, axis: 1)
        }
        GradCheck.check("concat axis -1", [g.normal([2, 3, 2]), g.normal([2, 3, 5])]) {
            Tensor.concat($0, axis: -1)
        }
        GradCheck.check("concat same tensor twice", [g.normal([2, 3])]) {
            Tensor.concat([$0[0], $0[0].exp(), $0[0]], axis: 1)
        }
    }

    func testStack() {
        var g = Inputs(21)
        for axis in [0, 1, 2, -1] {
            GradCheck.check("stack axis \(axis)", [g.normal([2, 3]), g.normal([2, 3]), g.normal([2, 3])]) {
                Tensor.stack($0, axis: axis)
            }
        }
    }

    // MARK: Index ops

    func testIndexSelectRepeatedIds() {
        var g = Inputs(22)
        let ids: [Int32] = [3, 1, 3, 0, 3, 1]
        let report = GradCheck.check("indexSelect", [g.normal([5, 4])]) {
            $0[0].indexSelect(ids, shape: [2, 3])
        }
        XCTAssertGreaterThan(report.maxAbsAnalytic, 0)
        // Row 2 and 4 are never selected: exactly zero gradient; row 3 sums three seeds.
        let table = g.normal([5, 4])
        table.requiresGrad = true
        let out = table.indexSelect(ids, shape: [2, 3])
        XCTAssertEqual(out.shape, [2, 3, 4])
        out.backward(seed: .ones(out.shape))
        let grad = table.grad!.scalars
        XCTAssertEqual(Array(grad[0..<4]), [1, 1, 1, 1])
        XCTAssertEqual(Array(grad[4..<8]), [2, 2, 2, 2])
        XCTAssertEqual(Array(grad[8..<12]), [0, 0, 0, 0])
        XCTAssertEqual(Array(grad[12..<16]), [3, 3, 3, 3])
        XCTAssertEqual(Array(grad[16..<20]), [0, 0, 0, 0])
    }

    func testGather() {
        var g = Inputs(23)
        let index: [Int32] = [0, 4, 2, 2, 1, 3]
        GradCheck.check("gather 3-D", [g.normal([2, 3, 5])]) { $0[0].gather(lastAxis: index) }
        GradCheck.check("gather 2-D", [g.normal([6, 5])]) { $0[0].gather(lastAxis: index) }
    }

    // MARK: Matmul

    func testMatmul2D() {
        var g = Inputs(24)
        GradCheck.check("matmul 2-D", [g.normal([3, 4]), g.normal([4, 5])]) { $0[0].matmul($0[1]) }
        GradCheck.check("matmul 2-D transposeOther", [g.normal([3, 4]), g.normal([5, 4])]) {
            $0[0].matmul($0[1], transposeOther: true)
        }
    }

    func testMatmulBatched() {
        var g = Inputs(25)
        GradCheck.check("matmul batched", [g.normal([2, 3, 4]), g.normal([2, 4, 5])]) { $0[0].matmul($0[1]) }
        GradCheck.check("matmul batched transposeOther", [g.normal([2, 3, 4]), g.normal([2, 5, 4])]) {
            $0[0].matmul($0[1], transposeOther: true)
        }
        GradCheck.check("matmul 4-D", [g.normal([2, 2, 3, 4]), g.normal([2, 2, 4, 2])]) { $0[0].matmul($0[1]) }
        GradCheck.check("matmul 4-D transposeOther", [g.normal([2, 2, 3, 4]), g.normal([2, 2, 5, 4])]) {
            $0[0].matmul($0[1], transposeOther: true)
        }
    }

    func testMatmulShared() {
        var g = Inputs(26)
        GradCheck.check("matmul shared", [g.normal([2, 3, 4]), g.normal([4, 5])]) { $0[0].matmul($0[1]) }
        GradCheck.check("matmul shared transposeOther", [g.normal([2, 3, 4]), g.normal([5, 4])]) {
            $0[0].matmul($0[1], transposeOther: true)
        }
        GradCheck.check("matmul shared 4-D", [g.normal([2, 2, 3, 4]), g.normal([4, 3])]) { $0[0].matmul($0[1]) }
    }

    func testMatmulSameOperand() {
        var g = Inputs(27)
        GradCheck.check("x @ x", [g.normal([4, 4])]) { $0[0].matmul($0[0]) }
        GradCheck.check("x @ xᵀ", [g.normal([3, 4])]) { $0[0].matmul($0[0], transposeOther: true) }
        GradCheck.check("batched x @ xᵀ", [g.normal([2, 3, 4])]) { $0[0].matmul($0[0], transposeOther: true) }
    }

    func testMatmulOnlyOneSideRequiresGrad() {
        var g = Inputs(28)
        GradCheck.check("matmul constant right", [g.normal([2, 3, 4]), g.normal([4, 5])], constant: [1]) {
            $0[0].matmul($0[1])
        }
        GradCheck.check("matmul constant left", [g.normal([2, 3, 4]), g.normal([2, 5, 4])], constant: [0]) {
            $0[0].matmul($0[1], transposeOther: true)
        }
    }

    // MARK: Softmax family

    func testSoftmax() {
        var g = Inputs(29)
        for n in [5, 16, 37] {
            GradCheck.check("softmax n=\(n)", [g.normal([3, n], std: 2)]) { $0[0].softmax() }
        }
        GradCheck.check("softmax 3-D", [g.normal([2, 3, 4], std: 2)]) { $0[0].softmax() }
    }

    func testLogSoftmax() {
        var g = Inputs(30)
        for n in [5, 16, 37] {
            GradCheck.check("logSoftmax n=\(n)", [g.normal([3, n], std: 2)]) { $0[0].logSoftmax() }
        }
        GradCheck.check("logSoftmax 3-D", [g.normal([2, 3, 4], std: 2)]) { $0[0].logSoftmax() }
    }

    func testCrossEntropy() {
        var g = Inputs(31)
        GradCheck.check("crossEntropy [4,7]", [g.normal([4, 7], std: 2)]) { $0[0].crossEntropy(targets: [0, 6, 3, 3]) }
        GradCheck.check("crossEntropy [3,40]", [g.normal([3, 40], std: 2)]) {
            $0[0].crossEntropy(targets: [39, 0, 17])
        }
        // 3-D logits: rows are all leading positions.
        GradCheck.check("crossEntropy [2,2,5]", [g.normal([2, 2, 5])]) {
            $0[0].crossEntropy(targets: [1, 4, 0, 2])
        }
    }

    func testCrossEntropyMatchesLogSoftmaxGather() {
        // Fused loss gradient equals the unfused composition's gradient.
        var g = Inputs(32)
        let targets: [Int32] = [2, 0, 5, 1]
        let x = g.normal([4, 6], std: 2)
        x.requiresGrad = true
        x.crossEntropy(targets: targets).backward()
        let fused = x.grad!.scalars
        x.zeroGrad()
        (-(x.logSoftmax().gather(lastAxis: targets).mean())).backward()
        let unfused = x.grad!.scalars
        for (a, b) in zip(fused, unfused) { XCTAssertEqual(a, b, accuracy: 1e-6) }
    }

    // MARK: Masking and dropout

    func testMaskedFillCausal() {
        var g = Inputs(33)
        let mask = Tensor.causalMask(4)
        GradCheck.check("maskedFill", [g.normal([2, 2, 4, 4])]) { $0[0].maskedFill(mask, -5) }
        // Attention pattern: masked scores through softmax (masked entries get exactly zero gradient).
        let scores = g.normal([2, 4, 4])
        GradCheck.check("maskedFill + softmax", [scores]) { $0[0].maskedFill(mask, -1e9).softmax() }
        let grad = scores.grad!
        for b in 0..<2 { for i in 0..<4 { for j in (i + 1)..<4 {
            XCTAssertEqual(grad.data[b * 16 + i * 4 + j], 0)
        } } }
    }

    func testDropout() {
        var g = Inputs(34)
        let p: Float = 0.3
        // Same seed inside f: the mask is identical on every evaluation.
        GradCheck.check("dropout", [g.normal([4, 25])]) { xs in
            var rng = RandomGenerator(seed: 99)
            return xs[0].dropout(p, using: &rng)
        }

        let x = g.awayFromZero([8, 50])
        x.requiresGrad = true
        var rng1 = RandomGenerator(seed: 5), rng2 = RandomGenerator(seed: 5), rng3 = RandomGenerator(seed: 6)
        let y1 = x.dropout(p, using: &rng1)
        let y2 = withNoGrad { x.dropout(p, using: &rng2) }
        let y3 = withNoGrad { x.dropout(p, using: &rng3) }
        XCTAssertEqual(y1.scalars, y2.scalars, "same seed must give the same mask")
        XCTAssertNotEqual(y1.scalars, y3.scalars, "different seeds should give different masks")
        XCTAssertEqual(rng1, rng2)

        let seed = g.normal(y1.shape)
        y1.backward(seed: seed)
        let scale = 1 / (1 - p)
        var dropped = 0
        for i in 0..<x.count {
            let kept = y1.data[i] != 0
            if !kept { dropped += 1 }
            // Forward: kept elements are x·scale.
            XCTAssertEqual(y1.data[i], kept ? x.data[i] * scale : 0, accuracy: 1e-6)
            // Backward: grad = mask · scale · seed.
            XCTAssertEqual(x.grad!.data[i], kept ? seed.data[i] * scale : 0, accuracy: 1e-6)
        }
        XCTAssertEqual(Double(dropped) / Double(x.count), Double(p), accuracy: 0.06)

        // p = 0 is the identity and keeps the gradient path.
        var rng4 = RandomGenerator(seed: 1)
        let id = x.dropout(0, using: &rng4)
        XCTAssertEqual(id.scalars, x.scalars)
    }

    // MARK: Composites

    func testTwoLayerMLPWithCrossEntropy() {
        var g = Inputs(35)
        let x = g.normal([6, 5])
        let w1 = g.normal([5, 8], std: 0.5), b1 = g.normal([8], std: 0.1)
        let w2 = g.normal([8, 4], std: 0.5), b2 = g.normal([4], std: 0.1)
        let targets: [Int32] = [0, 3, 1, 2, 3, 0]
        GradCheck.check("mlp", [x, w1, b1, w2, b2]) { p in
            let h = (p[0].matmul(p[1]) + p[2]).gelu()
            let logits = h.matmul(p[3]) + p[4]
            // w1 and h are used twice: gradients from both uses must accumulate.
            let reg = p[1].square().mean() * 0.1
            return logits.crossEntropy(targets: targets) + reg + (h * h).mean() * 0.01
        }
    }

    func testScalarLossBackwardMatchesSeededBackward() {
        // loss = sum(out ⊙ R) through the real ops gives the same leaf gradients as backward(seed: R).
        var g = Inputs(36)
        let x = g.normal([3, 4])
        x.requiresGrad = true
        let r = g.normal([3, 4])
        x.tanh().backward(seed: r)
        let seeded = x.grad!.scalars
        x.zeroGrad()
        (x.tanh() * r).sum().backward()
        for (a, b) in zip(seeded, x.grad!.scalars) { XCTAssertEqual(a, b, accuracy: 1e-6) }
    }

    func testLayerNormComposite() {
        var g = Inputs(37)
        let x = g.normal([3, 6], std: 2)
        let gamma = g.normal([6]), beta = g.normal([6])
        GradCheck.check("layer norm", [x, gamma, beta], eps: 1e-3) { p in
            let mu = p[0].mean(axis: -1, keepDims: true)
            let xc = p[0] - mu
            let variance = xc.square().mean(axis: -1, keepDims: true)
            return xc / (variance + 1e-5).sqrt() * p[1] + p[2]
        }
    }

    func testCausalSelfAttentionComposite() {
        var g = Inputs(38)
        let (b, t, c, heads) = (2, 4, 6, 2)
        let hd = c / heads
        let x = g.normal([b, t, c])
        let wqkv = g.normal([c, 3 * c], std: 0.4)
        let wo = g.normal([c, c], std: 0.4)
        let mask = Tensor.causalMask(t)
        GradCheck.check("attention", [x, wqkv, wo]) { p in
            let qkv = p[0].matmul(p[1])                                  // [B, T, 3C]
            func head(_ i: Int) -> Tensor {
                qkv.slice(axis: -1, (i * c)..<((i + 1) * c)).reshaped([b, t, heads, hd]).permuted([0, 2, 1, 3])
            }
            let (q, k, v) = (head(0), head(1), head(2))                 // [B, H, T, hd]
            let att = (q.matmul(k, transposeOther: true) * (1 / Float(hd).squareRoot()))
                .maskedFill(mask, -1e9).softmax()
            let y = att.matmul(v).transposed(1, 2).reshaped([b, t, c])
            return p[0] + y.matmul(p[2])                                 // residual: x used twice
        }
    }

    func testDeepChainAccumulation() {
        // A tensor reused at many depths of a long chain.
        var g = Inputs(39)
        GradCheck.check("chain", [g.normal([2, 3], std: 0.5)]) { p in
            var h = p[0]
            for _ in 0..<6 { h = (h * 0.9 + p[0]).tanh() }
            return Tensor.stack([h, h.sigmoid()], axis: 1).sum(axis: 1)
        }
    }

    // MARK: Fused ops

    func testFusedLayerNorm() {
        var g = Inputs(40)
        // 20 features: one 16-wide vector step plus a scalar tail.
        GradCheck.check("fused layer norm", [g.normal([3, 20], std: 2), g.normal([20]), g.normal([20])], eps: 1e-3) { p in
            p[0].layerNorm(weight: p[1], bias: p[2])
        }
    }

    func testFusedLinear() {
        var g = Inputs(41)
        GradCheck.check("fused linear", [g.normal([2, 3, 5]), g.normal([18, 5]), g.normal([18])]) { p in
            p[0].linear(weight: p[1], bias: p[2])
        }
    }

    /// At sizes where backward splits rows (layer norm: per-thread dw/db partials) and
    /// columns (linear's bias gradient) across threads, the fused ops' gradients equal
    /// those of the same maps built from primitive ops.
    func testFusedOpsMatchCompositesOnThreadedSizes() {
        let pool = ThreadPool.shared
        GEMMBenchmark.usePool(threads: 2)
        defer { ThreadPool.shared = pool }
        var g = Inputs(42)
        let (rows, c, oc) = (300, 144, 130)
        let x = g.normal([rows, c], std: 2), w = g.normal([c]), b = g.normal([c])
        let wl = g.normal([oc, c], std: 0.1), bl = g.normal([oc])
        let r = g.normal([rows, oc])
        func grads(_ f: () -> Tensor) -> [[Float]] {
            for t in [x, w, b, wl, bl] { t.requiresGrad = true; t.zeroGrad() }
            f().backward(seed: r)
            return [x, w, b, wl, bl].map { $0.grad!.scalars }
        }
        let fused = grads { x.layerNorm(weight: w, bias: b).linear(weight: wl, bias: bl) }
        let composite = grads {
            let xc = x - x.mean(axis: -1, keepDims: true)
            let n = xc / (xc.square().mean(axis: -1, keepDims: true) + 1e-5).sqrt() * w + b
            return n.matmul(wl.transposed(0, 1)) + bl
        }
        for (name, (f, c)) in zip(["x", "ln.weight", "ln.bias", "weight", "bias"], zip(fused, composite)) {
            let scale = c.map { abs($0) }.max()!
            let err = zip(f, c).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(err, 1e-4 * Swift.max(1, scale), "\(name): max |fused − composite| \(err)")
        }
    }
}
