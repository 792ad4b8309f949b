/// A token stream to draw training windows from.
public protocol TokenSource: Sendable {
    /// Number of tokens.
    var count: Int { get }
    /// Copies `n` tokens starting at `offset` into `out`.
    func copy(from offset: Int, count n: Int, into out: UnsafeMutablePointer<Int32>)
}

/// Tokens held in memory (small corpora such as the book).
public struct TokenArray: TokenSource {
    /// The ids.
    public let tokens: [Int32]
    /// Wraps `tokens`.
    public init(_ tokens: [Int32]) { self.tokens = tokens }
    /// Number of ids.
    public var count: Int { tokens.count }
    /// Copies a window.
    public func copy(from offset: Int, count n: Int, into out: UnsafeMutablePointer<Int32>) {
        tokens.withUnsafeBufferPointer { out.update(from: $0.baseAddress! + offset, count: n) }
    }
}

/// Splits a token array into train and validation parts: the first
/// `1 − valFraction` for training, the rest for validation, as in the guide.
public func trainValSplit(_ tokens: [Int32], valFraction: Double = 0.1) -> (train: TokenArray, val: TokenArray) {
    let n = Int(Double(tokens.count) * (1 - valFraction))
    return (TokenArray(Array(tokens[..<n])), TokenArray(Array(tokens[n...])))
}

/// One batch of `batchSize` windows of `blockSize` tokens; targets are the
/// inputs shifted by one.
public struct Batch {
    /// Input ids, row-major (B, T).
    public var inputs: [Int32]
    /// Next-token ids, row-major (B, T).
    public var targets: [Int32]
    /// B.
    public let batchSize: Int
    /// T.
    public let blockSize: Int

    /// A batch of `batchSize` rows of `blockSize` ids each.
    public init(inputs: [Int32], targets: [Int32], batchSize: Int, blockSize: Int) {
        precondition(inputs.count == batchSize * blockSize && targets.count == inputs.count,
                     "a (\(batchSize), \(blockSize)) batch needs \(batchSize * blockSize) inputs and targets")
        self.inputs = inputs
        self.targets = targets
        self.batchSize = batchSize
        self.blockSize = blockSize
    }
}

/// Draws random (B, T) windows from a token source with its own seeded generator.
public struct Batcher {
    /// Where windows come from.
    public let source: any TokenSource
    /// B.
    public let batchSize: Int
    /// T.
    public let blockSize: Int
    /// Generator state (saved in checkpoints so resumed runs see the same batches).
    public var rng: RandomGenerator

    /// Checks the source can hold at least one window.
    public init(source: any TokenSource, batchSize: Int, blockSize: Int, seed: UInt64, name: String = "data") throws {
        try require(batchSize > 0, "batch size must be positive, got \(batchSize)")
        try require(blockSize > 0, "block size must be positive, got \(blockSize)")
        try require(source.count > blockSize,
                    "block size \(blockSize) needs more than \(blockSize) tokens of \(name), which has \(source.count)")
        self.source = source
        self.batchSize = batchSize
        self.blockSize = blockSize
        rng = RandomGenerator(seed: seed)
    }

    /// The next random batch.
    public mutating func next() -> Batch {
        var starts = [Int](repeating: 0, count: batchSize)
        for row in 0..<batchSize { starts[row] = rng.nextInt(below: source.count - blockSize) }
        return Batcher.windows(of: source, at: starts, blockSize: blockSize)
    }

    /// The batch of T-token windows of `source` starting at `starts` (one row each), with
    /// next-token targets.
    static func windows(of source: any TokenSource, at starts: [Int], blockSize t: Int) -> Batch {
        let b = starts.count
        var inputs = [Int32](repeating: 0, count: b * t)
        var targets = [Int32](repeating: 0, count: b * t)
        var window = [Int32](repeating: 0, count: t + 1)
        for (row, start) in starts.enumerated() {
            window.withUnsafeMutableBufferPointer { source.copy(from: start, count: t + 1, into: $0.baseAddress!) }
            for j in 0..<t { inputs[row * t + j] = window[j]; targets[row * t + j] = window[j + 1] }
        }
        return Batch(inputs: inputs, targets: targets, batchSize: b, blockSize: t)
    }
}

extension Batcher {
    /// Every target of `source` exactly once: consecutive windows starting at 0, T, 2T, …,
    /// B per batch (the last batch may be shorter). The fewer than T tokens after the last
    /// whole window are left out. Each window's targets see contexts 0…T−1, as random
    /// windows do on average, so the mean loss over a sweep estimates the same quantity
    /// without sampling noise.
    public static func sweep(_ source: any TokenSource, batchSize: Int, blockSize: Int) -> [Batch] {
        let t = blockSize, whole = (source.count - 1) / t
        return stride(from: 0, to: whole, by: batchSize).map { w in
            windows(of: source, at: (w..<Swift.min(w + batchSize, whole)).map { $0 * t }, blockSize: t)
        }
    }
}
