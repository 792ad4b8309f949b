/// Base class of every layer and model.
///
/// Parameters are found by reflection: any stored `Tensor` property with
/// `requiresGrad` (a parameter), any `Module` property (a child) and any
/// `[Module]` property (children named `0`, `1`, …). Names join with dots,
/// PyTorch state-dict style, so `transformer.h.0.attn.c_attn.weight` maps 1:1
/// to Hugging Face keys.
open class Module {
    /// Training mode enables dropout.
    public private(set) var isTraining = true

    /// Creates a module in training mode.
    public init() {}

    /// Child modules with their property names, in declaration order.
    public func namedChildren() -> [(String, Module)] {
        var out: [(String, Module)] = []
        visitProperties { label, value in
            if let m = value as? Module { out.append((label, m)) }
            else if let ms = value as? [Module] {
                for (i, m) in ms.enumerated() { out.append(("\(label).\(i)", m)) }
            }
        }
        return out
    }

    /// Every parameter below this module, with its dotted name.
    public func namedParameters(prefix: String = "") -> [(name: String, tensor: Tensor)] {
        var out: [(name: String, tensor: Tensor)] = []
        visitProperties { label, value in
            let name = prefix.isEmpty ? label : "\(prefix).\(label)"
            if let t = value as? Tensor, t.requiresGrad { out.append((name, t)) }
            else if let m = value as? Module { out += m.namedParameters(prefix: name) }
            else if let ms = value as? [Module] {
                for (i, m) in ms.enumerated() { out += m.namedParameters(prefix: "\(name).\(i)") }
            }
        }
        return out
    }

    /// Parameters in a stable order.
    public var parameters: [Tensor] { namedParameters().map(\.tensor) }

    /// Total number of scalar parameters.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }

    /// Sets training (dropout on) or evaluation mode recursively.
    public func train(_ on: Bool = true) {
        isTraining = on
        for (_, c) in namedChildren() { c.train(on) }
    }

    /// Evaluation mode (dropout off).
    public func eval() { train(false) }

    /// Gives the layers below this module that multiply by weights (Linear, and a token
    /// embedding that doubles as the LM head) a bfloat16 or 8-bit copy of them, which
    /// products of at most 4 rows read while no gradient is recorded (generating one token at
    /// a time); `.fp32` drops the copies. Prompts, training and scoring keep using the fp32
    /// weights. Call it again after the weights change.
    open func setDecodePrecision(_ precision: DecodePrecision) {
        for (_, child) in namedChildren() { child.setDecodePrecision(precision) }
    }

    /// Moves every parameter to `device` (its backend must be registered) and drops the
    /// decode copies; optimizers and caches made after it follow the parameters.
    public func to(_ device: Device) {
        for (_, p) in namedParameters() { p.move(to: device) }
        setDecodePrecision(.fp32)
    }

    /// Clears every parameter's gradient.
    public func zeroGrad() { for p in parameters { p.grad = nil } }

    private func visitProperties(_ body: (String, Any) -> Void) {
        var mirror: Mirror? = Mirror(reflecting: self)
        var levels: [Mirror] = []
        while let m = mirror { levels.append(m); mirror = m.superclassMirror }
        for m in levels.reversed() {
            for child in m.children {
                guard let label = child.label else { continue }
                body(label, child.value)
            }
        }
    }
}
