/// Optimizer updates over many tensors at once, by their backend (all on one device).
public enum Optimizer {
    /// One AdamW step over every parameter that has a gradient: moments m, v updated in
    /// place, the parameter decayed by `decays[i]` (1 − lr·wd, or 1) and moved.
    public static func adamW(parameters: [Tensor], m: [Tensor], v: [Tensor], decays: [Float], step: AdamWStep) {
        var slots: [AdamWSlot] = []
        for (i, p) in parameters.enumerated() {
            guard let g = p.grad else { continue }
            slots.append(AdamWSlot(parameter: p.data, gradient: g.data, m: m[i].data, v: v[i].data, count: p.count, decay: decays[i]))
        }
        guard let backend = parameters.first?.backend else { return }
        backend.adamW(slots, step)
    }

    /// √(Σ x²) over every tensor, summed in Double in an order fixed by their sizes.
    public static func globalNorm(_ tensors: [Tensor]) -> Float {
        guard let backend = tensors.first?.backend else { return 0 }
        return Float(backend.sumOfSquares(tensors.map { (UnsafePointer($0.data), $0.count) }).squareRoot())
    }

    /// x ← s·x for every tensor.
    public static func scale(_ tensors: [Tensor], by s: Float) {
        for t in tensors { t.backend.scale(t.data, by: s, into: t.data, count: t.count) }
    }
}
