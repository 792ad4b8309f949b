import Foundation

/// Hugging Face GPT-2 (`GPT2LMHeadModel`). Emerald's parameter names are GPT-2's, so the
/// mapping is only this:
/// - hub checkpoints drop the `transformer.` prefix and carry `h.N.attn.bias` /
///   `h.N.attn.masked_bias` buffers (causal-mask constants, ignored);
/// - GPT-2's `Conv1D` stores weights (in, out); Emerald's Linear, like `torch.nn.Linear`,
///   stores (out, in), so `c_attn`, `c_proj` and `c_fc` weights are transposed;
/// - `lm_head.weight` is absent when the head is tied to `wte`.
public enum GPT2Family: HuggingFaceFamily {
    /// "gpt2".
    public static let huggingFaceModelType = "gpt2"

    /// Emerald parameter names whose stored HF tensor is transposed (Conv1D weights).
    static func isConv1DWeight(_ name: String) -> Bool {
        name.hasSuffix("attn.c_attn.weight") || name.hasSuffix("attn.c_proj.weight")
            || name.hasSuffix("mlp.c_fc.weight") || name.hasSuffix("mlp.c_proj.weight")
    }

    /// Keys GPT-2 checkpoints carry that are not parameters.
    static func isBuffer(_ key: String) -> Bool {
        key.hasSuffix(".attn.bias") || key.hasSuffix(".attn.masked_bias")
    }

    /// A GPT-2 folder's model.
    public static func loadHuggingFace(directory dir: String, configData: Data) throws -> any LanguageModel {
        let path = dir + "/config.json"
        let config = try GPTConfig(huggingFace: GPT2HuggingFaceConfig(jsonData: configData, path: path), path: path)
        let weights = try HuggingFace.WeightFiles(directory: dir)
        try weights.requireShapes(config)
        let stored = weights.files.reduce(0.0) { sum, f in f.header.entries.values.reduce(sum) { $0 + Double($1.count) } }
        try ModelConfig.gpt(config).requireFits(storedParameters: stored, in: dir, configPath: path)
        var rng = RandomGenerator(seed: 0)
        let model = Tensor.withoutRandomInitialization { GPT(config, rng: &rng) }  // every weight is loaded next
        try weights.load(into: model, config: config)
        return model
    }

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
}

extension HuggingFace.WeightFiles {
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
                let transposed = GPT2Family.isConv1DWeight(name)
                let expected = transposed ? [p.shape[1], p.shape[0]] : p.shape
                guard e.shape == expected else {
                    throw EmeraldError.corruptCheckpoint(path: file.path, reason: "tensor \(key) has shape \(e.shape) but config.json (n_embd \(config.nEmbd), vocab_size \(config.vocabSize), n_positions \(config.blockSize)) needs \(expected)")
                }
                try file.copy(key, into: p, transposed: transposed)
                used.insert(key)
            }
            for key in fileOf.keys where !used.contains(key) && !GPT2Family.isBuffer(key) {
                // A tied checkpoint may still store the (identical) head.
                if key == "lm_head.weight" && config.tieWeights { continue }
                throw EmeraldError.corruptCheckpoint(path: files[fileOf[key]!].path, reason: "unexpected tensor \(key): not part of GPT2LMHeadModel with this config.json")
            }
        }
    }

extension GPT: HuggingFaceExportable {
    /// GPT-2's config.json for this model.
    public func huggingFaceConfigData(endOfTextID: Int?) throws -> Data {
        try cfg.huggingFaceConfig(endOfTextID: endOfTextID).jsonData()
    }
    /// `GPT2Family.tensors(of:)`.
    public func huggingFaceTensors() -> [(String, Tensor)] { GPT2Family.tensors(of: self) }
    /// Zero biases for a bias-free model.
    public var huggingFaceNotes: [String] { cfg.bias ? [] : ["the model has no biases: exported with zero biases (same outputs)"] }
}
