import Foundation

/// The training settings each model kind starts from; flags override single fields.
public enum Recipe {
    /// `emerald train --model bigram`: the guide's first model.
    public static let bigram: TrainConfig = {
        var c = TrainConfig()
        c.steps = 3000; c.batchSize = 32; c.blockSize = 8; c.learningRate = 1e-2; c.minLearningRate = 1e-2
        c.evalInterval = 300; c.evalIters = 100
        return c
    }()

    /// `emerald train` (GPT, preset oz): AdamW (0.9, 0.99), wd 0.1, lr 3e-3 → 3e-4 cosine,
    /// warmup 100, clip 1. 3e-3 reaches val 1.3853 on the book in 2,500 steps where
    /// 2e-3 → 2e-4 ends at 1.3994–1.4059 (BENCHMARKS.md). 10 evaluation batches: the book's val
    /// split (23k tokens) is then still scored whole (exact), and the train estimate costs
    /// 40% of 25 batches. The block size is the model's context.
    public static let gpt: TrainConfig = {
        var c = TrainConfig()
        c.steps = 2500; c.batchSize = 32; c.blockSize = 128; c.learningRate = 3e-3; c.minLearningRate = 3e-4
        c.warmupSteps = 100; c.weightDecay = 0.1; c.betas = (0.9, 0.99); c.gradClip = 1
        c.evalInterval = 250; c.evalIters = 10
        return c
    }()

    /// `emerald finetune`: 300 steps, B=8, AdamW (0.9, 0.95), wd 0.1, lr 3e-4 → 3e-5 cosine,
    /// warmup 30, clip 1, evaluation every 50 steps; the block size is min(context, 128).
    public static let finetune: TrainConfig = {
        var c = TrainConfig()
        c.steps = 300; c.batchSize = 8; c.blockSize = 128
        c.learningRate = 3e-4; c.minLearningRate = 3e-5; c.warmupSteps = 30
        c.weightDecay = 0.1; c.betas = (0.9, 0.95); c.gradClip = 1
        c.evalInterval = 50; c.evalIters = 20
        return c
    }()

    /// The recipe for a model: its kind's settings, with the block size of its context.
    public static func forTraining(_ model: ModelConfig) -> TrainConfig { model.family.trainingRecipe }

    /// Largest share of a run a recipe's warmup may take: a 100-step warmup in a 100-step run
    /// would end the run at the peak rate, before any decay.
    public static let maxWarmupFraction = 0.1

    /// A recipe's warmup, capped at `maxWarmupFraction` of `steps` (at least one step when
    /// the recipe warms up at all). Warmups a user sets are kept as given.
    public static func cappedWarmup(_ warmup: Int, steps: Int) -> Int {
        guard warmup > 0 else { return 0 }
        return Swift.max(1, Swift.min(warmup, Int(Double(steps) * maxWarmupFraction)))
    }
}

extension TrainConfig: Codable, Equatable {
    enum CodingKeys: String, CodingKey {
        case steps, batchSize = "batch_size", blockSize = "block_size", learningRate = "lr", minLearningRate = "min_lr"
        case warmupSteps = "warmup_steps", weightDecay = "weight_decay", beta1, beta2, gradClip = "grad_clip"
        case gradAccum = "grad_accum", shards, evalInterval = "eval_interval", evalIters = "eval_iters", seed
    }

    /// Reads the settings `encode(to:)` writes (snake_case field names).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init()
        steps = try c.decode(Int.self, forKey: .steps)
        batchSize = try c.decode(Int.self, forKey: .batchSize)
        blockSize = try c.decode(Int.self, forKey: .blockSize)
        learningRate = try c.decode(Float.self, forKey: .learningRate)
        minLearningRate = try c.decode(Float.self, forKey: .minLearningRate)
        warmupSteps = try c.decode(Int.self, forKey: .warmupSteps)
        weightDecay = try c.decode(Float.self, forKey: .weightDecay)
        betas = (try c.decode(Float.self, forKey: .beta1), try c.decode(Float.self, forKey: .beta2))
        gradClip = try c.decode(Float.self, forKey: .gradClip)
        gradAccum = try c.decode(Int.self, forKey: .gradAccum)
        shards = try c.decodeIfPresent(Int.self, forKey: .shards)
        evalInterval = try c.decode(Int.self, forKey: .evalInterval)
        evalIters = try c.decode(Int.self, forKey: .evalIters)
        seed = try c.decode(UInt64.self, forKey: .seed)
    }

    /// Writes every field (floats as their shortest decimal).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(steps, forKey: .steps)
        try c.encode(batchSize, forKey: .batchSize)
        try c.encode(blockSize, forKey: .blockSize)
        try c.encode(learningRate, forKey: .learningRate)
        try c.encode(minLearningRate, forKey: .minLearningRate)
        try c.encode(warmupSteps, forKey: .warmupSteps)
        try c.encode(weightDecay, forKey: .weightDecay)
        try c.encode(betas.0, forKey: .beta1)
        try c.encode(betas.1, forKey: .beta2)
        try c.encode(gradClip, forKey: .gradClip)
        try c.encode(gradAccum, forKey: .gradAccum)
        try c.encodeIfPresent(shards, forKey: .shards)
        try c.encode(evalInterval, forKey: .evalInterval)
        try c.encode(evalIters, forKey: .evalIters)
        try c.encode(seed, forKey: .seed)
    }

    /// Field-by-field equality (the betas are a tuple).
    public static func == (a: TrainConfig, b: TrainConfig) -> Bool {
        a.differences(from: b).isEmpty
    }

    /// The fields (by their `train.json` names) whose values differ, with (self, other) values.
    public func differences(from o: TrainConfig) -> [(field: String, value: String, other: String)] {
        var out: [(String, String, String)] = []
        func check<T: Equatable>(_ name: String, _ a: T, _ b: T) { if a != b { out.append((name, "\(a)", "\(b)")) } }
        check("steps", steps, o.steps); check("batch_size", batchSize, o.batchSize); check("block_size", blockSize, o.blockSize)
        check("lr", learningRate, o.learningRate); check("min_lr", minLearningRate, o.minLearningRate)
        check("warmup_steps", warmupSteps, o.warmupSteps); check("weight_decay", weightDecay, o.weightDecay)
        check("beta1", betas.0, o.betas.0); check("beta2", betas.1, o.betas.1); check("grad_clip", gradClip, o.gradClip)
        check("grad_accum", gradAccum, o.gradAccum); check("shards", shards, o.shards)
        check("eval_interval", evalInterval, o.evalInterval); check("eval_iters", evalIters, o.evalIters)
        check("seed", seed, o.seed)
        return out
    }
}
