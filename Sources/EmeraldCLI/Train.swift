import ArgumentParser
import Emerald
import Foundation

/// `--model` of `train`.
enum ModelKind: String, ExpressibleByArgument, CaseIterable {
    case gpt, bigram
}

/// `--arch` of `train`: the transformer of `--model gpt`.
enum Architecture: String, ExpressibleByArgument, CaseIterable {
    /// GPT-2 blocks: LayerNorm, GELU MLP, a learned position table.
    case gpt
    /// Llama blocks: RMSNorm, SwiGLU MLP, rotary positions, grouped-query attention.
    case llama
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a language model on a text file (default: a GPT with the oz preset on the shipped Oz book).",
        discussion: """
            Writes into --out (default runs/MODEL): train.json (the run's settings), metrics.jsonl, \
            train_loss.jsonl, loss.svg, best/ and checkpoint/. `--resume DIR` continues that run exactly \
            — same data, shape and settings — with no other flag; flags that contradict the run are \
            refused, except --steps, which moves the end (and the cosine schedule) of the run.
            """)

    @Option(help: "Model kind.") var model: ModelKind?
    @Option(help: "Transformer architecture of --model gpt: gpt (GPT-2 blocks) or llama (RMSNorm, SwiGLU, rotary positions) (default: gpt).")
    var arch: Architecture?
    @Option(help: "UTF-8 text file, or a folder written by `emerald prepare`, to train on (default: the shipped book, assets/wizard_of_oz.txt).")
    var data: String?
    @Option(help: "Output folder for train.json, metrics.jsonl, loss.svg and checkpoints (default: runs/MODEL).") var out: String?
    @Option(help: "Continue the run saved in this output folder (its train.json holds the data and settings).") var resume: String?
    @Flag(help: "Replace a previous run in --out (it stays whole until the new run's first checkpoint).") var overwrite = false

    @OptionGroup(title: "GPT shape") var shape: GPTShapeOptions
    @OptionGroup(title: "Optimization") var opt: OptimizationOptions
    @OptionGroup(title: "Output") var display: ProgressOptions

    @Option(help: "Worker threads (default: all cores; under MPI, this machine's cores over its processes).") var threads: Int?
    @OptionGroup(title: "Across processes") var distributed: DistributedOptions

    func run() throws {
        try EmeraldCommand.guarded {
            let group = try distributed.join(threads: threads)
            let stored = try resume.map { try TrainRun.read(from: $0) } ?? nil
            if let resume {
                try require(out == nil || TrainRun.absolute(out!) == TrainRun.absolute(resume),
                            "--resume \(resume) writes into its own folder; drop --out \(out!)")
            }
            let kind = try resolvedKind(stored)
            let isGPT = kind == .gpt
            if !isGPT { try require(shape.isEmpty, "GPT shape options (--preset, --n-layer, …) do not apply to --model bigram") }
            let architecture = try resolvedArchitecture(stored, kind: kind)
            // What the run trains, as train.json names it: gpt, llama or bigram.
            let family = isGPT ? architecture.rawValue : kind.rawValue

            let dataPath = try resolvedData(stored)
            let resumed = try resume.map { try Checkpoint.load(from: $0 + "/checkpoint") }
            let corpus = try TrainingData.forTraining(dataPath, resumedTokenizer: resumed?.tokenizer)

            let modelConfig: ModelConfig
            if let r = resumed {
                modelConfig = r.model.config
                try require(modelConfig.modelType == family, "\(resume!) holds a \(modelConfig.modelType) model, not \(family)")
                if let g = modelConfig.as(GPTConfig.self) { try shape.requireAgreement(with: g) }
                if let l = modelConfig.as(LlamaConfig.self) { try shape.requireAgreement(with: l) }
            } else if isGPT && architecture == .llama {
                modelConfig = .llama(try shape.llamaConfig(vocabSize: corpus.vocabularySize))
            } else if isGPT {
                try shape.requireNoLlamaOnlyOptions()
                modelConfig = .gpt(try shape.config(vocabSize: corpus.vocabularySize))
            } else {
                modelConfig = .bigram(BigramConfig(vocabSize: corpus.vocabularySize))
            }

            var cfg: TrainConfig
            if let stored {
                cfg = stored.train
                try opt.requireAgreement(with: cfg, atStep: resumed?.state?.step ?? 0)
                if let steps = opt.steps { cfg.steps = steps }
            } else {
                cfg = Recipe.forTraining(modelConfig)
                if !isGPT, let b = shape.blockSize { cfg.blockSize = b }
                try opt.apply(to: &cfg)
            }
            try cfg.validate()
            try MemoryEstimate.requireFits(MemoryEstimate.trainingBytes(modelConfig, batchSize: cfg.batchSize, blockSize: cfg.blockSize),
                                           "training this model at --batch-size \(cfg.batchSize) × block \(cfg.blockSize)")

            let m = resumed?.model ?? modelConfig.makeModel(seed: cfg.seed)
            // Build the trainer (which checks the data against the block size) before any
            // output, so a bad option fails with exactly one line on stderr.
            let trainer = try Trainer(model: m, tokenizer: corpus.tokenizer, train: corpus.train, val: corpus.val, config: cfg)
            let outDir = resume ?? out ?? "runs/\(family)"
            let folder = try RunFolder.attach(trainer, group: group, out: outDir, resuming: resume != nil, overwrite: overwrite)
            defer { folder?.lock.release() }
            trainer.plotScale = display.lossScale
            if let r = resumed {
                try trainer.resume(from: r)
                try require(trainer.step < cfg.steps || opt.steps == nil,
                            "--steps \(cfg.steps) is not beyond the run's step \(trainer.step); pass a larger --steps to train on")
            }
            // Settings as run: shards resolved, so a resume splits batches the same way.
            var settings = TrainRun(model: family, data: dataPath.map(TrainRun.absolute), train: cfg)
            settings.train.shards = trainer.shards
            if let folder { try settings.write(to: folder.directory) }

            let output = RunOutput(options: display)
            output.result(corpus.description)
            var desc = "model \(modelConfig.modelType): \(m.parameterCount) parameters"
            let summary = modelConfig.family.summary
            if !summary.isEmpty { desc += " (\(summary))" }
            output.result(desc + "; \(ThreadPool.shared.threadCount) threads, \(trainer.shards) data-parallel shard\(trainer.shards == 1 ? "" : "s")"
                          + (group.map { $0.size > 1 ? " in each of \($0.size) processes (MPI)" : "" } ?? ""))
            if resumed != nil {
                output.result("resumed at step \(trainer.step) of \(cfg.steps)"
                              + (stored.map { opt.steps != nil && opt.steps != $0.train.steps ? " (was \($0.train.steps))" : "" } ?? ""))
            }
            try output.run(trainer)
            if let best = trainer.bestValLoss { output.result(String(format: "best val loss %.4f", best)) }
            output.result("wrote \(outDir)/metrics.jsonl, train_loss.jsonl, loss.svg, best/ and checkpoint/")
        }
    }

    /// `--model`, checked against the resumed run's (a llama run is a `--model gpt` run).
    func resolvedKind(_ stored: TrainRun?) throws -> ModelKind {
        guard let stored else { return model ?? .gpt }
        guard let k = stored.model == "llama" ? .gpt : ModelKind(rawValue: stored.model) else {
            throw EmeraldError.corruptCheckpoint(path: resume! + "/train.json", reason: "unknown model \(stored.model)")
        }
        try require(model == nil || model == k, "--model \(model!.rawValue) contradicts the run in \(resume!), a \(k.rawValue) run; drop --model")
        return k
    }

    /// `--arch`, checked against the resumed run's; only `--model gpt` has one.
    func resolvedArchitecture(_ stored: TrainRun?, kind: ModelKind) throws -> Architecture {
        try require(arch == nil || kind == .gpt, "--arch applies to --model gpt, not --model \(kind.rawValue)")
        guard let stored else { return arch ?? .gpt }
        let run: Architecture = stored.model == "llama" ? .llama : .gpt
        try require(arch == nil || arch == run, "--arch \(arch!.rawValue) contradicts the run in \(resume!), a \(run.rawValue) run; drop --arch")
        return run
    }

    /// The corpus path (nil: the shipped book), checked against the resumed run's.
    func resolvedData(_ stored: TrainRun?) throws -> String? {
        guard let stored else { return data }
        guard let given = data else { return stored.data }
        let same = stored.data.map { TrainRun.absolute(given) == $0 } ?? false
        // A moved corpus may be named again; its tokenizer is checked against the checkpoint's.
        let moved = stored.data.map { !FileManager.default.fileExists(atPath: $0) } ?? false
        try require(same || moved,
                    "--data \(given) contradicts the run in \(resume!), which trains on \(stored.data ?? Book.name); drop --data")
        return given
    }
}

/// GPT shape flags: a preset plus per-field overrides.
struct GPTShapeOptions: ParsableArguments {
    @Option(help: "Preset: oz (default; 4 layers × 4 heads × 128, block 128), baby (6 × 6 × 384, block 256), gpt2, gpt2-medium; with --arch llama: oz (the same shape in Llama blocks), smollm2-135m.")
    var preset: String?
    @Option(help: "Transformer blocks.") var nLayer: Int?
    @Option(help: "Attention heads.") var nHead: Int?
    @Option(help: "Width.") var nEmbd: Int?
    @Option(help: "Context length (position table size and training window).") var blockSize: Int?
    @Option(help: "Dropout probability (oz: 0.1).") var dropout: Float?
    @Option(help: "MLP activation (default gelu).") var activation: Activation?
    @Option(help: "LayerNorm placement (default pre).") var norm: NormPlacement?
    @Flag(inversion: .prefixedNo, help: "Biases in Linear and LayerNorm layers (default: on).") var bias: Bool?
    @Flag(inversion: .prefixedNo, help: "Tie the LM head to the token embedding (default: on).") var tieWeights: Bool?
    @Option(help: "Key/value heads of --arch llama (grouped-query attention; default: --n-head).") var nKvHead: Int?

    var isEmpty: Bool {
        preset == nil && nLayer == nil && nHead == nil && nEmbd == nil && dropout == nil && activation == nil
            && norm == nil && bias == nil && tieWeights == nil && nKvHead == nil
    }

    /// `--n-kv-head` is refused for GPT blocks.
    func requireNoLlamaOnlyOptions() throws {
        try require(nKvHead == nil, "--n-kv-head applies to --arch llama (GPT blocks have as many key/value heads as heads)")
    }

    func config(vocabSize: Int) throws -> GPTConfig {
        try applied(to: try GPTConfig.preset(preset ?? "oz", vocabSize: vocabSize))
    }

    /// `base` with the given flags (a preset replaces the whole shape first).
    func applied(to base: GPTConfig) throws -> GPTConfig {
        var c = base
        if let preset { c = try GPTConfig.preset(preset, vocabSize: base.vocabSize) }
        if let nLayer { c.nLayer = nLayer }
        if let nHead { c.nHead = nHead }
        if let nEmbd { c.nEmbd = nEmbd }
        if let blockSize { c.blockSize = blockSize }
        if let dropout { c.dropout = dropout }
        if let activation { c.activation = activation }
        if let norm { c.norm = norm }
        if let bias { c.bias = bias }
        if let tieWeights { c.tieWeights = tieWeights }
        try c.validate()
        return c
    }

    /// Throws, naming each flag, when the given shape flags describe another model than `run`'s.
    func requireAgreement(with run: GPTConfig) throws {
        guard !isEmpty || blockSize != nil else { return }
        let asked = try applied(to: run)
        var clashes: [String] = []
        func check<T: Equatable>(_ flag: String, _ a: T, _ b: T) { if a != b { clashes.append("\(flag) \(a) (the run has \(b))") } }
        check("--n-layer", asked.nLayer, run.nLayer); check("--n-head", asked.nHead, run.nHead)
        check("--n-embd", asked.nEmbd, run.nEmbd); check("--block-size", asked.blockSize, run.blockSize)
        check("--dropout", asked.dropout, run.dropout); check("--activation", asked.activation.rawValue, run.activation.rawValue)
        check("--norm", asked.norm.rawValue, run.norm.rawValue); check("--bias", asked.bias, run.bias)
        check("--tie-weights", asked.tieWeights, run.tieWeights)
        if !clashes.isEmpty {
            let via = preset.map { " (--preset \($0))" } ?? ""
            throw EmeraldError.invalidArgument("--resume keeps the run's shape; these flags contradict it\(via): \(clashes.joined(separator: ", ")); drop them")
        }
    }
}

extension Activation: ExpressibleByArgument {}
extension NormPlacement: ExpressibleByArgument {}
