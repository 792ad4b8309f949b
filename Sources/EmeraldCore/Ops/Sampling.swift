extension Tensor {
    /// One token id drawn from the last row of these logits (…, V) under `rule`, by this
    /// tensor's backend.
    public func sample(_ rule: SamplingRule, rng: inout RandomGenerator) -> Int {
        let v = shape.last!
        precondition(v > 0 && count >= v, "sampling needs a row of logits, got \(shape)")
        return backend.sample(UnsafePointer(data + (count - v)), count: v, rule: rule, rng: &rng)
    }
}

extension Tensor {
    /// Whether every element is a finite number (no NaN, no infinity).
    public var isFinite: Bool { backend.allFinite(data, count: count) }
}
