/// Elementwise functions a backend applies (forward and backward).
public enum UnaryOp: Sendable, CaseIterable {
    case exp, log, sqrt, square, tanh, sigmoid, relu, silu
    /// GELU, tanh approximation (GPT-2's `gelu_new`).
    case gelu
}

/// Elementwise binary operators (same-shape operands; broadcasting is `broadcast` first).
public enum BinaryOp: Sendable, CaseIterable {
    case add, subtract, multiply, divide
}

/// One GEMM call's arguments (see `GEMM.sgemm`).
public struct GEMMProblem {
    public var transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float
    public var a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int
    public var beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, bias: UnsafePointer<Float>?
    /// Each row of C must come from its row of A by the same arithmetic whatever `m` is, so a
    /// sequence decoded in a batch gets the very logits it gets alone (x·Wᵀ only: A not
    /// transposed, B transposed).
    public var rowInvariant: Bool
    /// All arguments.
    public init(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                b: UnsafePointer<Float>, ldb: Int, beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
                bias: UnsafePointer<Float>? = nil, rowInvariant: Bool = false) {
        precondition(!rowInvariant || (!transA && transB), "a row-invariant product is x·Wᵀ")
        self.transA = transA; self.transB = transB; self.m = m; self.n = n; self.k = k; self.alpha = alpha
        self.a = a; self.lda = lda; self.b = b; self.ldb = ldb; self.beta = beta; self.c = c; self.ldc = ldc; self.bias = bias
        self.rowInvariant = rowInvariant
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

/// The shapes of one attention call, as every backend's kernels receive them.
public struct AttentionGeometry: Sendable {
    /// Batch, time, query heads, key/value heads, head size.
    public let b: Int, t: Int, heads: Int, kvHeads: Int, hs: Int
    /// Row strides of q, k and v (and of their gradients, laid out alike).
    public let ldq: Int, ldk: Int, ldv: Int
    /// Attention-probability dropout and the seed of its mask.
    public let dropout: Float, seed: UInt64
    /// Index of this call's first (batch, head) pair in the mask's positions.
    public let firstPair: Int
    /// Output channels.
    public var c: Int { heads * hs }
    /// Query heads per key/value head.
    public var group: Int { heads / kvHeads }
    /// 1/√hs.
    public var scale: Float { 1 / Float(hs).squareRoot() }
}
