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
    /// x[0..<count] = value.
    func fill(_ x: UnsafeMutablePointer<Float>, count: Int, value: Float)
    /// Rows of `cols` floats from `src` (rows `srcStride` apart) to `dst` (`dstStride` apart),
    /// copied or, with `accumulate`, added: slicing, concatenation and their gradients.
    func copyRows(_ src: UnsafePointer<Float>, srcStride: Int, to dst: UnsafeMutablePointer<Float>, dstStride: Int,
                  rows: Int, cols: Int, accumulate: Bool)

    // MARK: Elementwise

    /// y = f(x).
    func unary(_ op: UnaryOp, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int)
    /// dx = g·f′(x), given x, y = f(x) and g.
    func unaryBackward(_ op: UnaryOp, x: UnsafePointer<Float>, y: UnsafePointer<Float>, g: UnsafePointer<Float>,
                       into dx: UnsafeMutablePointer<Float>, count: Int)
    /// c = a ∘ b.
    func binary(_ op: BinaryOp, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into c: UnsafeMutablePointer<Float>, count: Int)
    /// The gradient of side 0 (a) or 1 (b) of c = a ∘ b, from g.
    func binaryBackward(_ op: BinaryOp, side: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, g: UnsafePointer<Float>,
                        into d: UnsafeMutablePointer<Float>, count: Int)
    /// c[r] = a[r] + b for each of `rows` rows of `count` floats (a bias or position table
    /// repeated along leading dimensions).
    func addRows(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into c: UnsafeMutablePointer<Float>, rows: Int, count: Int)
    /// y = s·x (y may be x).
    func scale(_ x: UnsafePointer<Float>, by s: Float, into y: UnsafeMutablePointer<Float>, count: Int)
    /// y = x + s.
    func shift(_ x: UnsafePointer<Float>, by s: Float, into y: UnsafeMutablePointer<Float>, count: Int)
    /// x (shape `from`) repeated to shape `to` (NumPy broadcasting).
    func broadcast(_ x: UnsafePointer<Float>, from: [Int], into y: UnsafeMutablePointer<Float>, to: [Int])
    /// The sum of x (shape `from`) over the dimensions broadcasting added to reach it, into y (shape `to`).
    func reduceBroadcast(_ x: UnsafePointer<Float>, from: [Int], into y: UnsafeMutablePointer<Float>, to: [Int])
    /// y = x with its axes permuted (y's axis i is x's axis perm[i]).
    func permute(_ x: UnsafePointer<Float>, shape: [Int], perm: [Int], into y: UnsafeMutablePointer<Float>)
    /// Elements of x (rows of `period`) replaced by `value` where mask (`period` floats) is non-zero.
    func maskedFill(_ x: UnsafePointer<Float>, mask: UnsafePointer<Float>, period: Int, value: Float,
                    into y: UnsafeMutablePointer<Float>, count: Int)
    /// y = x·keep, keep 0 with probability p else 1/(1−p), from a hash of (seed, offset + i).
    func dropout(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int, p: Float, seed: UInt32, offset: Int)
    /// SwiGLU: y = silu(gate)·up, elementwise.
    func swigluForward(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int)
    /// Its backward: dGate = g·up·silu′(gate), dUp = g·silu(gate) (each when wanted).
    func swigluBackward(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, g: UnsafePointer<Float>,
                        dGate: UnsafeMutablePointer<Float>?, dUp: UnsafeMutablePointer<Float>?, count: Int)
    /// Rotary embedding (`Tensor.rotaryEmbedding`): channel pairs of each head turned by
    /// (cos, sign·sin) of their row's position (tables of time × half).
    func rotary(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, rows: Int, time: Int, heads: Int, half: Int,
                cos: [Float], sin: [Float], sign: Float)

    // MARK: Reductions

    /// Σ x (to the host).
    func sum(_ x: UnsafePointer<Float>, count: Int) -> Float
    /// y[o, j] = Σ_i x[o, i, j] for x (outer, n, inner).
    func sumAxis(_ x: UnsafePointer<Float>, outer: Int, n: Int, inner: Int, into y: UnsafeMutablePointer<Float>)
    /// y[j] = beta·y[j] + Σ_r x[r, j] (a bias gradient).
    func sumRows(_ x: UnsafePointer<Float>, rows: Int, cols: Int, into y: UnsafeMutablePointer<Float>, beta: Float)
    /// y[o, j] = max_i x[o, i, j]; returns the arg max of each (to the host).
    func maxAxis(_ x: UnsafePointer<Float>, outer: Int, n: Int, inner: Int, into y: UnsafeMutablePointer<Float>) -> [Int]
    /// dx[o, arg, j] += g[o, j].
    func maxAxisBackward(_ g: UnsafePointer<Float>, arg: [Int], outer: Int, n: Int, inner: Int, into dx: UnsafeMutablePointer<Float>)
    /// The index of each row's largest entry (first on ties), to the host.
    func argmax(_ x: UnsafePointer<Float>, rows: Int, columns: Int) -> [Int]

    // MARK: Indexing

    /// out[i] = table[ids[i]] (rows of `columns`).
    func gatherRows(_ table: UnsafePointer<Float>, columns: Int, ids: [Int32], into out: UnsafeMutablePointer<Float>)
    /// table[ids[i]] += g[i].
    func scatterAddRows(_ g: UnsafePointer<Float>, columns: Int, ids: [Int32], into table: UnsafeMutablePointer<Float>)
    /// out[r] = x[r, index[r]] for rows of n.
    func gatherColumns(_ x: UnsafePointer<Float>, n: Int, index: [Int32], into out: UnsafeMutablePointer<Float>)
    /// dx[r, index[r]] += g[r].
    func scatterAddColumns(_ g: UnsafePointer<Float>, n: Int, index: [Int32], into dx: UnsafeMutablePointer<Float>)

    // MARK: Normalisation and softmax

    /// LayerNorm of rows of c: y, and (mean, rstd) per row in `stats`.
    func layerNormForward(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                          into y: UnsafeMutablePointer<Float>, stats: UnsafeMutablePointer<Float>, rows: Int, c: Int, eps: Float)
    /// Its backward: dx (when wanted) and fresh dw, db.
    func layerNormBackward(_ x: UnsafePointer<Float>, g: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                           stats: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>,
                           db: UnsafeMutablePointer<Float>, rows: Int, c: Int)
    /// RMSNorm of rows of c: y = x·rstd·w with rstd = 1/√(mean(x²) + eps), kept per row in `rstd`.
    func rmsNormForward(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>,
                        rstd: UnsafeMutablePointer<Float>, rows: Int, c: Int, eps: Float)
    /// Its backward: dx (when wanted) and a fresh dw.
    func rmsNormBackward(_ x: UnsafePointer<Float>, g: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                         rstd: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>,
                         rows: Int, c: Int)
    /// Row softmax (rows of n).
    func softmax(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, rows: Int, n: Int)
    /// dx = y ⊙ (g − Σ g⊙y) per row.
    func softmaxBackward(y: UnsafePointer<Float>, g: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>, rows: Int, n: Int)
    /// Row log-softmax.
    func logSoftmax(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, rows: Int, n: Int)
    /// dx = g − softmax·Σ g per row, from y = log-softmax.
    func logSoftmaxBackward(y: UnsafePointer<Float>, g: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>, rows: Int, n: Int)
    /// Probabilities (rows × v) become the cross-entropy gradient: (p − onehot(target))·scale.
    func crossEntropyBackward(_ probabilities: UnsafeMutablePointer<Float>, rows: Int, columns v: Int, targets: [Int32], scale: Float)
    /// logsumexp(row) − row[target] per row (NaN where the target is nil), to the host.
    func rowLosses(_ x: UnsafePointer<Float>, rows: Int, columns v: Int, targets: [Int32?]) -> [Float]
    /// Whether every element is finite (to the host).
    func allFinite(_ x: UnsafePointer<Float>, count: Int) -> Bool

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
    /// Several sequences' new queries, each against its own cache, in one call (see
    /// `CachedAttention.forward(q:qStride:sequences:rowStride:heads:kvHeads:headSize:out:)`).
    func cachedAttention(q: UnsafePointer<Float>, qStride: Int, sequences: [CachedSequence], rowStride: Int, heads: Int,
                         kvHeads: Int, headSize: Int, out: UnsafeMutablePointer<Float>)

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

    // MARK: Generation

    /// One token id drawn from a row of `count` logits under `rule`.
    func sample(_ logits: UnsafePointer<Float>, count: Int, rule: SamplingRule, rng: inout RandomGenerator) -> Int
    /// A compressed copy of an (out, in) weight that one-token products read.
    func quantize(_ weight: Tensor, to format: WeightFormat) -> any DecodeWeights
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

/// One sequence's part of a batched cached attention: its query rows `row ..< row + n` (of q
/// and out) at positions `start ..< start + n`, and its cache (`CachedAttention.forward`'s k, v
/// and headStride, in entries of `storage`: bf16 entries are UInt16 bit patterns at k and v).
public struct CachedSequence {
    public var row: Int, n: Int, start: Int
    public var k: UnsafePointer<Float>, v: UnsafePointer<Float>, headStride: Int
    public var storage: KVStorage

    public init(row: Int, n: Int, start: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>, headStride: Int,
                storage: KVStorage = .fp32) {
        self.row = row; self.n = n; self.start = start; self.k = k; self.v = v; self.headStride = headStride
        self.storage = storage
    }
}

extension Backend {
    /// One `cachedAttention` per sequence: what a backend without a batched kernel does.
    public func cachedAttention(q: UnsafePointer<Float>, qStride: Int, sequences: [CachedSequence], rowStride: Int, heads: Int,
                                kvHeads: Int, headSize: Int, out: UnsafeMutablePointer<Float>) {
        for s in sequences {
            precondition(s.storage == .fp32, "\(device): no bf16 key/value caches")
            cachedAttention(q: q + s.row * qStride, qStride: qStride, k: s.k, v: s.v, rowStride: rowStride, headStride: s.headStride,
                            start: s.start, n: s.n, heads: heads, kvHeads: kvHeads, headSize: headSize,
                            out: out + s.row * heads * headSize)
        }
    }

    /// `gemm` with `GEMM.sgemm`'s labels.
    @inline(__always)
    func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
               b: UnsafePointer<Float>, ldb: Int, beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
               bias: UnsafePointer<Float>? = nil, rowInvariant: Bool = false) {
        gemm(GEMMProblem(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                         beta: beta, c: c, ldc: ldc, bias: bias, rowInvariant: rowInvariant))
    }
}
