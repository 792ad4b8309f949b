import Foundation

/// Everything a training run needs besides the model and data.
public struct TrainConfig: Sendable {
    /// Optimizer steps.
    public var steps = 3000
    /// Sequences per micro-batch (B).
    public var batchSize = 32
    /// Tokens per sequence (T).
    public var blockSize = 8
    /// Peak learning rate.
    public var learningRate: Float = 1e-2
    /// Final learning rate of the cosine (equal to `learningRate` for constant).
    public var minLearningRate: Float = 1e-2
    /// Linear warmup steps.
    public var warmupSteps = 0
    /// Decoupled weight decay on ≥ 2-D weights.
    public var weightDecay: Float = 0.01
    /// AdamW β₁, β₂.
    public var betas: (Float, Float) = (0.9, 0.999)
    /// Global-norm clip (0 disables).
    public var gradClip: Float = 0
    /// Micro-batches per step.
    public var gradAccum = 1
    /// Data-parallel shards per micro-batch (see `LanguageModel.accumulateGradients`); nil
    /// picks the default (`DataParallel.shards`).
    public var shards: Int?
    /// Steps between evaluations.
    public var evalInterval = 300
    /// Batches per split in each evaluation.
    public var evalIters = 100
    /// Seed for initialisation, batches and dropout.
    public var seed: UInt64 = 1337
    /// Creates the defaults (the bigram's).
    public init() {}

    /// Rejects values no run can use, naming the field (`batch_size`).
    public func validate() throws {
        try require(steps > 0 && steps <= 1 << 40, field: "steps", "must be positive, got \(steps)")
        try require(batchSize > 0 && batchSize <= 1 << 30, field: "batch_size", "must be in 1...\(1 << 30), got \(batchSize)")
        try require(blockSize > 0 && blockSize <= 1 << 20, field: "block_size", "must be in 1...\(1 << 20), got \(blockSize)")
        try require(learningRate > 0 && learningRate.isFinite && learningRate < 10, field: "lr", "must be in (0, 10), got \(learningRate)")
        try require(minLearningRate >= 0 && minLearningRate <= learningRate, field: "min_lr", "must be in [0, lr], got \(minLearningRate)")
        try require(warmupSteps >= 0, field: "warmup_steps", "must not be negative, got \(warmupSteps)")
        try require(weightDecay >= 0 && weightDecay.isFinite, field: "weight_decay", "must not be negative, got \(weightDecay)")
        try require(gradClip >= 0 && gradClip.isFinite, field: "grad_clip", "must not be negative, got \(gradClip)")
        try require(gradAccum > 0 && gradAccum <= 1 << 20, field: "grad_accum", "must be in 1...\(1 << 20), got \(gradAccum)")
        try require(shards.map { $0 > 0 } ?? true, field: "shards", "must be positive, got \(shards ?? 0)")
        try require(evalInterval > 0, field: "eval_interval", "must be positive, got \(evalInterval)")
        try require(evalIters > 0 && evalIters <= 1 << 20, field: "eval_iters", "must be in 1...\(1 << 20), got \(evalIters)")
    }

    /// The learning-rate schedule these settings describe.
    public var schedule: LRSchedule {
        LRSchedule(maxLR: learningRate, minLR: minLearningRate, warmupSteps: warmupSteps, decaySteps: steps)
    }
}

/// One evaluation, as written to `metrics.jsonl`.
public struct EvalRecord: Codable, Equatable, Sendable {
    /// Optimizer steps done.
    public var step: Int
    /// Mean loss over `evalIters` training batches.
    public var train_loss: Float
    /// Mean loss over the validation split (`evalIters` batches, or all of it when smaller).
    public var val_loss: Float
    /// Training throughput since the previous evaluation.
    public var tokens_per_s: Double
    /// Learning rate at this step.
    public var lr: Float
    /// Gradient norm of the last step (before clipping).
    public var grad_norm: Float
    /// Seconds since the run started.
    public var elapsed_s: Double

    /// A record of one evaluation.
    public init(step: Int, train_loss: Float, val_loss: Float, tokens_per_s: Double, lr: Float, grad_norm: Float, elapsed_s: Double) {
        self.step = step; self.train_loss = train_loss; self.val_loss = val_loss; self.tokens_per_s = tokens_per_s
        self.lr = lr; self.grad_norm = grad_norm; self.elapsed_s = elapsed_s
    }
}

/// The training loop shared by every model: batches, AdamW, schedule,
/// clipping, accumulation, periodic evaluation, metrics and checkpoints.
public final class Trainer {
    /// The model being trained.
    public let model: any LanguageModel
    /// Its tokenizer (saved with checkpoints).
    public let tokenizer: any Tokenizer
    /// Settings.
    public let config: TrainConfig
    /// The optimizer.
    public let optimizer: AdamW
    /// Training windows.
    public var trainBatches: Batcher
    /// Validation data.
    public let valSource: any TokenSource
    /// Train data (for evaluation batches).
    public let trainSource: any TokenSource
    /// Steps completed.
    public private(set) var step = 0
    /// Best validation loss.
    public private(set) var bestValLoss: Float?
    /// Every evaluation so far.
    public private(set) var history: [EvalRecord] = []
    /// Dropout randomness.
    public var dropoutRNG: RandomGenerator
    /// Where metrics and checkpoints go (nil: nowhere).
    public var outputDirectory: String?
    /// A folder this run replaces: `outputDirectory` is a temporary sibling of it until the
    /// first save, which swaps it in (so the previous run stays whole until then).
    public var replacing: OutputFolder?
    /// Called with each evaluation and its formatted line (the run's results).
    public var log: (String) -> Void = { print($0) }
    /// Called after every optimizer step (a live progress display decides what to show).
    public var onStep: ((TrainProgress) -> Void)?
    /// Mean training loss every `stepLossInterval` steps (and up to each evaluation), as
    /// written to `train_loss.jsonl` and drawn lightly in `loss.svg`.
    public private(set) var stepLosses: [StepLoss] = []
    /// Indices (in `optimizer.parameters`) of parameters kept fixed.
    public private(set) var frozenIndices: [Int] = []
    /// The loss axis of `loss.svg`.
    public var plotScale: LossPlot.Scale = .auto
    /// Seconds trained before this process (restored by `resume`).
    public private(set) var elapsedBefore: Double = 0
    /// Gradient norm of the last step (restored by `resume`, so the first record after it matches).
    private var lastGradNorm: Float = 0
    /// The processes this run is split over (nil: this one alone). Each computes its slice of
    /// every batch; gradients are summed before each update; only the main process
    /// evaluates, logs and writes.
    public var group: ProcessGroup? {
        didSet { if let group { precondition(config.batchSize % group.size == 0, "batch_size does not split over the processes") } }
    }
    /// Seconds of the last step spent summing gradients across processes.
    public private(set) var lastAllReduceSeconds = 0.0

    /// Sets up a run; throws when the data is too short for the block size.
    public init(model: any LanguageModel, tokenizer: any Tokenizer, train: any TokenSource, val: any TokenSource,
                config: TrainConfig) throws {
        try config.validate()
        if let ctx = model.contextLength, ctx > 1 {
            try require(config.blockSize <= ctx, field: "block_size", "\(config.blockSize) exceeds the model's context of \(ctx)")
        }
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        optimizer = AdamW(model.namedParameters(), betas: config.betas, weightDecay: config.weightDecay)
        trainBatches = try Batcher(source: train, batchSize: config.batchSize, blockSize: config.blockSize,
                                   seed: config.seed &+ 1, name: "the training split")
        _ = try Batcher(source: val, batchSize: config.batchSize, blockSize: config.blockSize, seed: 0,
                        name: "the validation split")
        trainSource = train
        valSource = val
        dropoutRNG = RandomGenerator(seed: config.seed &+ 2)
    }

    /// Keeps the named parameters fixed: their gradients are dropped before clipping and the
    /// update (so neither Adam nor weight decay touches them). Backward still computes them.
    public func freeze(_ names: Set<String>) throws {
        let known = Set(optimizer.names)
        for n in names.sorted() where !known.contains(n) { throw EmeraldError.invalidArgument("no parameter named \(n) to freeze") }
        frozenIndices = optimizer.names.indices.filter { names.contains(optimizer.names[$0]) }
    }

    /// Continues from a checkpoint's optimizer moments and training state.
    public func resume(from ckpt: Checkpoint) throws {
        guard let state = ckpt.state, let moments = ckpt.moments else {
            throw EmeraldError.invalidArgument("checkpoint has no training state to resume from")
        }
        try optimizer.restore(m: moments.m, v: moments.v, stepCount: moments.step)
        step = state.step
        bestValLoss = state.bestValLoss
        trainBatches.rng = state.dataRNG
        dropoutRNG = state.dropoutRNG
        elapsedBefore = state.elapsed ?? 0
        lastGradNorm = state.gradNorm ?? 0
        if let dir = outputDirectory {
            history = Self.readLines(dir + "/metrics.jsonl", as: EvalRecord.self).filter { $0.step < step }
            stepLosses = Self.readLines(dir + "/train_loss.jsonl", as: StepLoss.self).filter { $0.step <= step }
            if state.elapsed == nil, let last = history.last { elapsedBefore = last.elapsed_s }
        }
    }

    /// The JSON lines of `path` that decode as `T` (none when the file is absent).
    static func readLines<T: Decodable>(_ path: String, as: T.Type) -> [T] {
        guard let d = FileManager.default.contents(atPath: path) else { return [] }
        return String(decoding: d, as: UTF8.self).split(separator: "\n").compactMap {
            try? JSONDecoder().decode(T.self, from: Data($0.utf8))
        }
    }

    /// Steps per point of `stepLosses`: about ten points between evaluations, on a divisor
    /// of the evaluation interval so a resumed run (which restarts at an evaluation) logs
    /// the same points as an uninterrupted one.
    public var stepLossInterval: Int {
        let target = Swift.max(1, config.evalInterval / 10)
        return (1...target).last { config.evalInterval % $0 == 0 } ?? 1
    }

    /// Mean loss of each split: over `evalIters` fixed random batches (the same every
    /// evaluation), or, for a split no larger than those batches would sample (the book's
    /// validation tenth), over all of it exactly once (`Batcher.sweep`): no sampling noise,
    /// and cheaper.
    public func estimateLoss() -> (train: Float, val: Float) {
        model.eval()
        defer { model.train() }
        return withNoGrad {
            var rng = RandomGenerator(seed: 0)
            func mean(_ src: any TokenSource, seed: UInt64) -> Float {
                if src.count - 1 <= config.evalIters * config.batchSize * config.blockSize {
                    var total = 0.0, rows = 0
                    for b in Batcher.sweep(src, batchSize: config.batchSize, blockSize: config.blockSize) {
                        total += Double(model.loss(b, rng: &rng).item) * Double(b.batchSize)
                        rows += b.batchSize
                    }
                    return Float(total / Double(rows))
                }
                var b = try! Batcher(source: src, batchSize: config.batchSize, blockSize: config.blockSize, seed: seed)
                var total = 0.0
                for _ in 0..<config.evalIters { total += Double(model.loss(b.next(), rng: &rng).item) }
                return Float(total / Double(config.evalIters))
            }
            return (mean(trainSource, seed: config.seed &+ 3), mean(valSource, seed: config.seed &+ 4))
        }
    }

    /// Data-parallel shards per micro-batch (`DataParallel.shards` for `config.shards`).
    public var shards: Int {
        DataParallel.shards(requested: config.shards, parameterCount: optimizer.parameters.reduce(0) { $0 + $1.count },
                            batchSize: config.batchSize)
    }

    /// One optimizer step over `gradAccum` micro-batches; returns (loss, grad norm).
    @discardableResult
    public func trainStep() -> (loss: Float, gradNorm: Float) {
        optimizer.zeroGrad()
        var total: Float = 0
        let params = optimizer.parameters
        let shards = self.shards
        if let group, group.size > 1 {
            // This process's slice of each batch: every process draws the whole batch (the
            // same generator everywhere) and keeps its rows, so the job sees the batches, and
            // dropout masks, of one process training alone.
            let rows = group.rows(of: config.batchSize), share = Float(rows.count) / Float(config.batchSize)
            for _ in 0..<config.gradAccum {
                let part = trainBatches.next().rows(rows)
                total += share * model.accumulateGradients(part, shards: shards, scale: share / Float(config.gradAccum),
                                                           firstRow: rows.lowerBound, rng: &dropoutRNG)
            }
            // After backward, in buckets: sending each bucket as backward completed it
            // measured no faster here (docs/benchmarks-log.md, "Across processes").
            let before = group.allReduceSeconds
            group.allReduceSum(params.filter { $0.grad != nil }.map { $0.grad! })
            total = group.allReduceSum([total])[0]
            lastAllReduceSeconds = group.allReduceSeconds - before
        } else {
            for _ in 0..<config.gradAccum {
                total += model.accumulateGradients(trainBatches.next(), shards: shards,
                                                   scale: 1 / Float(config.gradAccum), rng: &dropoutRNG)
            }
        }
        for i in frozenIndices { params[i].grad = nil }
        let norm = optimizer.step(lr: config.schedule(step), clippingGradientNormTo: config.gradClip)
        step += 1
        return (total / Float(config.gradAccum), norm)
    }

    /// Runs to `config.steps` (or stops early after `stopAfter` steps, as an
    /// interrupted run would), evaluating every `evalInterval` steps and at the end.
    public func run(stopAfter: Int? = nil) throws {
        model.train()
        let start = Date()
        let firstStep = step
        var windowStart = start, windowStep = step  // throughput since the last evaluation
        var lossSum = 0.0, lossCount = 0
        let tokensPerStep = Double(config.batchSize * config.blockSize * config.gradAccum)
        func flushLoss() {
            if lossCount > 0 { stepLosses.append(StepLoss(step: step, loss: Float(lossSum / Double(lossCount)))) }
            lossSum = 0; lossCount = 0
        }
        let isMain = group?.isMain ?? true
        while true {
            if isMain && (step % config.evalInterval == 0 || step == config.steps) {
                flushLoss()
                let (tr, va) = estimateLoss()
                guard tr.isFinite && va.isFinite else {
                    throw EmeraldError.invalidArgument("training diverged at step \(step) (train loss \(tr), val loss \(va)); lower the learning rate")
                }
                let now = Date()
                let rate = step > windowStep ? Double(step - windowStep) * tokensPerStep / now.timeIntervalSince(windowStart) : 0
                let record = EvalRecord(step: step, train_loss: tr, val_loss: va, tokens_per_s: rate,
                                        lr: config.schedule(Swift.min(step, config.steps - 1)), grad_norm: lastGradNorm,
                                        elapsed_s: elapsedBefore + now.timeIntervalSince(start))
                history.append(record)
                let improved = bestValLoss.map { va < $0 } ?? true
                if improved { bestValLoss = va }
                let eta = step > firstStep ? now.timeIntervalSince(start) / Double(step - firstStep) * Double(config.steps - step) : nil
                log(progressLine(record, eta: eta))
                try persist(record, saveBest: improved)
                windowStart = Date(); windowStep = step
            }
            if step >= config.steps || step >= (stopAfter ?? .max) { break }
            let (loss, norm) = trainStep()
            lastGradNorm = norm
            guard norm.isFinite && loss.isFinite else {
                throw EmeraldError.invalidArgument("training diverged at step \(step) (loss \(loss), gradient norm \(norm)); lower the learning rate")
            }
            lossSum += Double(loss); lossCount += 1
            if step % stepLossInterval == 0 { flushLoss() }
            if let onStep {
                let now = Date()
                let rate = Double(step - windowStep) * tokensPerStep / Swift.max(now.timeIntervalSince(windowStart), 1e-9)
                let perStep = now.timeIntervalSince(start) / Double(step - firstStep)
                onStep(TrainProgress(step: step, steps: config.steps, loss: loss, tokensPerSecond: rate,
                                     elapsed: elapsedBefore + now.timeIntervalSince(start),
                                     eta: perStep * Double(config.steps - step)))
            }
        }
    }

    private func progressLine(_ r: EvalRecord, eta: Double?) -> String {
        let width = String(config.steps).count
        let stepStr = String(repeating: " ", count: Swift.max(0, width - String(r.step).count)) + String(r.step)
        let rate = r.tokens_per_s > 0 ? formatCount(r.tokens_per_s) + " tok/s" : "    — tok/s"
        return String(format: "step %@/%d | train %.4f | val %.4f | lr %.2e | %@ | %@ elapsed, ETA %@",
                      stepStr, config.steps, r.train_loss, r.val_loss, r.lr, pad(rate, 12),
                      pad(formatDuration(r.elapsed_s), 7), eta.map(formatDuration) ?? "—")
    }

    private func persist(_ record: EvalRecord, saveBest: Bool) throws {
        guard let dir = outputDirectory else { return }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let lines = try history.map { String(decoding: try enc.encode($0), as: UTF8.self) }.joined(separator: "\n") + "\n"
        try AtomicFile.write(Data(lines.utf8), to: dir + "/metrics.jsonl")
        let steps = try stepLosses.map { String(decoding: try enc.encode($0), as: UTF8.self) }.joined(separator: "\n")
        try AtomicFile.write(Data((steps.isEmpty ? "" : steps + "\n").utf8), to: dir + "/train_loss.jsonl")
        try AtomicFile.write(Data(LossPlot.svg(history, stepLosses: stepLosses, scale: plotScale).utf8), to: dir + "/loss.svg")
        let state = TrainState(step: step, bestValLoss: bestValLoss, dataRNG: trainBatches.rng, dropoutRNG: dropoutRNG,
                               elapsed: record.elapsed_s, gradNorm: lastGradNorm)
        let ckpt = Checkpoint(model: model, tokenizer: tokenizer, state: state)
        if saveBest { try ckpt.save(to: dir + "/best") }
        if step == config.steps || step % config.evalInterval == 0 {
            try ckpt.save(to: dir + "/checkpoint", optimizer: optimizer)
        }
        if let folder = replacing {
            try folder.replace(with: dir)
            outputDirectory = folder.path
            replacing = nil
        }
    }
}

/// A mean training loss over the steps since the previous point (`train_loss.jsonl`).
public struct StepLoss: Codable, Equatable, Sendable {
    /// Optimizer steps done.
    public var step: Int
    /// Mean training loss of the steps since the previous point.
    public var loss: Float

    /// A point of the training-loss curve.
    public init(step: Int, loss: Float) { self.step = step; self.loss = loss }
}

/// Where a run stands after a step, for progress displays.
public struct TrainProgress: Sendable {
    /// Steps done and planned.
    public var step: Int, steps: Int
    /// This step's training loss.
    public var loss: Float
    /// Training throughput since the last evaluation.
    public var tokensPerSecond: Double
    /// Seconds trained, earlier sessions of a resumed run included.
    public var elapsed: Double
    /// Estimated seconds to the end, from this process's pace (evaluations included).
    public var eta: Double
}

/// `s` padded with spaces on the left to `width` characters.
public func pad(_ s: String, _ width: Int) -> String {
    String(repeating: " ", count: Swift.max(0, width - s.count)) + s
}

/// "12.3k" style counts.
public func formatCount(_ x: Double) -> String {
    x >= 1e6 ? String(format: "%.2fM", x / 1e6) : x >= 1e3 ? String(format: "%.1fk", x / 1e3) : String(format: "%.0f", x)
}

/// "1:02:03" / "2:03" / "4.1s".
public func formatDuration(_ s: Double) -> String {
    if s < 60 { return String(format: "%.1fs", s) }
    let t = Int(s.rounded())
    return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
}
