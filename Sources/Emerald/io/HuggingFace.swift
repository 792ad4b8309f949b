import Foundation

/// Hugging Face GPT-2 folders: `config.json` + `model.safetensors` (or a sharded
/// `model.safetensors.index.json`), plus `tokenizer.json` or `vocab.json` + `merges.txt`.
///
/// Emerald's parameter names are GPT-2's, so the mapping is only this:
/// - hub checkpoints drop the `transformer.` prefix and carry `h.N.attn.bias` /
///   `h.N.attn.masked_bias` buffers (causal-mask constants, ignored);
/// - GPT-2's `Conv1D` stores weights (in, out); Emerald's Linear, like `torch.nn.Linear`,
///   stores (out, in), so `c_attn`, `c_proj` and `c_fc` weights are transposed;
/// - `lm_head.weight` is absent when the head is tied to `wte`.
public enum HuggingFace {
    /// True for a folder whose config.json says `"model_type": "gpt2"` (or any `transformers`
    /// config: it has `model_type` but is not one of Emerald's own).
    static func isHuggingFaceConfig(_ json: [String: Any]) -> Bool {
        guard let t = json["model_type"] as? String else { return false }
        return t != "gpt" && t != "bigram"
    }

    /// Emerald parameter names whose stored HF tensor is transposed (Conv1D weights).
    static func isConv1DWeight(_ name: String) -> Bool {
        name.hasSuffix("attn.c_attn.weight") || name.hasSuffix("attn.c_proj.weight")
            || name.hasSuffix("mlp.c_fc.weight") || name.hasSuffix("mlp.c_proj.weight")
    }

    /// Keys GPT-2 checkpoints carry that are not parameters.
    static func isBuffer(_ key: String) -> Bool {
        key.hasSuffix(".attn.bias") || key.hasSuffix(".attn.masked_bias")
    }

    // MARK: - Loading

    /// The error for a folder whose weights are only in PyTorch's pickle format.
    static func pickleOnly(_ dir: String) -> EmeraldError {
        .invalidArgument("\(dir) holds only pytorch_model.bin (a pickle, which Emerald does not execute); convert it once "
            + "with transformers — AutoModelForCausalLM.from_pretrained(DIR).save_pretrained(OUT) writes model.safetensors")
    }

    /// Loads a GPT-2 folder; the tokenizer is nil when the folder has none.
    public static func load(directory dir: String) throws -> Checkpoint {
        let config = try GPTConfig(huggingFace: AtomicFile.readJSON(dir + "/config.json"), path: dir + "/config.json")
        let weights = try WeightFiles(directory: dir)
        try weights.requireShapes(config)
        let stored = weights.files.reduce(0.0) { sum, f in f.header.entries.values.reduce(sum) { $0 + Double($1.count) } }
        try ModelConfig.gpt(config).requireFits(storedParameters: stored, in: dir, configPath: dir + "/config.json")
        var rng = RandomGenerator(seed: 0)
        let model = Tensor.withoutRandomInitialization { GPT(config, rng: &rng) }  // every weight is loaded next
        try weights.load(into: model, config: config)
        let fm = FileManager.default
        var tokenizer: (any Tokenizer)?
        if fm.fileExists(atPath: dir + "/tokenizer.json")
            || (fm.fileExists(atPath: dir + "/vocab.json") && fm.fileExists(atPath: dir + "/merges.txt")) {
            let t: any Tokenizer = fm.fileExists(atPath: dir + "/tokenizer.json")
                ? try loadTokenizer(json: AtomicFile.readJSON(dir + "/tokenizer.json"), path: dir + "/tokenizer.json")
                : try ByteLevelBPETokenizer.load(path: dir)
            guard t.vocabularySize <= config.vocabSize else {
                throw EmeraldError.corruptCheckpoint(path: dir, reason: "tokenizer has \(t.vocabularySize) tokens but the model only \(config.vocabSize)")
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

        /// Copies every parameter of `model` from the files, checking shapes against the config.
        /// "transformer." (save_pretrained) or "" (hub checkpoints).
        func prefix() throws -> String {
            if fileOf["transformer.wte.weight"] != nil { return "transformer." }
            if fileOf["wte.weight"] != nil { return "" }
            throw EmeraldError.corruptCheckpoint(path: files[0].path, reason: "neither transformer.wte.weight nor wte.weight: not a GPT-2 checkpoint")
        }

        /// Checks config.json's sizes against the stored tensors before a model is allocated
        /// for them: the embeddings' shapes, and the layer count against the blocks present.
        func requireShapes(_ config: GPTConfig) throws {
            let prefix = try prefix()
            for (key, expected) in [("wte.weight", [config.vocabSize, config.nEmbd]), ("wpe.weight", [config.blockSize, config.nEmbd])] {
                guard let (file, e) = entry(prefix + key) else {
                    throw EmeraldError.corruptCheckpoint(path: files[0].path, reason: "missing tensor \(prefix + key)")
                }
                guard e.shape == expected else {
                    throw EmeraldError.corruptCheckpoint(path: file.path, reason: "tensor \(prefix + key) has shape \(e.shape) but config.json (n_embd \(config.nEmbd), vocab_size \(config.vocabSize), n_positions \(config.blockSize)) needs \(expected)")
                }
            }
            let layers = Set(fileOf.keys.compactMap { key -> Int? in
                guard key.hasPrefix(prefix + "h.") else { return nil }
                return Int(key.dropFirst(prefix.count + 2).prefix { $0.isNumber })
            })
            guard layers.count == config.nLayer, layers.max() == config.nLayer - 1 else {
                throw EmeraldError.corruptCheckpoint(path: files[0].path, reason: "config.json has n_layer \(config.nLayer) but the weights hold \(layers.count) blocks")
            }
        }

        func load(into model: GPT, config: GPTConfig) throws {
            let prefix = try prefix()
            var used = Set<String>()
            for (name, p) in model.namedParameters() {
                let key = name.hasPrefix("transformer.") ? prefix + name.dropFirst("transformer.".count) : name
                guard let (file, e) = entry(key) else {
                    throw EmeraldError.corruptCheckpoint(path: files[0].path, reason: "missing tensor \(key)")
                }
                let transposed = HuggingFace.isConv1DWeight(name)
                let expected = transposed ? [p.shape[1], p.shape[0]] : p.shape
                guard e.shape == expected else {
                    throw EmeraldError.corruptCheckpoint(path: file.path, reason: "tensor \(key) has shape \(e.shape) but config.json (n_embd \(config.nEmbd), vocab_size \(config.vocabSize), n_positions \(config.blockSize)) needs \(expected)")
                }
                try file.copy(key, into: p, transposed: transposed)
                used.insert(key)
            }
            for key in fileOf.keys where !used.contains(key) && !HuggingFace.isBuffer(key) {
                // A tied checkpoint may still store the (identical) head.
                if key == "lm_head.weight" && config.tieWeights { continue }
                throw EmeraldError.corruptCheckpoint(path: files[fileOf[key]!].path, reason: "unexpected tensor \(key): not part of GPT2LMHeadModel with this config.json")
            }
        }
    }

    // MARK: - Export

    /// GPT-2 tensors in `save_pretrained`'s layout, Conv1D weights transposed; zero biases
    /// where the model has none (a bias-free layer equals GPT-2's with zero bias).
    public static func tensors(of model: GPT) -> [(String, Tensor)] {
        let params = Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.name, $0.tensor) })
        let c = model.cfg
        var out: [(String, Tensor)] = []
        func add(_ name: String, _ shapeIfAbsent: [Int] = []) {
            if let t = params[name] { out.append((name, isConv1DWeight(name) ? withNoGrad { t.transposed(0, 1) } : t)) }
            else { out.append((name, .zeros(shapeIfAbsent))) }  // biases of a bias-free model
        }
        add("transformer.wte.weight")
        add("transformer.wpe.weight")
        for i in 0..<c.nLayer {
            let h = "transformer.h.\(i)."
            for ln in ["ln_1", "ln_2"] { add(h + ln + ".weight"); add(h + ln + ".bias", [c.nEmbd]) }
            add(h + "attn.c_attn.bias", [3 * c.nEmbd]); add(h + "attn.c_attn.weight")
            add(h + "attn.c_proj.bias", [c.nEmbd]); add(h + "attn.c_proj.weight")
            add(h + "mlp.c_fc.bias", [4 * c.nEmbd]); add(h + "mlp.c_fc.weight")
            add(h + "mlp.c_proj.bias", [c.nEmbd]); add(h + "mlp.c_proj.weight")
        }
        add("transformer.ln_f.weight"); add("transformer.ln_f.bias", [c.nEmbd])
        if !c.tieWeights { add("lm_head.weight") }
        return out
    }

    /// Each parameter's gradient under its GPT-2 name and layout (for comparing with `transformers`).
    public static func gradients(of model: GPT) -> [(String, Tensor)] {
        model.namedParameters().compactMap { name, p in
            guard let g = p.grad else { return nil }
            return (name, isConv1DWeight(name) ? withNoGrad { g.transposed(0, 1) } : g)
        }
    }

    /// Writes `ckpt` as a folder `transformers.GPT2LMHeadModel.from_pretrained` loads:
    /// config.json, model.safetensors, generation_config.json and tokenizer files.
    /// Writes into a temporary sibling, then swaps it in (`OutputFolder`): an existing `out`
    /// is replaced only when it is an earlier export of Emerald's (or empty).
    public static func export(_ ckpt: Checkpoint, to out: String) throws -> [String] {
        guard let gpt = ckpt.model as? GPT else {
            throw EmeraldError.invalidArgument("only GPT checkpoints export to Hugging Face (this one holds a \(ckpt.model.config.modelType) model)")
        }
        let eot = (ckpt.tokenizer as? ByteLevelBPETokenizer)?.endOfTextID.map(Int.init)
        let config = try gpt.cfg.huggingFaceJSON(endOfTextID: eot)
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
        do { return try write(gpt, ckpt.tokenizer, config: config, eot: eot, into: tmp, then: folder) } catch {
            try? fm.removeItem(atPath: tmp)
            throw error
        }
    }

    /// The export's files into `tmp`, then `tmp` swapped in for `folder`.
    private static func write(_ gpt: GPT, _ tokenizer: (any Tokenizer)?, config: [String: Any], eot: Int?, into tmp: String,
                              then folder: OutputFolder) throws -> [String] {
        var notes: [String] = []
        try AtomicFile.writeJSON(config, to: tmp + "/config.json")
        var generation: [String: Any] = ["_from_model_config": true, "transformers_version": "5.0.0"]
        if let eot { generation["bos_token_id"] = eot; generation["eos_token_id"] = eot }
        try AtomicFile.writeJSON(generation, to: tmp + "/generation_config.json")
        try SafeTensors.write(tensors(of: gpt), metadata: ["format": "pt"], to: tmp + "/model.safetensors")
        if !gpt.cfg.bias { notes.append("the model has no biases: exported with zero biases (same outputs)") }
        switch tokenizer {
        case let bpe as ByteLevelBPETokenizer:
            try bpe.save(to: tmp + "/tokenizer.json")
            try bpe.writeVocabularyAndMerges(vocabularyPath: tmp + "/vocab.json", mergesPath: tmp + "/merges.txt")
            var tc: [String: Any] = ["tokenizer_class": "GPT2Tokenizer", "model_max_length": gpt.cfg.blockSize,
                                     "add_prefix_space": false, "clean_up_tokenization_spaces": false]
            if let eot, let s = bpe.tokenString(Int32(eot)) { tc["bos_token"] = s; tc["eos_token"] = s; tc["unk_token"] = s }
            try AtomicFile.writeJSON(tc, to: tmp + "/tokenizer_config.json")
        case let chars as CharTokenizer:
            try AtomicFile.write(chars.huggingFaceTokenizerJSONData(), to: tmp + "/tokenizer.json")
            try AtomicFile.writeJSON(["tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": gpt.cfg.blockSize,
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
