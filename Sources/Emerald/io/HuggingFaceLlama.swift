import Foundation

/// Hugging Face Llama-family folders (`LlamaForCausalLM`, `Qwen2ForCausalLM`,
/// `MistralForCausalLM`). Emerald's `Llama` has their parameter names and layouts, so the
/// mapping is only this:
/// - config.json's fields are `LlamaConfig`'s (Qwen2: biases on q/k/v; Mistral: no sliding window);
/// - tensors may be F32, F16 or BF16 (widened to float32 on load), in one file or sharded;
/// - `lm_head.weight` is absent when the head is tied (a stored copy is ignored); older
///   checkpoints' `rotary_emb.inv_freq` buffers are ignored (Emerald computes them).
public enum LlamaFamily: HuggingFaceFamily {
    /// "llama".
    public static let huggingFaceModelType = "llama"

    /// A Llama folder's model.
    public static func loadHuggingFace(directory dir: String, configData: Data) throws -> any LanguageModel {
        try load(directory: dir, configData: configData)
    }

    /// The model of a Llama, Qwen2 or Mistral folder, every tensor checked by name and shape.
    static func load(directory dir: String, configData: Data) throws -> Llama {
        let path = dir + "/config.json"
        let config: LlamaConfig
        do { config = try JSONDecoder().decode(LlamaConfig.self, from: configData) } catch {
            throw EmeraldError.corruptCheckpoint(path: path, reason: ConfigDecoding.describe(error))
        }
        do { try config.validate() } catch let e as EmeraldError { throw EmeraldError.corruptCheckpoint(path: path, reason: e.description) }
        let weights = try HuggingFace.WeightFiles(directory: dir)
        let stored = weights.files.reduce(0.0) { sum, f in f.header.entries.values.reduce(sum) { $0 + Double($1.count) } }
        try ModelConfig.llama(config).requireFits(storedParameters: stored, in: dir, configPath: path)
        var rng = RandomGenerator(seed: 0)
        let model = Tensor.withoutRandomInitialization { Llama(config, rng: &rng) }  // every weight is loaded next
        try weights.load(into: model, config: config)
        return model
    }

    /// Keys checkpoints carry that are not parameters.
    static func isBuffer(_ key: String) -> Bool { key.hasSuffix(".rotary_emb.inv_freq") }

    /// The architecture name and `model_type` a config exports as: Qwen2 for q/k/v-only biases.
    static func architecture(of c: LlamaConfig) -> (name: String, type: String) {
        c.qkvBias && !c.attentionBias ? ("Qwen2ForCausalLM", "qwen2") : ("LlamaForCausalLM", "llama")
    }
}

/// Qwen2 folders: Llama with biases on q, k and v.
public enum Qwen2Family: HuggingFaceFamily {
    /// "qwen2".
    public static let huggingFaceModelType = "qwen2"
    /// A Qwen2 folder's model.
    public static func loadHuggingFace(directory dir: String, configData: Data) throws -> any LanguageModel {
        try LlamaFamily.load(directory: dir, configData: configData)
    }
}

/// Mistral folders: Llama's tensors; a sliding window shorter than the context is refused.
public enum MistralFamily: HuggingFaceFamily {
    /// "mistral".
    public static let huggingFaceModelType = "mistral"
    /// A Mistral folder's model.
    public static func loadHuggingFace(directory dir: String, configData: Data) throws -> any LanguageModel {
        try LlamaFamily.load(directory: dir, configData: configData)
    }
}

extension HuggingFace.WeightFiles {
    /// Copies every parameter of `model` from the files under its own name, widening F16/BF16;
    /// a missing tensor, a wrong shape or a tensor the model does not have is an error naming it.
    func load(into model: Llama, config: LlamaConfig) throws {
        var used = Set<String>()
        for (name, p) in model.namedParameters() {
            guard let (file, e) = entry(name) else {
                throw EmeraldError.corruptCheckpoint(path: files[0].path, reason: "missing tensor \(name)")
            }
            guard e.shape == p.shape else {
                throw EmeraldError.corruptCheckpoint(path: file.path, reason: "tensor \(name) has shape \(e.shape) but config.json (hidden_size \(config.hiddenSize), intermediate_size \(config.intermediateSize), \(config.numAttentionHeads) heads, \(config.numKeyValueHeads) key/value heads of \(config.headDim), vocab_size \(config.vocabSize)) needs \(p.shape)")
            }
            try file.copy(name, into: p)
            used.insert(name)
        }
        for key in fileOf.keys.sorted() where !used.contains(key) && !LlamaFamily.isBuffer(key) {
            if key == "lm_head.weight" && config.tieWordEmbeddings { continue }  // a tied head stored anyway
            throw EmeraldError.corruptCheckpoint(path: files[fileOf[key]!].path,
                                                 reason: "unexpected tensor \(key): not part of \(LlamaFamily.architecture(of: config).name) with this config.json")
        }
    }
}

extension Llama: HuggingFaceExportable {
    /// `LlamaForCausalLM`'s (or `Qwen2ForCausalLM`'s) config.json for this model.
    public func huggingFaceConfigData(endOfTextID: Int?) throws -> Data {
        guard var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(cfg)) as? [String: Any] else {
            throw EmeraldError.io("cannot write the Llama configuration")
        }
        let (name, type) = LlamaFamily.architecture(of: cfg)
        json["residual_dropout"] = nil
        json["qkv_bias"] = nil
        if type == "qwen2" { json["attention_bias"] = nil; json["use_sliding_window"] = false }
        json["architectures"] = [name]
        json["model_type"] = type
        json["torch_dtype"] = "float32"
        json["use_cache"] = true
        json["pretraining_tp"] = 1
        let eot: Any = endOfTextID.map { $0 as Any } ?? NSNull()
        json["bos_token_id"] = eot
        json["eos_token_id"] = eot
        return try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
    }

    /// Every parameter under its own name (the head only when untied).
    public func huggingFaceTensors() -> [(String, Tensor)] { namedParameters().map { ($0.name, $0.tensor) } }

    /// Residual dropout has no `transformers` field.
    public var huggingFaceNotes: [String] {
        cfg.residualDropout > 0 ? ["residual_dropout \(cfg.residualDropout) (training only) has no transformers field: not exported"] : []
    }
}
