import EmeraldCore
import XCTest

/// A second device whose memory is host memory and whose ops are the CPU's, counting calls:
/// what registering a backend looks like, and a check that ops reach the backend of their
/// tensors' device.
public final class HostTwinBackend: Backend, @unchecked Sendable {
    public let device: Device
    private let cpu = Backends.cpu
    /// Calls per method name.
    public private(set) var calls: [String: Int] = [:]
    private func record(_ name: String) { calls[name, default: 0] += 1 }
    /// A backend for `device`.
    public init(_ device: Device) { self.device = device }

    public func allocate(count n: Int) -> UnsafeMutablePointer<Float> { record("allocate"); return .allocate(capacity: max(n, 1)) }
    public func deallocate(_ base: UnsafeMutablePointer<Float>, count: Int) { base.deallocate() }
    public func upload(_ host: UnsafePointer<Float>, to device: UnsafeMutablePointer<Float>, count n: Int) {
        record("upload"); device.update(from: host, count: n)
    }
    public func download(_ device: UnsafePointer<Float>, to host: UnsafeMutablePointer<Float>, count n: Int) {
        record("download"); host.update(from: device, count: n)
    }
    public func copy(_ src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>, count n: Int) {
        record("copy"); dst.update(from: src, count: n)
    }
    // Every op: the CPU's, counted.
    public func synchronize() { record("synchronize"); cpu.synchronize() }
    public func fill(_ x: UnsafeMutablePointer<Float>, count: Int, value: Float) { record("fill"); cpu.fill(x, count: count, value: value) }
    public func copyRows(_ src: UnsafePointer<Float>, srcStride: Int, to dst: UnsafeMutablePointer<Float>, dstStride: Int, rows: Int, cols: Int, accumulate: Bool) { record("copyRows"); cpu.copyRows(src, srcStride: srcStride, to: dst, dstStride: dstStride, rows: rows, cols: cols, accumulate: accumulate) }
    public func unary(_ op: UnaryOp, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) { record("unary"); cpu.unary(op, x, into: y, count: count) }
    public func unaryBackward(_ op: UnaryOp, x: UnsafePointer<Float>, y: UnsafePointer<Float>, g: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>, count: Int) { record("unaryBackward"); cpu.unaryBackward(op, x: x, y: y, g: g, into: dx, count: count) }
    public func binary(_ op: BinaryOp, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into c: UnsafeMutablePointer<Float>, count: Int) { record("binary"); cpu.binary(op, a, b, into: c, count: count) }
    public func binaryBackward(_ op: BinaryOp, side: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, g: UnsafePointer<Float>, into d: UnsafeMutablePointer<Float>, count: Int) { record("binaryBackward"); cpu.binaryBackward(op, side: side, a: a, b: b, g: g, into: d, count: count) }
    public func addRows(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into c: UnsafeMutablePointer<Float>, rows: Int, count: Int) { record("addRows"); cpu.addRows(a, b, into: c, rows: rows, count: count) }
    public func scale(_ x: UnsafePointer<Float>, by s: Float, into y: UnsafeMutablePointer<Float>, count: Int) { record("scale"); cpu.scale(x, by: s, into: y, count: count) }
    public func shift(_ x: UnsafePointer<Float>, by s: Float, into y: UnsafeMutablePointer<Float>, count: Int) { record("shift"); cpu.shift(x, by: s, into: y, count: count) }
    public func broadcast(_ x: UnsafePointer<Float>, from: [Int], into y: UnsafeMutablePointer<Float>, to: [Int]) { record("broadcast"); cpu.broadcast(x, from: from, into: y, to: to) }
    public func reduceBroadcast(_ x: UnsafePointer<Float>, from: [Int], into y: UnsafeMutablePointer<Float>, to: [Int]) { record("reduceBroadcast"); cpu.reduceBroadcast(x, from: from, into: y, to: to) }
    public func permute(_ x: UnsafePointer<Float>, shape: [Int], perm: [Int], into y: UnsafeMutablePointer<Float>) { record("permute"); cpu.permute(x, shape: shape, perm: perm, into: y) }
    public func maskedFill(_ x: UnsafePointer<Float>, mask: UnsafePointer<Float>, period: Int, value: Float, into y: UnsafeMutablePointer<Float>, count: Int) { record("maskedFill"); cpu.maskedFill(x, mask: mask, period: period, value: value, into: y, count: count) }
    public func dropout(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int, p: Float, seed: UInt32, offset: Int) { record("dropout"); cpu.dropout(x, into: y, count: count, p: p, seed: seed, offset: offset) }
    public func rotary(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, rows: Int, time: Int, heads: Int, half: Int, cos: [Float], sin: [Float], sign: Float) { record("rotary"); cpu.rotary(x, into: y, rows: rows, time: time, heads: heads, half: half, cos: cos, sin: sin, sign: sign) }
    public func sum(_ x: UnsafePointer<Float>, count: Int) -> Float { record("sum"); return cpu.sum(x, count: count) }
    public func sumAxis(_ x: UnsafePointer<Float>, outer: Int, n: Int, inner: Int, into y: UnsafeMutablePointer<Float>) { record("sumAxis"); cpu.sumAxis(x, outer: outer, n: n, inner: inner, into: y) }
    public func sumRows(_ x: UnsafePointer<Float>, rows: Int, cols: Int, into y: UnsafeMutablePointer<Float>, beta: Float) { record("sumRows"); cpu.sumRows(x, rows: rows, cols: cols, into: y, beta: beta) }
    public func maxAxis(_ x: UnsafePointer<Float>, outer: Int, n: Int, inner: Int, into y: UnsafeMutablePointer<Float>) -> [Int] { record("maxAxis"); return cpu.maxAxis(x, outer: outer, n: n, inner: inner, into: y) }
    public func maxAxisBackward(_ g: UnsafePointer<Float>, arg: [Int], outer: Int, n: Int, inner: Int, into dx: UnsafeMutablePointer<Float>) { record("maxAxisBackward"); cpu.maxAxisBackward(g, arg: arg, outer: outer, n: n, inner: inner, into: dx) }
    public func argmax(_ x: UnsafePointer<Float>, rows: Int, columns: Int) -> [Int] { record("argmax"); return cpu.argmax(x, rows: rows, columns: columns) }
    public func gatherRows(_ table: UnsafePointer<Float>, columns: Int, ids: [Int32], into out: UnsafeMutablePointer<Float>) { record("gatherRows"); cpu.gatherRows(table, columns: columns, ids: ids, into: out) }
    public func scatterAddRows(_ g: UnsafePointer<Float>, columns: Int, ids: [Int32], into table: UnsafeMutablePointer<Float>) { record("scatterAddRows"); cpu.scatterAddRows(g, columns: columns, ids: ids, into: table) }
    public func gatherColumns(_ x: UnsafePointer<Float>, n: Int, index: [Int32], into out: UnsafeMutablePointer<Float>) { record("gatherColumns"); cpu.gatherColumns(x, n: n, index: index, into: out) }
    public func scatterAddColumns(_ g: UnsafePointer<Float>, n: Int, index: [Int32], into dx: UnsafeMutablePointer<Float>) { record("scatterAddColumns"); cpu.scatterAddColumns(g, n: n, index: index, into: dx) }
    public func layerNormForward(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>, stats: UnsafeMutablePointer<Float>, rows: Int, c: Int, eps: Float) { record("layerNormForward"); cpu.layerNormForward(x, weight: weight, bias: bias, into: y, stats: stats, rows: rows, c: c, eps: eps) }
    public func layerNormBackward(_ x: UnsafePointer<Float>, g: UnsafePointer<Float>, weight: UnsafePointer<Float>, stats: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>, rows: Int, c: Int) { record("layerNormBackward"); cpu.layerNormBackward(x, g: g, weight: weight, stats: stats, dx: dx, dw: dw, db: db, rows: rows, c: c) }
    public func rmsNormForward(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>, rows: Int, c: Int, eps: Float) { record("rmsNormForward"); cpu.rmsNormForward(x, weight: weight, into: y, rstd: rstd, rows: rows, c: c, eps: eps) }
    public func rmsNormBackward(_ x: UnsafePointer<Float>, g: UnsafePointer<Float>, weight: UnsafePointer<Float>, rstd: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>, rows: Int, c: Int) { record("rmsNormBackward"); cpu.rmsNormBackward(x, g: g, weight: weight, rstd: rstd, dx: dx, dw: dw, rows: rows, c: c) }
    public func swigluForward(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) { record("swigluForward"); cpu.swigluForward(gate: gate, up: up, into: y, count: count) }
    public func swigluBackward(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, g: UnsafePointer<Float>, dGate: UnsafeMutablePointer<Float>?, dUp: UnsafeMutablePointer<Float>?, count: Int) { record("swigluBackward"); cpu.swigluBackward(gate: gate, up: up, g: g, dGate: dGate, dUp: dUp, count: count) }
    public func softmax(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, rows: Int, n: Int) { record("softmax"); cpu.softmax(x, into: y, rows: rows, n: n) }
    public func softmaxBackward(y: UnsafePointer<Float>, g: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>, rows: Int, n: Int) { record("softmaxBackward"); cpu.softmaxBackward(y: y, g: g, into: dx, rows: rows, n: n) }
    public func logSoftmax(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, rows: Int, n: Int) { record("logSoftmax"); cpu.logSoftmax(x, into: y, rows: rows, n: n) }
    public func logSoftmaxBackward(y: UnsafePointer<Float>, g: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>, rows: Int, n: Int) { record("logSoftmaxBackward"); cpu.logSoftmaxBackward(y: y, g: g, into: dx, rows: rows, n: n) }
    public func crossEntropyBackward(_ probabilities: UnsafeMutablePointer<Float>, rows: Int, columns v: Int, targets: [Int32], scale: Float) { record("crossEntropyBackward"); cpu.crossEntropyBackward(probabilities, rows: rows, columns: v, targets: targets, scale: scale) }
    public func rowLosses(_ x: UnsafePointer<Float>, rows: Int, columns v: Int, targets: [Int32?]) -> [Float] { record("rowLosses"); return cpu.rowLosses(x, rows: rows, columns: v, targets: targets) }
    public func allFinite(_ x: UnsafePointer<Float>, count: Int) -> Bool { record("allFinite"); return cpu.allFinite(x, count: count) }
    public func gemm(_ p: GEMMProblem) { record("gemm"); cpu.gemm(p) }
    public func attentionForward(_ g: AttentionGeometry, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>) { record("attentionForward"); cpu.attentionForward(g, q: q, k: k, v: v, out: out, lse: lse) }
    public func attentionBackward(_ g: AttentionGeometry, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, out: UnsafePointer<Float>, lse: UnsafePointer<Float>, dout: UnsafePointer<Float>, dq: (UnsafeMutablePointer<Float>, Bool), dk: (UnsafeMutablePointer<Float>, Bool), dv: (UnsafeMutablePointer<Float>, Bool)) { record("attentionBackward"); cpu.attentionBackward(g, q: q, k: k, v: v, out: out, lse: lse, dout: dout, dq: dq, dk: dk, dv: dv) }
    public func cachedAttention(q: UnsafePointer<Float>, qStride: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>, rowStride: Int, headStride: Int, start: Int, n: Int, heads: Int, kvHeads: Int, headSize: Int, out: UnsafeMutablePointer<Float>) { record("cachedAttention"); cpu.cachedAttention(q: q, qStride: qStride, k: k, v: v, rowStride: rowStride, headStride: headStride, start: start, n: n, heads: heads, kvHeads: kvHeads, headSize: headSize, out: out) }
    public func cachedAttention(q: UnsafePointer<Float>, qStride: Int, sequences: [CachedSequence], rowStride: Int, heads: Int, kvHeads: Int, headSize: Int, out: UnsafeMutablePointer<Float>) { record("cachedAttention"); cpu.cachedAttention(q: q, qStride: qStride, sequences: sequences, rowStride: rowStride, heads: heads, kvHeads: kvHeads, headSize: headSize, out: out) }
    public func softmaxCrossEntropy(logits: UnsafePointer<Float>, probabilities: UnsafeMutablePointer<Float>, rows: Int, columns v: Int, targets: [Int32]) -> [Float] { record("softmaxCrossEntropy"); return cpu.softmaxCrossEntropy(logits: logits, probabilities: probabilities, rows: rows, columns: v, targets: targets) }
    public func adamW(_ slots: [AdamWSlot], _ step: AdamWStep) { record("adamW"); cpu.adamW(slots, step) }
    public func sumOfSquares(_ buffers: [(UnsafePointer<Float>, Int)]) -> Double { record("sumOfSquares"); return cpu.sumOfSquares(buffers) }
    public func sample(_ logits: UnsafePointer<Float>, count: Int, rule: SamplingRule, rng: inout RandomGenerator) -> Int { record("sample"); return cpu.sample(logits, count: count, rule: rule, rng: &rng) }
    public func quantize(_ weight: Tensor, to format: WeightFormat) -> any DecodeWeights { record("quantize"); return cpu.quantize(weight, to: format) }
}

/// The checks every backend passes against `CPUBackend` on the same inputs: its memory
/// round trip and each op, within fp32 rounding. A new backend's test target runs
/// `BackendConformance.check(itsBackend)`.
public enum BackendConformance {
    public static func check(_ backend: any Backend, file: StaticString = #filePath, line: UInt = #line) {
        var rng = RandomGenerator(seed: 11)
        func host(_ shape: [Int]) -> Tensor { .randn(shape, using: &rng) }
        func close(_ a: [Float], _ b: [Float], _ what: String, tol: Float = 1e-5) {
            let scale = max(1, b.map { abs($0) }.max() ?? 0)
            XCTAssertEqual(a.count, b.count, what, file: file, line: line)
            XCTAssertLessThanOrEqual(zip(a, b).map { abs($0 - $1) }.max() ?? 0, tol * scale, "\(backend.device) \(what)", file: file, line: line)
        }
        // Memory: upload, copy on the device, download.
        let x = host([3, 70])
        let onDevice = x.to(backend.device)
        XCTAssertEqual(onDevice.device, backend.device, file: file, line: line)
        XCTAssertEqual(onDevice.scalars, x.scalars, "round trip", file: file, line: line)
        // Products, forward and backward.
        let w = host([20, 70]), b = host([20]), r = host([3, 20])
        func linearGrads(_ x: Tensor, _ w: Tensor, _ b: Tensor) -> [[Float]] {
            for t in [x, w, b] { t.requiresGrad = true; t.grad = nil }
            let y = x.linear(weight: w, bias: b)
            (y * r.to(x.device)).sum().backward()
            return [y.scalars, x.grad!.scalars, w.grad!.scalars, b.grad!.scalars]
        }
        let want = linearGrads(x, w, b)
        let got = linearGrads(onDevice, w.to(backend.device), b.to(backend.device))
        for (i, name) in ["linear", "dx", "dw", "db"].enumerated() { close(got[i], want[i], name) }
        // Attention with grouped heads, forward and backward.
        let q = host([2, 9, 8]), k = host([2, 9, 4]), v = host([2, 9, 4]), ro = host([2, 9, 8])
        func attention(_ ts: [Tensor]) -> [[Float]] {
            for t in ts { t.requiresGrad = true; t.grad = nil }
            let y = Tensor.causalAttention(q: ts[0].allColumns, k: ts[1].allColumns, v: ts[2].allColumns, heads: 4, kvHeads: 2)
            (y * ro.to(ts[0].device)).sum().backward()
            return [y.scalars] + ts.map { $0.grad!.scalars }
        }
        let aWant = attention([q, k, v]), aGot = attention([q, k, v].map { $0.to(backend.device) })
        for (i, name) in ["attention", "dq", "dk", "dv"].enumerated() { close(aGot[i], aWant[i], name) }
        // RMSNorm and SwiGLU, forward and backward (33 features: two 16-wide steps and a tail).
        let xn = host([5, 33]), wn = host([33]), rn = host([5, 33]), up = host([5, 33])
        func normAndGate(_ ts: [Tensor]) -> [[Float]] {
            for t in ts { t.requiresGrad = true; t.grad = nil }
            let n = ts[0].rmsNorm(weight: ts[1], eps: 1e-5)
            let y = Tensor.swiglu(gate: n, up: ts[2])
            (y * rn.to(ts[0].device)).sum().backward()
            return [n.scalars, y.scalars] + ts.map { $0.grad!.scalars }
        }
        let nWant = normAndGate([xn, wn, up]), nGot = normAndGate([xn, wn, up].map { $0.to(backend.device) })
        for (i, name) in ["rmsNorm", "swiglu", "rmsNorm dx", "rmsNorm dw", "swiglu dUp"].enumerated() { close(nGot[i], nWant[i], name) }
        // Cached attention over the same positions.
        let cache = LayerKVCache(kvHeads: 2, headSize: 2, capacity: 9, on: backend)
        let q0 = q.slice(axis: 0, 0..<1).to(backend.device), k0 = k.slice(axis: 0, 0..<1).to(backend.device)
        let v0 = v.slice(axis: 0, 0..<1).to(backend.device)
        close(cache.attend(q: q0.allColumns, k: k0.allColumns, v: v0.allColumns, heads: 4).scalars,
              Array(aWant[0][0..<72]), "cached attention")
        // Two sequences in one call, caches of different capacities: sequence 1 takes batch 1's
        // first 5 positions as a prompt, then its sixth beside sequence 0's last position.
        let rows = { (t: [Float], b: Int, r: Range<Int>, c: Int) in Array(t[(b * 9 + r.lowerBound) * c..<(b * 9 + r.upperBound) * c]) }
        let c0 = LayerKVCache(kvHeads: 2, headSize: 2, capacity: 9, on: backend), c1 = LayerKVCache(kvHeads: 2, headSize: 2, capacity: 6, on: backend)
        func both(_ parts: [(Int, Range<Int>)], into caches: [LayerKVCache]) -> [Float] {
            let n = parts.map(\.1.count).reduce(0, +)
            let t = { (x: Tensor, c: Int) in Tensor(parts.flatMap { rows(x.scalars, $0.0, $0.1, c) }, shape: [n, c]).to(backend.device).allColumns }
            return LayerKVCache.attend(caches, counts: parts.map(\.1.count), q: t(q, 8), k: t(k, 4), v: t(v, 4), heads: 4).scalars
        }
        let first = both([(0, 0..<8), (1, 0..<5)], into: [c0, c1]), next = both([(0, 8..<9), (1, 5..<6)], into: [c0, c1])
        close(first + next, rows(aWant[0], 0, 0..<8, 8) + rows(aWant[0], 1, 0..<5, 8) + rows(aWant[0], 0, 8..<9, 8) + rows(aWant[0], 1, 5..<6, 8),
              "cached attention, two sequences")
        // Loss, optimizer, sampling, quantized copies.
        let logits = host([4, 33])
        close([logits.to(backend.device).crossEntropy(targets: [1, 5, 32, 0]).item], [logits.crossEntropy(targets: [1, 5, 32, 0]).item], "cross-entropy")
        let grads = [host([40_000]), host([7])]
        close([Optimizer.globalNorm(grads.map { $0.to(backend.device) })], [Optimizer.globalNorm(grads)], "global norm")
        func adam(_ p: Tensor, _ g: Tensor) -> [Float] {
            p.grad = g
            let m = Tensor.zeros(p.shape).to(p.device), v2 = Tensor.zeros(p.shape).to(p.device)
            Optimizer.adamW(parameters: [p], m: [m], v: [v2], decays: [0.99],
                            step: AdamWStep(beta1: 0.9, beta2: 0.95, eps: 1e-8, stepSize: 1e-2, invSqrtC2: 3, gradScale: 0.5))
            return p.scalars + m.scalars + v2.scalars
        }
        let p = host([300]), g = host([300])
        let adamWant = adam(p.copy(), g.copy())
        close(adam(p.copy().to(backend.device), g.copy().to(backend.device)), adamWant, "AdamW")
        var r1 = RandomGenerator(seed: 3), r2 = RandomGenerator(seed: 3)
        let rule = SamplingRule(temperature: 0.8, topK: 10, topP: 0.9)
        XCTAssertEqual(logits.to(backend.device).sample(rule, rng: &r1), logits.sample(rule, rng: &r2), "sample", file: file, line: line)
        let cpuCopy = Backends.cpu.quantize(w, to: .q8), copy = backend.quantize(w.to(backend.device), to: .q8)
        XCTAssertEqual(copy.byteCount, cpuCopy.byteCount, "quantize", file: file, line: line)
    }
}
