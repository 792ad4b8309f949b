import Emerald

/// The shape flags of `train` applied to `--arch llama`.
extension GPTShapeOptions {
    /// Llama settings named by the flags that set them (`num_hidden_layers` → `n_layer`).
    private static let llamaFlags = ["num_hidden_layers": "n_layer", "num_attention_heads": "n_head",
                                     "num_key_value_heads": "n_kv_head", "hidden_size": "n_embd", "head_dim": "n_embd",
                                     "max_position_embeddings": "block_size", "attention_dropout": "dropout",
                                     "residual_dropout": "dropout"]

    /// The Llama an `--arch llama` run trains: a Llama preset (default oz: GPT's oz shape with
    /// RMSNorm, SwiGLU and rotary positions) with the given flags.
    func llamaConfig(vocabSize: Int) throws -> LlamaConfig {
        try applied(to: try LlamaConfig.preset(preset ?? "oz", vocabSize: vocabSize))
    }

    /// `base` with the given flags (a preset replaces the whole shape first). `--n-embd` sets
    /// the MLP width to 8/3 of it (rounded up to a multiple of 8), as many weights as GPT's 4×.
    func applied(to base: LlamaConfig) throws -> LlamaConfig {
        try require(activation == nil && norm == nil && bias == nil,
                    "--activation, --norm and --bias apply to GPT blocks; --arch llama has SwiGLU, RMSNorm (pre) and no biases")
        var c = base
        if let preset { c = try LlamaConfig.preset(preset, vocabSize: base.vocabSize) }
        if let nLayer { c.numHiddenLayers = nLayer }
        if let nHead { c.numAttentionHeads = nHead; c.numKeyValueHeads = nHead }
        if let nKvHead { c.numKeyValueHeads = nKvHead }
        if let nEmbd { c.hiddenSize = nEmbd; c.intermediateSize = (8 * nEmbd / 3 + 7) / 8 * 8 }
        if nEmbd != nil || nHead != nil {
            try require(c.numAttentionHeads > 0 && c.hiddenSize % c.numAttentionHeads == 0, field: "n_embd",
                        "\(c.hiddenSize) is not divisible by n_head \(c.numAttentionHeads)")
            c.headDim = c.hiddenSize / c.numAttentionHeads
        }
        if let blockSize { c.maxPositionEmbeddings = blockSize }
        if let dropout { c.attentionDropout = dropout; c.residualDropout = dropout }
        if let tieWeights { c.tieWordEmbeddings = tieWeights }
        do { try c.validate() } catch EmeraldError.invalidSetting(let field, var problem) {
            for (name, flag) in Self.llamaFlags { problem = problem.replacingOccurrences(of: name, with: flag) }
            throw EmeraldError.invalidSetting(field: Self.llamaFlags[field] ?? field, problem: problem)
        }
        return c
    }

    /// Throws, naming each flag, when the given shape flags describe another model than `run`'s.
    func requireAgreement(with run: LlamaConfig) throws {
        guard !isEmpty || blockSize != nil else { return }
        let asked = try applied(to: run)
        var clashes: [String] = []
        func check<T: Equatable>(_ flag: String, _ a: T, _ b: T) { if a != b { clashes.append("\(flag) \(a) (the run has \(b))") } }
        check("--n-layer", asked.numHiddenLayers, run.numHiddenLayers); check("--n-head", asked.numAttentionHeads, run.numAttentionHeads)
        check("--n-kv-head", asked.numKeyValueHeads, run.numKeyValueHeads); check("--n-embd", asked.hiddenSize, run.hiddenSize)
        check("--block-size", asked.maxPositionEmbeddings, run.maxPositionEmbeddings)
        check("--dropout", asked.residualDropout, run.residualDropout); check("--tie-weights", asked.tieWordEmbeddings, run.tieWordEmbeddings)
        if !clashes.isEmpty {
            let via = preset.map { " (--preset \($0))" } ?? ""
            throw EmeraldError.invalidArgument("--resume keeps the run's shape; these flags contradict it\(via): \(clashes.joined(separator: ", ")); drop them")
        }
    }
}
