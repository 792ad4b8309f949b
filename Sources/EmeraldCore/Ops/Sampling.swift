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
    /// One token id per row of these logits (S, V): row s drawn under `rules[s]` with
    /// `generators[s]`, exactly as `sample` draws from that row alone.
    public func sampleRows(_ rules: [SamplingRule], generators: inout [RandomGenerator]) -> [Int] {
        let v = shape.last!, rows = count / Swift.max(v, 1)
        precondition(rules.count == rows && generators.count == rows, "sampling \(rows) rows needs one rule and generator each")
        return (0..<rows).map { s in backend.sample(UnsafePointer(data + s * v), count: v, rule: rules[s], rng: &generators[s]) }
    }

    /// Whether each row (…, V) holds only finite numbers.
    public var finiteRows: [Bool] {
        let v = shape.last!
        return (0..<(count / Swift.max(v, 1))).map { backend.allFinite(data + $0 * v, count: v) }
    }
}

extension Tensor {
    /// Whether every element is a finite number (no NaN, no infinity).
    public var isFinite: Bool { backend.allFinite(data, count: count) }
}
