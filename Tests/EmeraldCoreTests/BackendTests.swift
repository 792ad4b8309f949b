import EmeraldCore
import XCTest

/// A second device whose memory is host memory and whose ops are the CPU's, counting calls:
/// what registering a backend looks like, and a check that ops reach the backend of their
/// tensors' device.
final class HostTwinBackend: Backend, @unchecked Sendable {
    let device: Device
    private let cpu = Backends.cpu
    private(set) var calls: [String: Int] = [:]
    private func count(_ name: String) { calls[name, default: 0] += 1 }
    init(_ device: Device) { self.device = device }

    func allocate(count n: Int) -> UnsafeMutablePointer<Float> { count("allocate"); return .allocate(capacity: max(n, 1)) }
    func deallocate(_ base: UnsafeMutablePointer<Float>, count: Int) { base.deallocate() }
    func upload(_ host: UnsafePointer<Float>, to device: UnsafeMutablePointer<Float>, count n: Int) {
        count("upload"); device.update(from: host, count: n)
    }
    func download(_ device: UnsafePointer<Float>, to host: UnsafeMutablePointer<Float>, count n: Int) {
        count("download"); host.update(from: device, count: n)
    }
    func copy(_ src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>, count n: Int) { dst.update(from: src, count: n) }
    func synchronize() {}
    func gemm(_ p: GEMMProblem) { count("gemm"); cpu.gemm(p) }
    func attentionForward(_ g: AttentionGeometry, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                          out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>) {
        count("attentionForward"); cpu.attentionForward(g, q: q, k: k, v: v, out: out, lse: lse)
    }
    func attentionBackward(_ g: AttentionGeometry, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                           out: UnsafePointer<Float>, lse: UnsafePointer<Float>, dout: UnsafePointer<Float>,
                           dq: (UnsafeMutablePointer<Float>, Bool), dk: (UnsafeMutablePointer<Float>, Bool),
                           dv: (UnsafeMutablePointer<Float>, Bool)) {
        count("attentionBackward")
        cpu.attentionBackward(g, q: q, k: k, v: v, out: out, lse: lse, dout: dout, dq: dq, dk: dk, dv: dv)
    }
    func cachedAttention(q: UnsafePointer<Float>, qStride: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>, rowStride: Int,
                         headStride: Int, start: Int, n: Int, heads: Int, kvHeads: Int, headSize: Int, out: UnsafeMutablePointer<Float>) {
        count("cachedAttention")
        cpu.cachedAttention(q: q, qStride: qStride, k: k, v: v, rowStride: rowStride, headStride: headStride, start: start, n: n,
                            heads: heads, kvHeads: kvHeads, headSize: headSize, out: out)
    }
    func softmaxCrossEntropy(logits: UnsafePointer<Float>, probabilities: UnsafeMutablePointer<Float>, rows: Int, columns v: Int,
                             targets: [Int32]) -> [Float] {
        count("softmaxCrossEntropy")
        return cpu.softmaxCrossEntropy(logits: logits, probabilities: probabilities, rows: rows, columns: v, targets: targets)
    }
    func adamW(_ slots: [AdamWSlot], _ step: AdamWStep) { count("adamW"); cpu.adamW(slots, step) }
    func sumOfSquares(_ buffers: [(UnsafePointer<Float>, Int)]) -> Double { count("sumOfSquares"); return cpu.sumOfSquares(buffers) }
    func scale(_ x: UnsafeMutablePointer<Float>, count n: Int, by s: Float) { count("scale"); cpu.scale(x, count: n, by: s) }
    func sample(_ logits: UnsafePointer<Float>, count n: Int, rule: SamplingRule, rng: inout RandomGenerator) -> Int {
        count("sample"); return cpu.sample(logits, count: n, rule: rule, rng: &rng)
    }
    func quantize(_ weight: Tensor, to format: WeightFormat) -> any DecodeWeights {
        count("quantize"); return weight.withHostBuffer { _ in cpu.quantize(weight, to: format) }
    }
}

/// The checks every backend passes against `CPUBackend` on the same inputs: its memory
/// round trip and each op, within fp32 rounding. A new backend's test target runs
/// `BackendConformance.check(itsBackend)`.
enum BackendConformance {
    static func check(_ backend: any Backend, file: StaticString = #filePath, line: UInt = #line) {
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
        // Cached attention over the same positions.
        let cache = LayerKVCache(kvHeads: 2, headSize: 2, capacity: 9, on: backend)
        let q0 = q.slice(axis: 0, 0..<1).to(backend.device), k0 = k.slice(axis: 0, 0..<1).to(backend.device)
        let v0 = v.slice(axis: 0, 0..<1).to(backend.device)
        close(cache.attend(q: q0.allColumns, k: k0.allColumns, v: v0.allColumns, heads: 4).scalars,
              Array(aWant[0][0..<72]), "cached attention")
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

final class BackendTests: XCTestCase {
    func testDeviceNames() {
        XCTAssertEqual(Device("cpu"), .cpu)
        XCTAssertEqual(Device("cuda"), .cuda(0))
        XCTAssertEqual(Device("cuda:3"), .cuda(3))
        XCTAssertNil(Device("cuda:-1"))
        XCTAssertNil(Device("gpu"))
        XCTAssertEqual(Device.cuda(2).description, "cuda:2")
    }

    func testCPUBackendIsItsOwnReference() {
        BackendConformance.check(Backends.cpu)
    }

    /// A registered backend receives the ops of tensors on its device (and nothing
    /// else), and passes the conformance checks.
    func testRegisteredBackendRunsItsDevicesOps() {
        let twin = HostTwinBackend(.cuda(7))
        XCTAssertNil(Backends.backend(for: .cuda(7)))
        Backends.register(twin)
        XCTAssertTrue(Backends.backend(for: .cuda(7)) === twin)
        XCTAssertTrue(Backends.devices.contains(.cuda(7)))
        BackendConformance.check(twin)
        for op in ["gemm", "attentionForward", "attentionBackward", "cachedAttention", "softmaxCrossEntropy", "adamW",
                   "sumOfSquares", "sample", "quantize", "upload", "download", "allocate"] {
            XCTAssertGreaterThan(twin.calls[op] ?? 0, 0, "\(op) never reached the backend")
        }
        let before = twin.calls["gemm"] ?? 0
        _ = Tensor.ones([2, 3]).linear(weight: .ones([4, 3]), bias: nil)
        XCTAssertEqual(twin.calls["gemm"] ?? 0, before, "a CPU tensor's product went to another device")
    }
}
