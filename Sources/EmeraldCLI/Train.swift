import ArgumentParser
import Emerald
import Foundation

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a language model on a text file (default: the Oz book).")

    @Option(help: "Model kind: bigram.") var model: String = "bigram"
    @Option(help: "UTF-8 text file to train on (default: download the Oz book).") var data: String?
    @Option(help: "Output folder for metrics.jsonl, loss.svg and checkpoints.") var out: String = "runs/bigram"
    @Option(help: "Optimizer steps.") var steps: Int = 3000
    @Option(help: "Sequences per batch.") var batchSize: Int = 32
    @Option(help: "Tokens per sequence.") var blockSize: Int = 8
    @Option(help: "Peak learning rate.") var lr: Float = 1e-2
    @Option(help: "Final learning rate of the cosine schedule (default: lr, i.e. constant).") var minLr: Float?
    @Option(help: "Linear warmup steps.") var warmupSteps: Int = 0
    @Option(help: "AdamW decoupled weight decay (≥ 2-D weights).") var weightDecay: Float = 0.01
    @Option(help: "Global gradient-norm clip (0: off).") var gradClip: Float = 0
    @Option(help: "Micro-batches accumulated per step.") var gradAccum: Int = 1
    @Option(help: "Steps between train/val evaluations.") var evalInterval: Int = 300
    @Option(help: "Batches per split in each evaluation.") var evalIters: Int = 100
    @Option(help: "Random seed (initialisation, batches, dropout).") var seed: UInt64 = 1337
    @Option(help: "Worker threads (default: all cores).") var threads: Int?
    @Option(help: "Continue the run saved in this output folder.") var resume: String?

    func run() throws {
        try EmeraldCommand.guarded {
            if let threads { try require(threads > 0 && threads <= 256, "--threads must be in 1...256"); ThreadPool.configure(threads: threads) }
            try require(model == "bigram", "unknown --model \(model); choose bigram")
            var cfg = TrainConfig()
            cfg.steps = steps; cfg.batchSize = batchSize; cfg.blockSize = blockSize
            cfg.learningRate = lr; cfg.minLearningRate = minLr ?? lr; cfg.warmupSteps = warmupSteps
            cfg.weightDecay = weightDecay; cfg.gradClip = gradClip; cfg.gradAccum = gradAccum
            cfg.evalInterval = evalInterval; cfg.evalIters = evalIters; cfg.seed = seed
            try cfg.validate()

            let path = try data ?? Book.path(log: note)
            let text = try TextCorpus.load(path: path)
            let tokenizer = CharTokenizer(training: text)
            let ids = try tokenizer.encode(text)
            let (trainSplit, valSplit) = trainValSplit(ids)
            let resumed = try resume.map { try Checkpoint.load(from: $0 + "/checkpoint") }
            if let r = resumed {
                guard let t = r.tokenizer as? CharTokenizer, t == tokenizer else {
                    throw EmeraldError.invalidArgument("--resume checkpoint was trained on a different vocabulary than --data")
                }
            }
            let m = resumed?.model ?? ModelConfig.bigram(BigramConfig(vocabSize: tokenizer.vocabularySize)).makeModel(seed: seed)
            note("\(path): \(ids.count) characters, vocabulary \(tokenizer.vocabularySize); train \(trainSplit.count), val \(valSplit.count)")
            note("model \(m.config.modelType): \(m.parameterCount) parameters; \(ThreadPool.shared.threadCount) threads")
            let trainer = try Trainer(model: m, tokenizer: tokenizer, train: trainSplit, val: valSplit, config: cfg)
            trainer.outputDirectory = resume ?? out
            if let r = resumed { try trainer.resume(from: r); note("resumed at step \(trainer.step)") }
            try trainer.run()
            note("wrote \(trainer.outputDirectory!)/metrics.jsonl, loss.svg, best/ and checkpoint/")
        }
    }
}
