import EmeraldCore
import XCTest

/// RMSNorm and SwiGLU (the Llama family's ops): forward against the plain formula, gradients
/// against central finite differences, and the fused ops against the same maps built from
/// primitive ops at sizes where backward splits rows across threads.
final class NormAndGateTests: XCTestCase {
    func testRMSNormForwardIsThePlainFormula() {
        var g = Inputs(70)
        let (rows, c) = (5, 37)  // two 16-wide steps and a tail
        let x = g.normal([rows, c], std: 2), w = g.normal([c])
        let y = x.rmsNorm(weight: w, eps: 1e-6).scalars
        let xs = x.scalars, ws = w.scalars
        for r in 0..<rows {
            let row = xs[(r * c)..<(r * c + c)].map(Double.init)
            let rstd = 1 / (row.map { $0 * $0 }.reduce(0, +) / Double(c) + 1e-6).squareRoot()
            for i in 0..<c {
                XCTAssertEqual(Double(y[r * c + i]), row[i] * rstd * Double(ws[i]), accuracy: 1e-5, "row \(r) channel \(i)")
            }
        }
    }

    func testSwiGLUForwardIsThePlainFormula() {
        var g = Inputs(71)
        let gate = g.normal([3, 21], std: 3), up = g.normal([3, 21])
        let y = Tensor.swiglu(gate: gate, up: up).scalars
        for (i, (a, b)) in zip(gate.scalars, up.scalars).enumerated() {
            let want = Double(a) / (1 + Foundation.exp(-Double(a))) * Double(b)
            XCTAssertEqual(Double(y[i]), want, accuracy: 1e-5 * Swift.max(1, abs(want)), "element \(i)")
        }
    }

    func testRMSNormGradients() {
        var g = Inputs(72)
        GradCheck.check("rms norm", [g.normal([3, 20], std: 2), g.normal([20])], eps: 1e-3) { p in
            p[0].rmsNorm(weight: p[1], eps: 1e-5)
        }
        // Input alone (a frozen weight).
        GradCheck.check("rms norm, weight constant", [g.normal([2, 17]), g.normal([17])], constant: [1], eps: 1e-3) { p in
            p[0].rmsNorm(weight: p[1])
        }
    }

    func testSwiGLUGradients() {
        var g = Inputs(73)
        GradCheck.check("swiglu", [g.normal([2, 3, 19], std: 2), g.normal([2, 3, 19])], eps: 1e-3) { p in
            Tensor.swiglu(gate: p[0], up: p[1])
        }
        // The same tensor as gate and up: both gradients add up.
        GradCheck.check("swiglu, one tensor both sides", [g.normal([4, 9])], eps: 1e-3) { p in
            Tensor.swiglu(gate: p[0], up: p[0])
        }
    }

    /// A Llama MLP (RMSNorm → gate/up → SwiGLU → down) at threaded sizes: the fused ops'
    /// gradients equal those of the composite built from primitive ops.
    func testFusedOpsMatchCompositesOnThreadedSizes() {
        let pool = ThreadPool.shared
        GEMMBenchmark.usePool(threads: 2)
        defer { ThreadPool.shared = pool }
        var g = Inputs(74)
        let (rows, c, h) = (300, 144, 200)
        let x = g.normal([rows, c], std: 2), w = g.normal([c])
        let wg = g.normal([h, c], std: 0.1), wu = g.normal([h, c], std: 0.1)
        let r = g.normal([rows, h])
        let leaves = [x, w, wg, wu]
        func grads(_ f: () -> Tensor) -> [[Float]] {
            for t in leaves { t.requiresGrad = true; t.zeroGrad() }
            f().backward(seed: r)
            return leaves.map { $0.grad!.scalars }
        }
        let fused = grads {
            let n = x.rmsNorm(weight: w, eps: 1e-5)
            return Tensor.swiglu(gate: n.linear(weight: wg, bias: nil), up: n.linear(weight: wu, bias: nil))
        }
        let composite = grads {
            let n = x / (x.square().mean(axis: -1, keepDims: true) + 1e-5).sqrt() * w
            let a = n.matmul(wg.transposed(0, 1))
            return a.silu() * n.matmul(wu.transposed(0, 1))
        }
        for (name, (f, c)) in zip(["x", "norm.weight", "gate", "up"], zip(fused, composite)) {
            let scale = c.map { abs($0) }.max()!
            let err = zip(f, c).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(err, 1e-4 * Swift.max(1, scale), "\(name): max |fused − composite| \(err)")
        }
    }
}
