import ArgumentParser
import Emerald
import Foundation

/// "(default: GPT 2500, bigram 3000, finetune 300)" for a recipe field.
private func recipes<T>(_ field: (TrainConfig) -> T, gpt: String? = nil) -> String {
    "(default: GPT \(gpt ?? "\(field(Recipe.gpt))"), bigram \(field(Recipe.bigram)), finetune \(field(Recipe.finetune)))"
}

/// Optimizer and loop flags; unset ones take the recipe of the model kind (`Recipe`).
struct OptimizationOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Optimizer steps \(recipes { $0.steps }).")) var steps: Int?
    @Option(help: ArgumentHelp("Sequences per micro-batch \(recipes { $0.batchSize }).")) var batchSize: Int?
    @Option(name: .customLong("train-block-size"), help: "Training window if shorter than the model's context (default: the context; bigram 8; finetune min(context, 128)).")
    var blockSize: Int?
    @Option(help: ArgumentHelp("Peak learning rate \(recipes { $0.learningRate }).")) var lr: Float?
    @Option(help: ArgumentHelp("Final learning rate of the cosine schedule \(recipes { $0.minLearningRate }).")) var minLr: Float?
    @Option(help: ArgumentHelp("Linear warmup steps \(recipes { $0.warmupSteps }), at most \(Int(Recipe.maxWarmupFraction * 100))% of --steps unless given."))
    var warmupSteps: Int?
    @Option(help: ArgumentHelp("AdamW decoupled weight decay on ≥ 2-D weights \(recipes { $0.weightDecay }).")) var weightDecay: Float?
    @Option(help: ArgumentHelp("AdamW β₂ \(recipes { $0.betas.1 }).")) var beta2: Float?
    @Option(help: ArgumentHelp("Global gradient-norm clip, 0 for none \(recipes { $0.gradClip }).")) var gradClip: Float?
    @Option(help: "Micro-batches accumulated per step: the same update as one batch that many times larger (default: 1).")
    var gradAccum: Int?
    @Option(help: "Data-parallel shards: each micro-batch split into this many slices trained at once, one per thread (default: one per thread for models up to 32M parameters, else 1).")
    var shards: Int?
    @Option(help: ArgumentHelp("Steps between train/val evaluations \(recipes { $0.evalInterval }).")) var evalInterval: Int?
    @Option(help: ArgumentHelp("Batches per split in each evaluation \(recipes { $0.evalIters }).")) var evalIters: Int?
    @Option(help: "Random seed of initialisation, batches and dropout (default: 1337).") var seed: UInt64?

    /// Overrides the fields whose flags were given; a recipe's warmup is capped for short runs.
    func apply(to c: inout TrainConfig) throws {
        if let steps { c.steps = steps }
        if let batchSize { c.batchSize = batchSize }
        if let blockSize { c.blockSize = blockSize }
        if let lr { c.learningRate = lr; if minLr == nil { c.minLearningRate = Swift.min(c.minLearningRate, lr) } }
        if let minLr { c.minLearningRate = minLr }
        c.warmupSteps = warmupSteps ?? Recipe.cappedWarmup(c.warmupSteps, steps: c.steps)
        if let weightDecay { c.weightDecay = weightDecay }
        if let beta2 { try require(beta2 > 0 && beta2 < 1, "--beta2 must be in (0, 1), got \(beta2)"); c.betas.1 = beta2 }
        if let gradClip { c.gradClip = gradClip }
        if let gradAccum { c.gradAccum = gradAccum }
        if let shards { c.shards = shards }
        if let evalInterval { c.evalInterval = evalInterval }
        if let evalIters { c.evalIters = evalIters }
        if let seed { c.seed = seed }
    }

    /// Throws, naming each flag, when a given flag differs from the resumed run's settings;
    /// `--steps` may move the end of the run past `step`.
    func requireAgreement(with run: TrainConfig, atStep step: Int) throws {
        var clashes: [String] = []
        func check<T: Equatable>(_ flag: String, _ given: T?, _ value: T) {
            if let given, given != value { clashes.append("\(flag) \(given) (the run has \(value))") }
        }
        check("--batch-size", batchSize, run.batchSize); check("--train-block-size", blockSize, run.blockSize)
        check("--lr", lr, run.learningRate); check("--min-lr", minLr, run.minLearningRate)
        check("--warmup-steps", warmupSteps, run.warmupSteps); check("--weight-decay", weightDecay, run.weightDecay)
        check("--beta2", beta2, run.betas.1); check("--grad-clip", gradClip, run.gradClip)
        check("--grad-accum", gradAccum, run.gradAccum); check("--shards", shards, run.shards ?? 0)
        check("--eval-interval", evalInterval, run.evalInterval); check("--eval-iters", evalIters, run.evalIters)
        check("--seed", seed, run.seed)
        if !clashes.isEmpty {
            throw EmeraldError.invalidArgument("--resume continues the run with its own settings (train.json); these flags contradict them: \(clashes.joined(separator: ", ")); drop them")
        }
        if let steps { try require(steps > step, "--steps \(steps) is not beyond the run's step \(step); pass a larger --steps to train on") }
    }
}

/// The output folder of a training command, claimed before anything is written.
struct RunFolder {
    /// Where the trainer writes now (a temporary sibling when replacing a previous run).
    let directory: String
    /// The previous run being replaced at the first save, if any.
    let replacing: OutputFolder?
    /// Held for the whole run: one writer per folder.
    let lock: OutputFolder.Lock

    /// Entries a training run's folder holds (any Emerald version).
    static let runEntries: Set<String> = ["train.json", "finetune.json", "metrics.jsonl", "train_loss.jsonl", "loss.svg",
                                          "best", "checkpoint", "best.old", "checkpoint.old", "best.tmp", "checkpoint.tmp",
                                          OutputFolder.markerName]

    /// Whether `dir` holds a training run: its files only (and writers' temporary ones).
    static func isRun(_ dir: String) -> Bool {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: dir), !entries.isEmpty else { return false }
        let own = entries.allSatisfy { e in runEntries.contains(e) || e.contains(".tmp-") || e.contains(".old-") }
        return own && (entries.contains("metrics.jsonl") || entries.contains("checkpoint") || entries.contains("train.json"))
    }

    /// `--resume DIR` continues DIR; `--out DIR` starts a run there: refused when DIR holds
    /// files Emerald did not write, and — unless `overwrite` — when it holds a run already.
    static func claim(out: String, resuming: Bool, overwrite: Bool) throws -> RunFolder {
        let folder = OutputFolder(out, kind: "training-run")
        if resuming {
            let lock = try folder.lock()
            folder.removeLitterInside()
            return RunFolder(directory: folder.path, replacing: nil, lock: lock)
        }
        try folder.requireWritable(recognised: isRun)
        let lock = try folder.lock()
        folder.removeLitter()
        folder.removeLitterInside()
        guard isRun(folder.path) else {
            try FileManager.default.createDirectory(atPath: folder.path, withIntermediateDirectories: true)
            try folder.mark(folder.path)
            return RunFolder(directory: folder.path, replacing: nil, lock: lock)
        }
        let step = (try? Checkpoint.load(from: folder.path + "/checkpoint").state?.step).flatMap { $0 }
        try require(overwrite, "\(out) holds a training run\(step.map { " (at step \($0))" } ?? ""); continue it with --resume \(out), "
                    + "or pass --overwrite to replace it (kept until the new run's first checkpoint)")
        let tmp = folder.temporaryPath
        try? FileManager.default.removeItem(atPath: tmp)
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        try folder.mark(tmp)
        return RunFolder(directory: tmp, replacing: folder, lock: lock)
    }
}

extension RunFolder {
    /// Splits `trainer`'s batches over `group` (refusing a batch it does not divide) and points
    /// the trainer at the run's folder, claimed by process 0 of a job alone (one writer per
    /// folder); the other processes get nil and write nothing.
    static func attach(_ trainer: Trainer, group: ProcessGroup?, out: String, resuming: Bool, overwrite: Bool) throws -> RunFolder? {
        if let group {
            try group.requireDivides(batchSize: trainer.config.batchSize)
            trainer.group = group
        }
        guard group?.isMain ?? true else { return nil }
        let folder = try claim(out: out, resuming: resuming, overwrite: overwrite)
        trainer.outputDirectory = folder.directory
        trainer.replacing = folder.replacing
        return folder
    }
}
