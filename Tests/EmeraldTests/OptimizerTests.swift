import Emerald
import EmeraldCore
import Foundation
import XCTest

/// AdamW's pieced, threaded update and its folded-in gradient clip against a scalar
/// reference written out from PyTorch's formulas.
final class OptimizerTests: XCTestCase {
    /// Parameters of 40,000 (several 16k pieces), 129 and 7 floats, with gradients.
    private func parameters(seed: UInt64) -> [(name: String, tensor: Tensor)] {
        var rng = RandomGenerator(seed: seed)
        return [("w", [200, 200]), ("b", [129]), ("ln", [7])].map { name, shape in
            let p = Tensor.randn(shape, using: &rng)
            p.grad = Tensor.randn(shape, std: 3, using: &rng)
            return (name, p)
        }
    }

    /// torch.optim.AdamW's update, one float at a time, after clip_grad_norm_(maxNorm).
    private func reference(_ params: [(name: String, tensor: Tensor)], steps: Int, lr: Float, maxNorm: Float)
        -> (values: [[Float]], norm: Float) {
        var p = params.map { $0.tensor.scalars }
        let g0 = params.map { $0.tensor.grad!.scalars }
        var m = p.map { [Float](repeating: 0, count: $0.count) }, v = m
        let norm = Float(g0.joined().reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot())
        let scale: Float = maxNorm > 0 && norm > maxNorm ? maxNorm / (norm + 1e-6) : 1
        let (b1, b2, eps, wd): (Float, Float, Float, Float) = (0.9, 0.95, 1e-8, 0.1)
        for t in 1...steps {
            let c1 = 1 - Float(pow(Double(b1), Double(t))), c2 = 1 - Float(pow(Double(b2), Double(t)))
            for i in p.indices {
                let decay: Float = params[i].tensor.rank >= 2 ? 1 - lr * wd : 1
                for j in p[i].indices {
                    let g = g0[i][j] * scale
                    m[i][j] = b1 * m[i][j] + (1 - b1) * g
                    v[i][j] = b2 * v[i][j] + (1 - b2) * g * g
                    p[i][j] = p[i][j] * decay - (lr / c1) * m[i][j] / (v[i][j].squareRoot() / c2.squareRoot() + eps)
                }
            }
        }
        return (p, norm)
    }

    func testPiecedThreadedStepWithClipMatchesReference() {
        let pool = ThreadPool.shared
        GEMMBenchmark.usePool(threads: 2)  // the pieces are split across two threads
        defer { ThreadPool.shared = pool }
        for maxNorm: Float in [0, 1, 1e9] {
            let params = parameters(seed: 5)
            let want = reference(params, steps: 3, lr: 1e-2, maxNorm: maxNorm)
            let opt = AdamW(params, betas: (0.9, 0.95), weightDecay: 0.1)
            var norm: Float = 0
            for _ in 0..<3 { norm = opt.step(lr: 1e-2, clippingGradientNormTo: maxNorm) }
            XCTAssertEqual(norm, want.norm, accuracy: 1e-5 * want.norm)
            for (i, (name, p)) in params.enumerated() {
                let err = zip(p.scalars, want.values[i]).map { abs($0 - $1) }.max()!
                XCTAssertLessThanOrEqual(err, 1e-5, "\(name), clip \(maxNorm): max |Δ| \(err)")
            }
            // The clip lives in the update: stored gradients are left as they were.
            XCTAssertEqual(params[0].tensor.grad!.scalars, parameters(seed: 5)[0].tensor.grad!.scalars)
        }
    }

    func testFoldedClipEqualsClippingTheGradientsFirst() {
        let a = parameters(seed: 9), b = parameters(seed: 9)
        let optA = AdamW(a), optB = AdamW(b)
        let normA = optA.step(lr: 3e-3, clippingGradientNormTo: 1)
        let normB = clipGradNorm(b.map(\.tensor), maxNorm: 1)
        optB.step(lr: 3e-3)
        XCTAssertGreaterThan(normA, 1)  // the clip is active
        XCTAssertEqual(normA, normB, accuracy: 1e-4 * normB)
        for (x, y) in zip(a, b) {
            let err = zip(x.tensor.scalars, y.tensor.scalars).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(err, 1e-6, "\(x.name): folded and separate clips differ by \(err)")
        }
    }
}
