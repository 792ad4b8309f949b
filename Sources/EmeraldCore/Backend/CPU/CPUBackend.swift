/// The host: memory from `BufferPool`, the SIMD Swift kernels under `Kernels/`, threads from
/// `ThreadPool`. Every op runs to completion before returning, so nothing ever waits.
/// It is the reference every other backend's tests compare with.
public final class CPUBackend: Backend, @unchecked Sendable {
    /// `.cpu`.
    public let device = Device.cpu

    init() {}

    public func allocate(count: Int) -> UnsafeMutablePointer<Float> { BufferPool.shared.take(count) }
    public func deallocate(_ base: UnsafeMutablePointer<Float>, count: Int) { BufferPool.shared.give(base, count) }
    public func upload(_ host: UnsafePointer<Float>, to device: UnsafeMutablePointer<Float>, count: Int) {
        device.update(from: host, count: count)
    }
    public func download(_ device: UnsafePointer<Float>, to host: UnsafeMutablePointer<Float>, count: Int) {
        host.update(from: device, count: count)
    }
    public func copy(_ src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>, count: Int) {
        dst.update(from: src, count: count)
    }
    public func synchronize() {}

    public func gemm(_ p: GEMMProblem) {
        GEMM.sgemm(transA: p.transA, transB: p.transB, m: p.m, n: p.n, k: p.k, alpha: p.alpha, a: p.a, lda: p.lda,
                   b: p.b, ldb: p.ldb, beta: p.beta, c: p.c, ldc: p.ldc, bias: p.bias, rowInvariant: p.rowInvariant)
    }

    public func attentionForward(_ g: AttentionGeometry, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                 out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>) {
        AttentionKernel.forward(g, q: q, k: k, v: v, out: out, lse: lse)
    }

    public func attentionBackward(_ g: AttentionGeometry, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                  out: UnsafePointer<Float>, lse: UnsafePointer<Float>, dout: UnsafePointer<Float>,
                                  dq: (UnsafeMutablePointer<Float>, Bool), dk: (UnsafeMutablePointer<Float>, Bool),
                                  dv: (UnsafeMutablePointer<Float>, Bool)) {
        AttentionKernel.backward(g, q: q, k: k, v: v, out: out, lse: lse, dout: dout, dq: dq, dk: dk, dv: dv)
    }

    public func cachedAttention(q: UnsafePointer<Float>, qStride: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                rowStride: Int, headStride: Int, start: Int, n: Int, heads: Int, kvHeads: Int, headSize: Int,
                                out: UnsafeMutablePointer<Float>) {
        CachedAttention.forward(q: q, qStride: qStride, k: k, v: v, rowStride: rowStride, headStride: headStride, start: start,
                                n: n, heads: heads, kvHeads: kvHeads, headSize: headSize, out: out)
    }

    public func cachedAttention(q: UnsafePointer<Float>, qStride: Int, sequences: [CachedSequence], rowStride: Int, heads: Int,
                                kvHeads: Int, headSize: Int, out: UnsafeMutablePointer<Float>) {
        CachedAttention.forward(q: q, qStride: qStride, sequences: sequences, rowStride: rowStride, heads: heads, kvHeads: kvHeads,
                                headSize: headSize, out: out)
    }

    public func softmaxCrossEntropy(logits x: UnsafePointer<Float>, probabilities p: UnsafeMutablePointer<Float>, rows: Int,
                                    columns v: Int, targets: [Int32]) -> [Float] {
        var losses = [Float](repeating: 0, count: rows)
        losses.withUnsafeMutableBufferPointer { lp in
            let lb = lp.baseAddress!
            parallelFor(rows, grain: Swift.max(1, 8192 / v)) { r in
                for row in r {
                    let t = Int(targets[row])
                    precondition(t >= 0 && t < v, "target \(t) out of range 0..<\(v)")
                    let lse = SoftmaxKernel.forward(x + row * v, p + row * v, v)
                    lb[row] = lse - x[row * v + t]
                }
            }
        }
        return losses
    }

    public func adamW(_ slots: [AdamWSlot], _ step: AdamWStep) {
        let (b1, b2, eps, stepSize, invSqrtC2, gradScale) = (step.beta1, step.beta2, step.eps, step.stepSize, step.invSqrtC2, step.gradScale)
        ParameterPieces(slots.map(\.count)).forEachPiece { i, range in
            let s = slots[i], gd = s.gradient, pd = s.parameter, md = s.m, vd = s.v, decay = s.decay
            var j = range.lowerBound
            while j + 8 <= range.upperBound {
                let gj = load8(gd + j) * gradScale
                let mj = b1 * load8(md + j) + (1 - b1) * gj
                let vj = b2 * load8(vd + j) + (1 - b2) * gj * gj
                store8(mj, md + j); store8(vj, vd + j)
                let denom = sqrt8(vj) * invSqrtC2 + eps
                store8(load8(pd + j) * decay - stepSize * mj / denom, pd + j)
                j += 8
            }
            while j < range.upperBound {
                let gj = gd[j] * gradScale
                md[j] = b1 * md[j] + (1 - b1) * gj
                vd[j] = b2 * vd[j] + (1 - b2) * gj * gj
                pd[j] = pd[j] * decay - stepSize * md[j] / (vd[j].squareRoot() * invSqrtC2 + eps)
                j += 1
            }
        }
    }

    public func sumOfSquares(_ buffers: [(UnsafePointer<Float>, Int)]) -> Double {
        var partial = [Double](repeating: 0, count: ThreadPool.shared.threadCount)
        partial.withUnsafeMutableBufferPointer { pp in
            ParameterPieces(buffers.map(\.1)).sumPerThread(into: pp.baseAddress!) { i, range in
                let g = buffers[i].0 + range.lowerBound
                return Double(Kernels.dot(g, g, range.count))
            }
        }
        return partial.reduce(0, +)
    }


    public func sample(_ logits: UnsafePointer<Float>, count: Int, rule: SamplingRule, rng: inout RandomGenerator) -> Int {
        rule.temperature == 0 ? Sampling.argmax(logits, count)  // no copy of the row
            : Sampling.pick(Array(UnsafeBufferPointer(start: logits, count: count)), rule: rule, rng: &rng)
    }

    public func quantize(_ weight: Tensor, to format: WeightFormat) -> any DecodeWeights {
        switch format {
        case .bf16: return BF16Matrix(weight)
        case .q8: return Q8Matrix(weight)
        }
    }
}

/// Buffers (parameters, gradients) cut into pieces of at most 16k floats (four 64 KiB
/// streams fit L2): the units one `parallelFor` spreads over the threads, so an optimizer
/// step is one hand-off rather than one per parameter, and small parameters no longer run
/// alone on one core. Threads split by floats, not by piece count; the split depends only on
/// the sizes, so sums are the same run to run.
struct ParameterPieces {
    let pieces: [(buffer: Int, range: Range<Int>)]
    /// Floats before each piece (and the total at the end).
    let offsets: [Int]

    init(_ counts: [Int]) {
        var out: [(Int, Range<Int>)] = []
        for (i, n) in counts.enumerated() {
            var lo = 0
            while lo < n { let hi = Swift.min(n, lo + 16384); out.append((i, lo..<hi)); lo = hi }
        }
        pieces = out
        offsets = out.reduce(into: [0]) { $0.append($0.last! + $1.1.count) }
    }

    /// Pieces of thread w of t: those starting in its 1/t share of all floats.
    func share(_ w: Int, of t: Int) -> Range<Int> {
        let total = offsets.last!
        func first(_ at: Int) -> Int {  // first piece starting at or after `at`
            var lo = 0, hi = pieces.count
            while lo < hi { let mid = (lo + hi) / 2; if offsets[mid] < at { lo = mid + 1 } else { hi = mid } }
            return lo
        }
        return first(total * w / t)..<(w + 1 == t ? pieces.count : first(total * (w + 1) / t))
    }

    var threads: Int { offsets.last! < 32768 ? 1 : ThreadPool.shared.threadCount }

    /// Runs `body(buffer, range)` over every piece, each thread on its share.
    func forEachPiece(_ body: (Int, Range<Int>) -> Void) {
        let t = threads
        parallelFor(t) { r in for w in r { for p in pieces[share(w, of: t)] { body(p.buffer, p.range) } } }
    }

    /// Sums `body` over the pieces, thread by thread into out[thread] (0 for idle threads).
    func sumPerThread(into out: UnsafeMutablePointer<Double>, _ body: (Int, Range<Int>) -> Double) {
        for w in 0..<ThreadPool.shared.threadCount { out[w] = 0 }
        let t = threads
        parallelFor(t) { r in
            for w in r { out[w] = pieces[share(w, of: t)].reduce(0.0) { $0 + body($1.buffer, $1.range) } }
        }
    }
}
