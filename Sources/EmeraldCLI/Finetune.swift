import ArgumentParser
import Emerald
import Foundation

struct Finetune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue training a pretrained model (Emerald checkpoint, Hugging Face GPT-2 or Llama-family) on new text.",
        discussion: """
            The text is encoded with the model's own tokenizer (a prepared --data folder must have been \
            prepared with that tokenizer). The run is `emerald train`'s loop — schedule, clipping, \
            accumulation, evaluation, best/ and checkpoint/, --resume — with fine-tuning defaults: \
            300 steps, B=8, T=min(context, 128), AdamW (0.9, 0.95), wd 0.1, lr 3e-4 → 3e-5 cosine, \
            warmup 30, clip 1, evaluation every 50 steps. Step 0's evaluation is the val loss before \
            fine-tuning; the summary compares it with the end. --reinitialize trains the same model \
            shape from random weights with everything else equal: the from-scratch baseline.
            """)

    @Option(name: .customLong("from"), help: "Pretrained model: Emerald checkpoint, Hugging Face GPT-2 or Llama-family folder, or hub id.")
    var source: String?
    @Option(help: "UTF-8 text file, or a folder written by `emerald prepare` with the model's tokenizer (default: the shipped Oz book; with --resume, the run's own).")
    var data: String?
    @Option(help: "Output folder (metrics.jsonl, loss.svg, best/, checkpoint/, finetune.json).") var out: String?
    @Option(help: "Continue the fine-tuning run saved in this output folder.") var resume: String?
    @Flag(help: "Replace a previous run in --out (it stays whole until the new run's first checkpoint).") var overwrite = false
    @OptionGroup(title: "Optimization") var opt: OptimizationOptions
    @Option(help: "Dropout while fine-tuning (default: the model's own).") var dropout: Float?
    @Flag(help: "Keep the token and position embeddings fixed (with a tied head, the head too).") var freezeEmbeddings = false
    @Option(help: "Keep the first N transformer blocks fixed.") var freezeLayers: Int = 0
    @Flag(help: "Start from random weights instead (same shape, tokenizer, data and settings): the baseline.") var reinitialize = false
    @Option(help: "Worker threads (default: all cores; under MPI, this machine's cores over its processes).") var threads: Int?
    @OptionGroup(title: "Across processes") var distributed: DistributedOptions
    @Option(help: "Stop after this many steps, as an interrupted run would (checkpoint/ stays resumable).") var stopAfter: Int?
    @OptionGroup(title: "Output") var display: ProgressOptions

    func run() throws {
        try EmeraldCommand.guarded {
            let group = try distributed.join(threads: threads)
            try require((source == nil) != (resume == nil), "pass --from MODEL to start, or --resume DIR to continue (not both)")
            try require(resume != nil || out != nil, "pass --out DIR for the fine-tuned model")
            let outDir = resume ?? out!
            var settings = FinetuneSettings(source: source ?? "", freezeEmbeddings: freezeEmbeddings,
                                            freezeLayers: freezeLayers, reinitialize: reinitialize)
            let ckpt: Checkpoint
            if let resume {
                ckpt = try Checkpoint.load(from: resume + "/checkpoint")
                let stored = try FinetuneSettings.read(from: resume)
                let given = freezeEmbeddings || freezeLayers != 0 || reinitialize
                try require(!given || (stored.freezeEmbeddings == freezeEmbeddings && stored.freezeLayers == freezeLayers
                                        && stored.reinitialize == reinitialize),
                            "--resume continues with the run's own freeze/reinitialize settings (\(resume)/finetune.json); drop those flags")
                settings = stored
            } else {
                ckpt = try Checkpoint.load(model: source!, log: note)
            }
            let tokenizer = try ckpt.requireTokenizer("fine-tuning needs it to encode --data")
            let data = self.data ?? settings.data
            settings.data = data
            let corpus = try TrainingData.forFinetuning(data, tokenizer: tokenizer)

            var model = ckpt.model
            if resume == nil, dropout != nil || settings.reinitialize, let shape = try reshaped(model.config) {
                let fresh = shape.makeModel(seed: opt.seed ?? 1337)
                if !settings.reinitialize { try copyWeights(from: model, to: fresh) }
                model = fresh
            } else if dropout != nil && resume == nil {
                throw EmeraldError.invalidArgument("--dropout applies to GPT and Llama models only")
            }
            var cfg = Recipe.finetune
            cfg.blockSize = Swift.min(model.contextLength ?? cfg.blockSize, cfg.blockSize)
            try opt.apply(to: &cfg)
            try cfg.validate()
            try MemoryEstimate.requireFits(MemoryEstimate.trainingBytes(model.config, batchSize: cfg.batchSize, blockSize: cfg.blockSize),
                                           "fine-tuning this model at --batch-size \(cfg.batchSize) × block \(cfg.blockSize)")

            let trainer = try Trainer(model: model, tokenizer: tokenizer, train: corpus.train, val: corpus.val, config: cfg)
            try trainer.freeze(try settings.frozenNames(model))
            let folder = try RunFolder.attach(trainer, group: group, out: outDir, resuming: resume != nil, overwrite: overwrite)
            defer { folder?.lock.release() }
            if resume == nil {
                if let folder { try settings.write(to: folder.directory) }
            } else {
                try trainer.resume(from: ckpt)
            }
            let output = RunOutput(options: display)
            output.result(corpus.description)
            output.result("model: \(model.parameterCount) parameters from \(settings.reinitialize ? "random initialisation (baseline)" : settings.source)"
                 + (trainer.frozenIndices.isEmpty ? "" : "; \(trainer.frozenIndices.count) tensors frozen")
                 + "; \(ThreadPool.shared.threadCount) threads, \(trainer.shards) data-parallel shard\(trainer.shards == 1 ? "" : "s")")
            trainer.plotScale = display.lossScale
            if let stopAfter { try require(stopAfter > 0, "--stop-after must be positive") }
            try output.run(trainer, stopAfter: stopAfter)
            guard let first = trainer.history.first, let last = trainer.history.last else { return }
            output.result(String(format: "val loss on %@: before %.4f → after %.4f (best %.4f)", data ?? Book.name, first.val_loss, last.val_loss,
                                 trainer.bestValLoss ?? last.val_loss))
            output.result("wrote \(outDir)/metrics.jsonl, loss.svg, best/ and checkpoint/ (convert --to-hf exports them)")
        }
    }

    /// The model's configuration with `--dropout` applied (GPT and Llama; nil for others).
    func reshaped(_ config: ModelConfig) throws -> ModelConfig? {
        if var g = config.as(GPTConfig.self) {
            if let dropout { g.dropout = dropout }
            try g.validate()
            return .gpt(g)
        }
        if var l = config.as(LlamaConfig.self) {
            if let dropout { l.attentionDropout = dropout; l.residualDropout = dropout }
            try l.validate()
            return .llama(l)
        }
        return nil
    }

    /// Copies every parameter by name (same shapes: only dropout differs).
    func copyWeights(from a: any LanguageModel, to b: any LanguageModel) throws {
        let src = Dictionary(uniqueKeysWithValues: a.namedParameters().map { ($0.name, $0.tensor) })
        for (name, p) in b.namedParameters() {
            guard let s = src[name], s.shape == p.shape else { throw EmeraldError.invalidArgument("internal: \(name) differs") }
            p.assign(from: s)
        }
    }
}

/// What a fine-tuning run was started with, kept in `OUT/finetune.json` so `--resume` repeats it.
struct FinetuneSettings: Codable {
    var source: String
    var freezeEmbeddings: Bool
    var freezeLayers: Int
    var reinitialize: Bool
    /// The corpus the run started on (`--resume` defaults to it).
    var data: String?

    static func read(from dir: String) throws -> FinetuneSettings {
        guard let d = FileManager.default.contents(atPath: dir + "/finetune.json"),
              let s = try? JSONDecoder().decode(FinetuneSettings.self, from: d) else {
            throw EmeraldError.invalidArgument("\(dir) is not a fine-tuning output folder (no valid finetune.json)")
        }
        return s
    }

    func write(to dir: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try enc.encode(self), to: dir + "/finetune.json")
    }

    /// Parameter names kept fixed.
    func frozenNames(_ model: any LanguageModel) throws -> Set<String> {
        guard freezeEmbeddings || freezeLayers != 0 else { return [] }
        let layers: Int, embeddings: Set<String>, block: String
        if let g = model.config.as(GPTConfig.self) {
            (layers, embeddings, block) = (g.nLayer, ["transformer.wte.weight", "transformer.wpe.weight"], "transformer.h.")
        } else if let l = model.config.as(LlamaConfig.self) {
            (layers, embeddings, block) = (l.numHiddenLayers, ["model.embed_tokens.weight"], "model.layers.")
        } else {
            throw EmeraldError.invalidArgument("--freeze-embeddings and --freeze-layers apply to GPT and Llama models only")
        }
        try require(freezeLayers >= 0 && freezeLayers <= layers, "--freeze-layers must be in 0...\(layers), got \(freezeLayers)")
        var names = Set<String>()
        for (name, _) in model.namedParameters() {
            if freezeEmbeddings && embeddings.contains(name) { names.insert(name) }
            for i in 0..<freezeLayers where name.hasPrefix(block + "\(i).") { names.insert(name) }
        }
        return names
    }
}
