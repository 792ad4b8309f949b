import Foundation

/// Training progress saved next to the weights so a run can resume exactly.
public struct TrainState: Codable, Equatable, Sendable {
    /// Optimizer steps completed.
    public var step: Int
    /// Best validation loss seen so far.
    public var bestValLoss: Float?
    /// Batcher generator state.
    public var dataRNG: RandomGenerator
    /// Dropout generator state.
    public var dropoutRNG: RandomGenerator
    /// Seconds the run had trained when saved (absent in checkpoints of older versions).
    public var elapsed: Double?
    /// Gradient norm of the last step before saving (absent in older checkpoints).
    public var gradNorm: Float?
    /// Creates a state record.
    public init(step: Int, bestValLoss: Float?, dataRNG: RandomGenerator, dropoutRNG: RandomGenerator,
                elapsed: Double? = nil, gradNorm: Float? = nil) {
        self.step = step; self.bestValLoss = bestValLoss; self.dataRNG = dataRNG; self.dropoutRNG = dropoutRNG
        self.elapsed = elapsed; self.gradNorm = gradNorm
    }
}

extension ModelConfig {
    /// The fewest parameters a model of this config holds.
    public var minimumParameterCount: Double { family.minimumParameterCount }

    /// Throws when the weights on disk hold fewer numbers than this config needs — checked
    /// before a model is allocated, so a damaged config.json (`"vocab_size": 2^40`,
    /// `"n_layer": 1000000`) is an error rather than an out-of-memory crash.
    public func requireFits(storedParameters stored: Double, in weightsPath: String, configPath: String) throws {
        let needed = minimumParameterCount
        guard needed <= stored else {
            let shown = needed < 1e15 ? String(Int(needed.rounded(.up))) : String(format: "%.3g", needed)
            throw EmeraldError.corruptCheckpoint(path: parentFolder(configPath),
                                                 reason: "config.json describes a model of at least \(shown) parameters but \(weightsPath) holds \(Int(stored))")
        }
    }
}

/// A checkpoint directory:
/// `config.json` (model type and hyperparameters), `model.safetensors`
/// (weights, Hugging Face-style names), `tokenizer.json`, and for resumable
/// runs `train_state.json` + `optimizer.safetensors` (AdamW moments).
///
/// Saving writes a sibling `DIR.tmp` folder completely, then swaps it in with
/// renames; if a crash falls between the two renames, `DIR.old` still holds
/// the previous checkpoint and loading picks it up.
public struct Checkpoint {
    /// The model.
    public var model: any LanguageModel
    /// Its tokenizer; nil for a Hugging Face folder without tokenizer files (ids still work).
    public var tokenizer: (any Tokenizer)?
    /// Training progress, when saved from a run.
    public var state: TrainState?
    /// Optimizer moments (m, v per parameter, in parameter order), when saved.
    public var moments: (m: [Tensor], v: [Tensor], step: Int)?
    /// The folder `load(from:)` read (a run's `best/` when given the run); nil when built in memory.
    /// Files beside the weights, such as a Hugging Face `tokenizer_config.json`, are found here.
    public var directory: String?

    /// Bundles the pieces.
    public init(model: any LanguageModel, tokenizer: (any Tokenizer)?, state: TrainState? = nil,
                moments: (m: [Tensor], v: [Tensor], step: Int)? = nil) {
        self.model = model; self.tokenizer = tokenizer; self.state = state; self.moments = moments
    }

    /// Writes the checkpoint to `dir` atomically: a complete temporary sibling, marked as
    /// Emerald's, swapped in by `OutputFolder.replace` (SIGKILL leaves the old or the new one).
    /// Callers that write where a user named check `OutputFolder.requireWritable` first.
    public func save(to dir: String, optimizer: AdamW? = nil) throws {
        let fm = FileManager.default
        let folder = OutputFolder(dir, kind: "checkpoint")
        folder.removeLitter()
        let tmp = folder.temporaryPath
        try? fm.removeItem(atPath: tmp)
        do { try fm.createDirectory(atPath: tmp, withIntermediateDirectories: true) }
        catch { throw EmeraldError.io("cannot create checkpoint folder \(tmp): permission denied or bad path") }
        do {
            try AtomicFile.write(model.config.jsonData(), to: tmp + "/config.json")
            try SafeTensors.write(model.namedParameters().map { ($0.name, $0.tensor) },
                                  metadata: ["format": "pt"], to: tmp + "/model.safetensors")
            if let bpe = tokenizer as? ByteLevelBPETokenizer {
                // Hand-serialised: sorted-keys JSONSerialization takes seconds on a 50k vocabulary.
                try AtomicFile.write(bpe.tokenizerJSONData(), to: tmp + "/tokenizer.json")
            } else if let hf = tokenizer as? HuggingFaceBPETokenizer {
                try AtomicFile.write(try hf.tokenizerJSONData(), to: tmp + "/tokenizer.json")
            } else if let tokenizer {
                try AtomicFile.writeJSON(try tokenizer.serialized(), to: tmp + "/tokenizer.json")
            }
            if let state {
                let d = try JSONEncoder().encode(state)
                try AtomicFile.write(d, to: tmp + "/train_state.json")
            }
            if let optimizer {
                var named: [(String, Tensor)] = []
                for (i, n) in optimizer.names.enumerated() {
                    named.append(("m." + n, optimizer.m[i])); named.append(("v." + n, optimizer.v[i]))
                }
                try SafeTensors.write(named, metadata: ["step": String(optimizer.stepCount)], to: tmp + "/optimizer.safetensors")
            }
            try folder.mark(tmp)
            try folder.replace(with: tmp)
            // An older Emerald's siblings: a half-written `DIR.tmp`, and `DIR.old`, no longer needed now.
            try? fm.removeItem(atPath: folder.path + ".tmp")
            try? fm.removeItem(atPath: folder.path + ".old")
        } catch {
            try? fm.removeItem(atPath: tmp)
            throw error
        }
    }

    /// Files an Emerald checkpoint folder holds.
    static let checkpointFiles: Set<String> = ["config.json", "model.safetensors", "tokenizer.json", "train_state.json",
                                               "optimizer.safetensors", OutputFolder.markerName]

    /// Whether `dir` is a checkpoint written by an Emerald without markers: an Emerald model
    /// type in config.json and no file a checkpoint does not hold.
    public static func isOlderEmeraldCheckpoint(_ dir: String) -> Bool {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: dir),
              entries.allSatisfy({ checkpointFiles.contains($0) }),
              let json = try? AtomicFile.readJSON(dir + "/config.json") else { return false }
        return ["gpt", "bigram"].contains(json["model_type"] as? String ?? "")
    }

    /// `DIR.old-PID`, the previous version a save on a file system without RENAME_EXCHANGE
    /// keeps while it swaps (the only complete copy if it was killed between its two renames).
    static func previousVersion(of dir: String) -> String? {
        let url = URL(fileURLWithPath: dir)
        let parent = url.deletingLastPathComponent().path, name = url.lastPathComponent
        let found = (try? FileManager.default.contentsOfDirectory(atPath: parent))?.sorted().first {
            $0.hasPrefix(name + ".old-") && FileManager.default.fileExists(atPath: parent + "/" + $0 + "/config.json")
        }
        return found.map { parent + "/" + $0 }
    }

    /// Loads a checkpoint directory — Emerald's own, a training `--out` folder (its `best/`),
    /// or a Hugging Face folder of a registered family — validating every piece against the config.
    public static func load(from path: String) throws -> Checkpoint {
        let fm = FileManager.default
        let path = trimmingTrailingSlashes(path)
        var dir = path
        if !fm.fileExists(atPath: dir + "/config.json") {
            if fm.fileExists(atPath: dir + "/best/config.json") { dir += "/best" }
            else if fm.fileExists(atPath: dir + "/checkpoint/config.json") { dir += "/checkpoint" }
            else if fm.fileExists(atPath: dir + ".old/config.json") { dir += ".old" }  // an older Emerald's interrupted save
            else if let old = previousVersion(of: dir) { dir = old }
            else if fm.fileExists(atPath: dir + "/pytorch_model.bin") { throw HuggingFace.pickleOnly(dir) }
            else if fm.fileExists(atPath: dir) { throw EmeraldError.corruptCheckpoint(path: path, reason: "no config.json inside") }
            else { throw EmeraldError.fileNotFound(path) }
        }
        let configData = try AtomicFile.readData(dir + "/config.json")
        guard let json = try? JSONSerialization.jsonObject(with: configData) as? [String: Any] else {
            throw EmeraldError.corruptCheckpoint(path: dir + "/config.json", reason: "not a JSON object")
        }
        if HuggingFace.isHuggingFaceConfig(json, folder: dir) {
            var ckpt = try HuggingFace.load(directory: dir, configData: configData, modelType: json["model_type"] as? String)
            ckpt.directory = dir
            return ckpt
        }
        let config = try ModelConfig(jsonData: configData, path: dir + "/config.json")
        // No tokenizer.json: a model imported from a Hugging Face folder without one (ids only).
        var tokenizer: (any Tokenizer)?
        if fm.fileExists(atPath: dir + "/tokenizer.json") {
            let t = try loadTokenizer(json: AtomicFile.readJSON(dir + "/tokenizer.json"), path: dir + "/tokenizer.json")
            // BPE vocabularies may be padded in the model (GPT-2 exports with 50,304 rows); chars never are.
            let fits = t is ByteLevelBPETokenizer || t is HuggingFaceBPETokenizer ? t.vocabularySize <= config.vocabularySize : t.vocabularySize == config.vocabularySize
            guard fits else {
                throw EmeraldError.corruptCheckpoint(path: dir, reason: "tokenizer has \(t.vocabularySize) tokens but the model expects \(config.vocabularySize)")
            }
            tokenizer = t
        }
        let weightsPath = dir + "/model.safetensors"
        let weights = try SafeTensorsFile(path: weightsPath)
        // Check the config against the weights before allocating a model for it, so a damaged
        // config.json ("n_embd": 1000000000) is an error rather than an out-of-memory crash.
        let stored = weights.header.entries.values.reduce(0.0) { $0 + Double($1.count) }
        try config.requireFits(storedParameters: stored, in: weightsPath, configPath: dir + "/config.json")
        let model = Tensor.withoutRandomInitialization { config.makeModel(seed: 0) }  // every weight is loaded next
        for (name, p) in model.namedParameters() {
            guard let e = weights[name] else {
                throw EmeraldError.corruptCheckpoint(path: weightsPath, reason: "missing tensor \(name)")
            }
            guard e.shape == p.shape else {
                throw EmeraldError.corruptCheckpoint(path: weightsPath, reason: "tensor \(name) has shape \(e.shape), the config needs \(p.shape)")
            }
            try weights.copy(name, into: p)
        }
        var ckpt = Checkpoint(model: model, tokenizer: tokenizer)
        ckpt.directory = dir
        if fm.fileExists(atPath: dir + "/train_state.json") {
            guard let d = fm.contents(atPath: dir + "/train_state.json"),
                  let s = try? JSONDecoder().decode(TrainState.self, from: d),
                  s.step >= 0, s.dataRNG.state.count == 4, s.dropoutRNG.state.count == 4 else {
                throw EmeraldError.corruptCheckpoint(path: dir + "/train_state.json", reason: "not a valid training state")
            }
            ckpt.state = s
        }
        if fm.fileExists(atPath: dir + "/optimizer.safetensors") {
            let (opt, meta) = try SafeTensors.read(path: dir + "/optimizer.safetensors")
            var m: [Tensor] = [], v: [Tensor] = []
            for (name, p) in model.namedParameters() {
                guard let mt = opt["m." + name], let vt = opt["v." + name], mt.shape == p.shape, vt.shape == p.shape else {
                    throw EmeraldError.corruptCheckpoint(path: dir + "/optimizer.safetensors", reason: "moments for \(name) missing or mis-shaped")
                }
                m.append(mt); v.append(vt)
            }
            let step = Int(meta["step"] ?? "") ?? 0
            guard step >= 0 else {
                throw EmeraldError.corruptCheckpoint(path: dir + "/optimizer.safetensors", reason: "negative step \(step)")
            }
            ckpt.moments = (m, v, step)
        }
        return ckpt
    }

    /// `path` without trailing "/" (but "/" stays "/").
    static func trimmingTrailingSlashes(_ path: String) -> String {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
        return String(p)
    }

    /// Copies named tensors into a model's parameters, checking names and shapes.
    public static func load(_ tensors: [String: Tensor], into model: Module, path: String) throws {
        for (name, p) in model.namedParameters() {
            guard let t = tensors[name] else {
                throw EmeraldError.corruptCheckpoint(path: path, reason: "missing tensor \(name)")
            }
            guard t.shape == p.shape else {
                throw EmeraldError.corruptCheckpoint(path: path, reason: "tensor \(name) has shape \(t.shape), the config needs \(p.shape)")
            }
            p.assign(from: t)
        }
    }
}
