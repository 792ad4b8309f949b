import Foundation

/// Hugging Face folders: `config.json` + `model.safetensors` (or a sharded
/// `model.safetensors.index.json`), plus `tokenizer.json` or `vocab.json` + `merges.txt`.
/// Each architecture (`model_type`) is a `HuggingFaceFamily` registered here; its key
/// mapping lives in its own file (GPT-2: `HuggingFaceGPT2.swift`).
public enum HuggingFace {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var families: [String: any HuggingFaceFamily.Type] = [
        GPT2Family.huggingFaceModelType: GPT2Family.self,
        LlamaFamily.huggingFaceModelType: LlamaFamily.self,
        Qwen2Family.huggingFaceModelType: Qwen2Family.self,
        MistralFamily.huggingFaceModelType: MistralFamily.self,
    ]

    /// Makes folders whose config.json has `family`'s `model_type` loadable.
    public static func register(_ family: any HuggingFaceFamily.Type) {
        lock.withLock { families[family.huggingFaceModelType] = family }
    }

    /// The registered `model_type`s, sorted.
    public static var familyNames: [String] { lock.withLock { families.keys.sorted() } }

    /// True for a `transformers` folder: its config.json has a `model_type` that is not one of
    /// Emerald's own, or one both share ("llama") in a folder that is not an Emerald checkpoint
    /// (those carry the `.emerald` marker of kind "checkpoint").
    static func isHuggingFaceConfig(_ json: [String: Any], folder: String) -> Bool {
        guard let t = json["model_type"] as? String else { return false }
        if ModelRegistry.family(t) == nil { return true }
        guard lock.withLock({ families[t] }) != nil else { return false }
        let marker = FileManager.default.contents(atPath: folder + "/" + OutputFolder.markerName)
        let kind = marker.flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }?["kind"] as? String
        return kind != "checkpoint"
    }

    // MARK: - Loading

    /// The error for a folder whose weights are only in PyTorch's pickle format.
    static func pickleOnly(_ dir: String) -> EmeraldError {
        .invalidArgument("\(dir) holds only pytorch_model.bin (a pickle, which Emerald does not execute); convert it once "
            + "with transformers — AutoModelForCausalLM.from_pretrained(DIR).save_pretrained(OUT) writes model.safetensors")
    }

    /// Loads a folder of a registered family; the tokenizer is nil when the folder has none.
    public static func load(directory dir: String) throws -> Checkpoint {
        let data = try AtomicFile.readData(dir + "/config.json")
        return try load(directory: dir, configData: data,
                        modelType: (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["model_type"] as? String)
    }

    /// `load(directory:)` with config.json already read (its bytes and `model_type`).
    static func load(directory dir: String, configData data: Data, modelType type: String?) throws -> Checkpoint {
        let configPath = dir + "/config.json"
        guard let type, let family = lock.withLock({ families[type] }) else {
            throw EmeraldError.invalidArgument("\(configPath): model_type \(type.map { "\"\($0)\"" } ?? "(missing)") is not supported; "
                + "Emerald loads Hugging Face \(familyNames.joined(separator: ", ")) models and its own \(ModelRegistry.familyNames.joined(separator: " and ")) checkpoints")
        }
        let model = try family.loadHuggingFace(directory: dir, configData: data)
        let vocabulary = model.config.vocabularySize
        let fm = FileManager.default
        var tokenizer: (any Tokenizer)?
        if fm.fileExists(atPath: dir + "/tokenizer.json")
            || (fm.fileExists(atPath: dir + "/vocab.json") && fm.fileExists(atPath: dir + "/merges.txt")) {
            let t: any Tokenizer = fm.fileExists(atPath: dir + "/tokenizer.json")
                ? try loadTokenizer(json: AtomicFile.readJSON(dir + "/tokenizer.json"), path: dir + "/tokenizer.json")
                : try ByteLevelBPETokenizer.load(path: dir)
            guard t.vocabularySize <= vocabulary else {
                throw EmeraldError.corruptCheckpoint(path: dir, reason: "tokenizer has \(t.vocabularySize) tokens but the model only \(vocabulary)")
            }
            tokenizer = t
        }
        return Checkpoint(model: model, tokenizer: tokenizer)
    }

    /// The safetensors file(s) of a folder, with one name → file lookup.
    struct WeightFiles {
        let files: [SafeTensorsFile]
        let fileOf: [String: Int]

        init(directory dir: String) throws {
            let fm = FileManager.default
            let index = dir + "/model.safetensors.index.json"
            if fm.fileExists(atPath: dir + "/model.safetensors") {
                let f = try SafeTensorsFile(path: dir + "/model.safetensors")
                files = [f]
                fileOf = Dictionary(uniqueKeysWithValues: f.names.map { ($0, 0) })
            } else if fm.fileExists(atPath: index) {
                let json = try AtomicFile.readJSON(index)
                guard let map = json["weight_map"] as? [String: String], !map.isEmpty else {
                    throw EmeraldError.corruptCheckpoint(path: index, reason: "no \"weight_map\" object of tensor name → file, or an empty one")
                }
                let names = Array(Set(map.values)).sorted()
                var opened: [SafeTensorsFile] = []
                for n in names {
                    guard !n.contains("/") && !n.hasPrefix(".") else {
                        throw EmeraldError.corruptCheckpoint(path: index, reason: "shard name \(n) points outside the folder")
                    }
                    opened.append(try SafeTensorsFile(path: dir + "/" + n))
                }
                let shardIndex = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
                var lookup: [String: Int] = [:]
                for (key, file) in map {
                    let i = shardIndex[file]!
                    guard opened[i][key] != nil else {
                        throw EmeraldError.corruptCheckpoint(path: dir + "/" + file, reason: "missing tensor \(key) (listed in model.safetensors.index.json)")
                    }
                    lookup[key] = i
                }
                files = opened
                fileOf = lookup
            } else if fm.fileExists(atPath: dir + "/pytorch_model.bin") {
                throw HuggingFace.pickleOnly(dir)
            } else {
                throw EmeraldError.corruptCheckpoint(path: dir, reason: "no model.safetensors or model.safetensors.index.json")
            }
        }

        func entry(_ key: String) -> (file: SafeTensorsFile, entry: SafeTensors.Entry)? {
            guard let i = fileOf[key], let e = files[i][key] else { return nil }
            return (files[i], e)
        }
    }

    // MARK: - Export

    /// Writes `ckpt` as a folder `transformers.AutoModelForCausalLM.from_pretrained` loads:
    /// config.json, model.safetensors, generation_config.json and tokenizer files.
    /// Writes into a temporary sibling, then swaps it in (`OutputFolder`): an existing `out`
    /// is replaced only when it is an earlier export of Emerald's (or empty).
    public static func export(_ ckpt: Checkpoint, to out: String) throws -> [String] {
        guard let model = ckpt.model as? any HuggingFaceExportable else {
            throw EmeraldError.invalidArgument("only GPT and Llama-family checkpoints export to Hugging Face (this one holds a \(ckpt.model.config.modelType) model)")
        }
        let eot = (ckpt.tokenizer as? ByteLevelBPETokenizer)?.endOfTextID.map(Int.init)
        let config = try model.huggingFaceConfigData(endOfTextID: eot)
        let fm = FileManager.default
        let folder = OutputFolder(out, kind: "huggingface")
        try folder.requireWritable(kind: "huggingface")
        let lock = try folder.lock()
        defer { lock.release() }
        folder.removeLitter()
        let tmp = folder.temporaryPath
        try? fm.removeItem(atPath: tmp)
        do { try fm.createDirectory(atPath: tmp, withIntermediateDirectories: true) }
        catch { throw EmeraldError.io("cannot create \(tmp): permission denied or bad path") }
        do { return try write(model, ckpt.tokenizer, config: config, eot: eot, into: tmp, then: folder) } catch {
            try? fm.removeItem(atPath: tmp)
            throw error
        }
    }

    /// The export's files into `tmp`, then `tmp` swapped in for `folder`.
    private static func write(_ model: any HuggingFaceExportable, _ tokenizer: (any Tokenizer)?, config: Data, eot: Int?,
                              into tmp: String, then folder: OutputFolder) throws -> [String] {
        var notes: [String] = []
        try AtomicFile.write(config, to: tmp + "/config.json")
        var generation: [String: Any] = ["_from_model_config": true, "transformers_version": "5.0.0"]
        if let eot { generation["bos_token_id"] = eot; generation["eos_token_id"] = eot }
        try AtomicFile.writeJSON(generation, to: tmp + "/generation_config.json")
        try SafeTensors.write(model.huggingFaceTensors(), metadata: ["format": "pt"], to: tmp + "/model.safetensors")
        notes += model.huggingFaceNotes
        let context = model.contextLength ?? 1024
        switch tokenizer {
        case let bpe as ByteLevelBPETokenizer:
            try bpe.save(to: tmp + "/tokenizer.json")
            try bpe.writeVocabularyAndMerges(vocabularyPath: tmp + "/vocab.json", mergesPath: tmp + "/merges.txt")
            var tc: [String: Any] = ["tokenizer_class": "GPT2Tokenizer", "model_max_length": context,
                                     "add_prefix_space": false, "clean_up_tokenization_spaces": false]
            if let eot, let s = bpe.tokenString(Int32(eot)) { tc["bos_token"] = s; tc["eos_token"] = s; tc["unk_token"] = s }
            try AtomicFile.writeJSON(tc, to: tmp + "/tokenizer_config.json")
        case let chars as CharTokenizer:
            try AtomicFile.write(chars.huggingFaceTokenizerJSONData(), to: tmp + "/tokenizer.json")
            try AtomicFile.writeJSON(["tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": context,
                                      "clean_up_tokenization_spaces": false], to: tmp + "/tokenizer_config.json")
            notes.append("char tokenizer written as a tokenizers WordLevel tokenizer.json (one token per Unicode scalar; see README)")
        case nil:
            notes.append("the checkpoint has no tokenizer: none written")
        default:
            notes.append("tokenizer of unknown kind: none written")
        }
        try folder.mark(tmp)
        try folder.replace(with: tmp)
        return notes
    }
}

/// A Hugging Face architecture Emerald reads: its config.json `model_type` and how its
/// folder maps onto an Emerald model (config fields, tensor names and layouts).
public protocol HuggingFaceFamily {
    /// config.json's `model_type` ("gpt2").
    static var huggingFaceModelType: String { get }
    /// The model a folder of this family holds, its weights loaded and checked against
    /// config.json (given as `configData`) before anything sized by it is allocated.
    static func loadHuggingFace(directory: String, configData: Data) throws -> any LanguageModel
}

/// A model that writes itself in a Hugging Face family's layout.
public protocol HuggingFaceExportable: LanguageModel {
    /// The family's config.json bytes for this model.
    func huggingFaceConfigData(endOfTextID: Int?) throws -> Data
    /// Tensors under the family's names and layouts.
    func huggingFaceTensors() -> [(String, Tensor)]
    /// What a user should know about the export (e.g. zero biases written for a bias-free model).
    var huggingFaceNotes: [String] { get }
}
