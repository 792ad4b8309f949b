extension Tensor {
    /// Tensor filled with `value`.
    public static func full(_ shape: [Int], _ value: Float, requiresGrad: Bool = false) -> Tensor {
        full(shape, value, on: Backends.cpu, requiresGrad: requiresGrad)
    }

    /// Tensor filled with `value` on `backend`'s device.
    public static func full(_ shape: [Int], _ value: Float, on backend: any Backend, requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(uninitialized: shape, on: backend)
        backend.fill(t.data, count: t.count, value: value)
        t.requiresGrad = requiresGrad
        return t
    }

    /// Zeros.
    public static func zeros(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        full(shape, 0, requiresGrad: requiresGrad)
    }

    /// Ones.
    public static func ones(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        full(shape, 1, requiresGrad: requiresGrad)
    }

    /// While true (see `withoutRandomInitialization`), `randn` and `uniform` return zeros.
    @TaskLocal public static var skipsRandomInitialization = false

    /// Builds something (a model about to receive loaded weights) without drawing random
    /// numbers: `randn`/`uniform` give zeros inside `body`. Initialising GPT-2 124M draws
    /// 124M normals (~4 s); loading then overwrites every one.
    public static func withoutRandomInitialization<T>(_ body: () throws -> T) rethrows -> T {
        try $skipsRandomInitialization.withValue(true, operation: body)
    }

    /// Normal samples with the given mean and standard deviation.
    public static func randn(_ shape: [Int], mean: Float = 0, std: Float = 1,
                             using rng: inout RandomGenerator, requiresGrad: Bool = false) -> Tensor {
        if skipsRandomInitialization { return zeros(shape, requiresGrad: requiresGrad) }
        let t = Tensor(uninitialized: shape)
        rng.fillNormals(t.data, count: t.count, mean: mean, std: std)
        t.requiresGrad = requiresGrad
        return t
    }

    /// Uniform samples in `low..<high`.
    public static func uniform(_ shape: [Int], low: Float = 0, high: Float = 1,
                               using rng: inout RandomGenerator, requiresGrad: Bool = false) -> Tensor {
        if skipsRandomInitialization { return zeros(shape, requiresGrad: requiresGrad) }
        let t = Tensor(uninitialized: shape)
        for i in 0..<t.count { t.data[i] = low + (high - low) * rng.nextFloat() }
        t.requiresGrad = requiresGrad
        return t
    }

    /// `[start, start+step, …]` below `end`.
    public static func arange(_ start: Float = 0, _ end: Float, step: Float = 1) -> Tensor {
        precondition(step != 0, "arange step must be non-zero")
        let n = Swift.max(0, Int(((end - start) / step).rounded(.up)))
        let t = Tensor(uninitialized: [n])
        for i in 0..<n { t.data[i] = start + Float(i) * step }
        return t
    }

    /// `[0, 1, …, end−1]` (the default `start` above cannot be used positionally).
    public static func arange(_ end: Float) -> Tensor { arange(0, end) }

    /// Lower-triangular ones (`n × n`), the causal mask.
    public static func tril(_ n: Int) -> Tensor {
        let t = zeros([n, n])
        for i in 0..<n { for j in 0...i { t.data[i * n + j] = 1 } }
        return t
    }

    /// Tensor of integer ids stored as floats (the index ops read them back exactly up to 2^24).
    public static func ids(_ values: [Int], shape: [Int]) -> Tensor {
        Tensor(values.map(Float.init), shape: shape)
    }
}
