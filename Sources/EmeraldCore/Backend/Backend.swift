import Foundation

/// What a device implements for the engine: its memory, copies to and from the host, and the
/// kernels behind the ops. See docs/architecture.md for the contract (who owns memory, where
/// the host waits, how a backend is tested against `CPUBackend`).
///
/// Pointers passed to a backend are its own device's addresses (`Storage.base` of tensors on
/// that device); host pointers appear only in `upload`/`download`. Every method may return
/// before the device has finished, except `download` and the methods that return a host
/// value (`sumOfSquares`, `sample`, `crossEntropy`'s losses), which wait for it.
public protocol Backend: AnyObject, Sendable {
    /// The device this backend computes on.
    var device: Device { get }

    // MARK: Memory (owned by the backend: `Storage` asks for buffers and gives them back)

    /// Uninitialised memory for `count` floats.
    func allocate(count: Int) -> UnsafeMutablePointer<Float>
    /// Returns memory `allocate` gave (to the backend's cache or the device).
    func deallocate(_ base: UnsafeMutablePointer<Float>, count: Int)
    /// Copies host floats into device memory.
    func upload(_ host: UnsafePointer<Float>, to device: UnsafeMutablePointer<Float>, count: Int)
    /// Copies device floats into host memory; waits for the device.
    func download(_ device: UnsafePointer<Float>, to host: UnsafeMutablePointer<Float>, count: Int)
    /// Copies within the device.
    func copy(_ src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>, count: Int)
    /// Waits until every op issued so far has finished.
    func synchronize()

    // MARK: Products

    /// C = alpha·op(A)·op(B) (+ bias on every row) + beta·C, row-major (see `GEMM.sgemm`).
    func gemm(_ p: GEMMProblem)

    // MARK: Attention

    /// Causal attention forward: output and each row's log-sum-exp (see `Tensor.causalAttention`).
    func attentionForward(_ g: AttentionGeometry, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                          out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>)
    /// Its backward: gradients into dq, dk, dv (each added to, or overwriting, what is there).
    func attentionBackward(_ g: AttentionGeometry, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                           out: UnsafePointer<Float>, lse: UnsafePointer<Float>, dout: UnsafePointer<Float>,
                           dq: (UnsafeMutablePointer<Float>, Bool), dk: (UnsafeMutablePointer<Float>, Bool),
                           dv: (UnsafeMutablePointer<Float>, Bool))
    /// n new queries against a key/value cache (see `CachedAttention.forward`).
    func cachedAttention(q: UnsafePointer<Float>, qStride: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                         rowStride: Int, headStride: Int, start: Int, n: Int, heads: Int, kvHeads: Int, headSize: Int,
                         out: UnsafeMutablePointer<Float>)

    // MARK: Loss

    /// Row softmax of logits (rows × v) into `probabilities`, and each row's loss
    /// logsumexp − logit[target] (returned to the host).
    func softmaxCrossEntropy(logits: UnsafePointer<Float>, probabilities: UnsafeMutablePointer<Float>, rows: Int, columns v: Int,
                             targets: [Int32]) -> [Float]

    // MARK: Optimizer

    /// One AdamW update of every slot (PyTorch's order: decay, then the bias-corrected step).
    func adamW(_ slots: [AdamWSlot], _ step: AdamWStep)
    /// Σ x² over every buffer, summed in Double in an order fixed by the buffers alone.
    func sumOfSquares(_ buffers: [(UnsafePointer<Float>, Int)]) -> Double
    /// x ← s·x.
    func scale(_ x: UnsafeMutablePointer<Float>, count: Int, by s: Float)

    // MARK: Generation

    /// One token id drawn from a row of `count` logits under `rule`.
    func sample(_ logits: UnsafePointer<Float>, count: Int, rule: SamplingRule, rng: inout RandomGenerator) -> Int
    /// A compressed copy of an (out, in) weight that one-token products read.
    func quantize(_ weight: Tensor, to format: WeightFormat) -> any DecodeWeights
}

/// One GEMM call's arguments (see `GEMM.sgemm`).
public struct GEMMProblem {
    public var transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float
    public var a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int
    public var beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, bias: UnsafePointer<Float>?
    /// All arguments.
    public init(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                b: UnsafePointer<Float>, ldb: Int, beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
                bias: UnsafePointer<Float>? = nil) {
        self.transA = transA; self.transB = transB; self.m = m; self.n = n; self.k = k; self.alpha = alpha
        self.a = a; self.lda = lda; self.b = b; self.ldb = ldb; self.beta = beta; self.c = c; self.ldc = ldc; self.bias = bias
    }
}

/// One parameter's AdamW buffers.
public struct AdamWSlot {
    /// Parameter, its gradient, first and second moments (`count` floats each).
    public var parameter: UnsafeMutablePointer<Float>, gradient: UnsafePointer<Float>
    public var m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>
    public var count: Int
    /// 1 − lr·weight decay (1 for parameters that do not decay).
    public var decay: Float
    /// The buffers of one parameter.
    public init(parameter: UnsafeMutablePointer<Float>, gradient: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>,
                v: UnsafeMutablePointer<Float>, count: Int, decay: Float) {
        self.parameter = parameter; self.gradient = gradient; self.m = m; self.v = v; self.count = count; self.decay = decay
    }
}

/// The scalars of one AdamW step: p ← p·decay − stepSize·m / (√v·invSqrtC2 + eps), with the
/// gradient read times `gradScale`.
public struct AdamWStep {
    public var beta1: Float, beta2: Float, eps: Float, stepSize: Float, invSqrtC2: Float, gradScale: Float
    /// All scalars.
    public init(beta1: Float, beta2: Float, eps: Float, stepSize: Float, invSqrtC2: Float, gradScale: Float) {
        self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.stepSize = stepSize
        self.invSqrtC2 = invSqrtC2; self.gradScale = gradScale
    }
}

/// How to pick a token from logits: greedy at temperature 0, else sampled from
/// softmax(logits / temperature), optionally cut to the k most likely and to the nucleus p.
public struct SamplingRule: Sendable, Equatable {
    public var temperature: Float, topK: Int?, topP: Float?
    /// A rule.
    public init(temperature: Float, topK: Int? = nil, topP: Float? = nil) {
        self.temperature = temperature; self.topK = topK; self.topP = topP
    }
}

/// Formats of the compressed weight copies generation reads.
public enum WeightFormat: String, Sendable, CaseIterable {
    /// bfloat16: 2 bytes a weight.
    case bf16
    /// q8_0: 32 signed bytes and one float scale per 32 weights.
    case q8
}

/// The backends by device. The CPU backend is always there; another registers itself
/// (`Backends.register`) when its library loads.
public enum Backends {
    /// The host's backend.
    public static let cpu = CPUBackend()
    private static let lock = NSLock()
    nonisolated(unsafe) private static var others: [Device: any Backend] = [:]

    /// Makes `backend` the one for its device.
    public static func register(_ backend: any Backend) {
        lock.withLock { others[backend.device] = backend }
    }

    /// The backend of `device`, if one is registered.
    public static func backend(for device: Device) -> (any Backend)? {
        if device == .cpu { return cpu }
        return lock.withLock { others[device] }
    }

    /// Devices with a backend, CPU first.
    public static var devices: [Device] {
        [.cpu] + lock.withLock { others.keys.map { $0 } }.sorted { $0.description < $1.description }
    }
}

extension Backend {
    /// `gemm` with `GEMM.sgemm`'s labels.
    @inline(__always)
    func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
               b: UnsafePointer<Float>, ldb: Int, beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
               bias: UnsafePointer<Float>? = nil) {
        gemm(GEMMProblem(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                         beta: beta, c: c, ldc: ldc, bias: bias))
    }
}
