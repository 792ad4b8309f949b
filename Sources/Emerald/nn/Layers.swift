/// y = x Wᵀ + b, with W stored (out, in) as in `torch.nn.Linear`.
public final class Linear: Module {
    /// (outFeatures, inFeatures).
    public let weight: Tensor
    /// (outFeatures), or nil without bias.
    public let bias: Tensor?
    /// The compressed copy of `weight` generation reads (see `setDecodePrecision`).
    public private(set) var decodeCopy: (any DecodeWeights)?

    /// Weights drawn N(0, std²) (GPT-2 uses 0.02); bias zero.
    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, std: Float = 0.02,
                rng: inout RandomGenerator) {
        weight = .randn([outFeatures, inFeatures], std: std, using: &rng, requiresGrad: true)
        self.bias = bias ? .zeros([outFeatures], requiresGrad: true) : nil
    }

    /// Applies the layer to the last axis of `x`.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.linear(weight: weight, bias: bias, decodeCopy: decodeCopy)
    }

    /// Keeps a copy of the weight in `precision` for one-token products.
    public override func setDecodePrecision(_ precision: DecodePrecision) {
        decodeCopy = precision.copy(of: weight)
    }
}

/// A lookup table of `count` vectors of size `dim`.
public final class Embedding: Module {
    /// (count, dim).
    public let weight: Tensor

    /// Entries drawn N(0, std²).
    public init(_ count: Int, _ dim: Int, std: Float = 0.02, rng: inout RandomGenerator) {
        weight = .randn([count, dim], std: std, using: &rng, requiresGrad: true)
    }

    /// The copy of the table `asLinear` reads while generating (see `setDecodePrecision(asHead:)`).
    public private(set) var headCopy: (any DecodeWeights)?

    /// Rows for `ids`, shaped `shape + [dim]`.
    public func callAsFunction(_ ids: [Int32], shape: [Int]) -> Tensor {
        weight.indexSelect(ids, shape: shape)
    }

    /// x (…, dim) · tableᵀ: the table used as an output layer (a tied LM head).
    public func asLinear(_ x: Tensor) -> Tensor {
        x.linear(weight: weight, bias: nil, decodeCopy: headCopy)
    }

    /// Keeps a copy of the table in `precision` for `asLinear`'s one-token products (lookups
    /// keep reading the fp32 table).
    public func setDecodePrecision(asHead precision: DecodePrecision) {
        headCopy = precision.copy(of: weight)
    }
}

/// Layer normalisation over the last axis with learned scale and shift.
public final class LayerNorm: Module {
    /// Scale γ, initialised to ones.
    public let weight: Tensor
    /// Shift β, zeros (nil without bias).
    public let bias: Tensor?
    /// Added to the variance.
    public let eps: Float

    /// A LayerNorm over `dim` features.
    public init(_ dim: Int, eps: Float = 1e-5, bias: Bool = true) {
        weight = .ones([dim], requiresGrad: true)
        self.bias = bias ? .zeros([dim], requiresGrad: true) : nil
        self.eps = eps
    }

    /// Normalises `x` along its last axis.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.layerNorm(weight: weight, bias: bias, eps: eps)
    }
}

/// Root-mean-square normalisation over the last axis with a learned scale (Llama's RMSNorm).
public final class RMSNorm: Module {
    /// Scale, initialised to ones.
    public let weight: Tensor
    /// Added to the mean square.
    public let eps: Float

    /// An RMSNorm over `dim` features.
    public init(_ dim: Int, eps: Float = 1e-6) {
        weight = .ones([dim], requiresGrad: true)
        self.eps = eps
    }

    /// Normalises `x` along its last axis.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.rmsNorm(weight: weight, eps: eps)
    }
}

/// Zeroes activations with probability `p` while training.
public final class Dropout: Module {
    /// Drop probability.
    public let p: Float

    /// Dropout with probability `p`.
    public init(_ p: Float) { self.p = p }

    /// Identity in eval mode.
    public func callAsFunction(_ x: Tensor, rng: inout RandomGenerator) -> Tensor {
        isTraining && p > 0 ? x.dropout(p, using: &rng) : x
    }
}

/// Activation functions selectable in configs.
public enum Activation: String, Codable, CaseIterable, Sendable {
    /// GELU, tanh approximation (GPT-2's `gelu_new`).
    case gelu
    /// max(x, 0), as in the guide.
    case relu
    /// Logistic sigmoid.
    case sigmoid
    /// Hyperbolic tangent.
    case tanh
    /// x·sigmoid(x).
    case silu

    /// Applies the activation.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        switch self {
        case .gelu: return x.gelu()
        case .relu: return x.relu()
        case .sigmoid: return x.sigmoid()
        case .tanh: return x.tanh()
        case .silu: return x.silu()
        }
    }
}
