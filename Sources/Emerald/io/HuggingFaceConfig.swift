/// Hugging Face GPT-2 `config.json` ⇄ `GPTConfig`.
///
/// Only options Emerald's GPT computes exactly are accepted; anything else is an
/// error naming the option, never a model that silently computes something else.
extension GPTConfig {
    /// `activation_function` values that are the tanh-approximated GELU Emerald implements.
    static let tanhGELUNames: Set<String> = ["gelu_new", "gelu_pytorch_tanh", "gelu_fast"]

    /// Reads a `transformers` GPT-2 config.json (`model_type` "gpt2").
    public init(huggingFace json: [String: Any], path: String) throws {
        func bad(_ r: String) -> EmeraldError { .corruptCheckpoint(path: path, reason: r) }
        func unsupported(_ r: String) -> EmeraldError { .invalidArgument("\(path): \(r) is not supported by Emerald's GPT-2") }
        func int(_ keys: String...) throws -> Int {
            for k in keys { if let v = json[k] as? Int { return v } }
            throw bad("config.json needs an integer \"\(keys[0])\"")
        }
        func double(_ k: String, _ fallback: Double) throws -> Double {
            guard let v = json[k], !(v is NSNull) else { return fallback }
            guard let d = v as? Double else { throw bad("\"\(k)\" must be a number") }
            return d
        }
        func bool(_ k: String, _ fallback: Bool) throws -> Bool {
            guard let v = json[k], !(v is NSNull) else { return fallback }
            guard let b = v as? Bool else { throw bad("\"\(k)\" must be true or false") }
            return b
        }
        guard json["model_type"] as? String == "gpt2" else {
            throw bad("model_type \((json["model_type"] as? String).map { "\"\($0)\"" } ?? "(missing)") is not gpt2")
        }
        let nEmbd = try int("n_embd")
        self.init(vocabSize: try int("vocab_size"), blockSize: try int("n_positions", "n_ctx"), nLayer: try int("n_layer"),
                  nHead: try int("n_head"), nEmbd: nEmbd)
        if let inner = json["n_inner"], !(inner is NSNull) {
            guard let n = inner as? Int, n == 4 * nEmbd else { throw unsupported("n_inner \(inner) (only 4 × n_embd = \(4 * nEmbd))") }
        }
        let act = json["activation_function"] as? String ?? "gelu_new"
        switch act {
        case _ where Self.tanhGELUNames.contains(act): activation = .gelu
        case "relu": activation = .relu
        case "silu", "swish": activation = .silu
        case "tanh": activation = .tanh
        case "sigmoid": activation = .sigmoid
        default: throw unsupported("activation_function \"\(act)\" (choose gelu_new, gelu_pytorch_tanh, relu, silu, tanh or sigmoid)")
        }
        guard try bool("scale_attn_weights", true) else { throw unsupported("scale_attn_weights false") }
        guard try !bool("scale_attn_by_inverse_layer_idx", false) else { throw unsupported("scale_attn_by_inverse_layer_idx true") }
        guard try !bool("add_cross_attention", false) else { throw unsupported("add_cross_attention true") }
        layerNormEpsilon = Float(try double("layer_norm_epsilon", 1e-5))
        tieWeights = try bool("tie_word_embeddings", true)
        // Emerald has one dropout rate; GPT-2 sets all three equal (0.1).
        dropout = Float(try double("resid_pdrop", 0.1))
        do { try validate() } catch let e as EmeraldError { throw bad(e.description) }
    }

    /// The config.json `transformers.GPT2LMHeadModel` loads for this model; throws for
    /// shapes GPT-2 cannot express (post-LN blocks).
    public func huggingFaceJSON(endOfTextID: Int?) throws -> [String: Any] {
        guard norm == .pre else {
            throw EmeraldError.invalidArgument("Hugging Face GPT-2 is pre-LN; this checkpoint has post-LN blocks and cannot be exported as GPT-2")
        }
        let act: String
        switch activation {
        case .gelu: act = "gelu_new"
        case .relu: act = "relu"
        case .silu: act = "silu"
        case .tanh: act = "tanh"
        case .sigmoid: act = "sigmoid"
        }
        var json: [String: Any] = [
            "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": vocabSize,
            "n_positions": blockSize, "n_ctx": blockSize, "n_embd": nEmbd, "n_layer": nLayer, "n_head": nHead,
            "n_inner": NSNull(), "activation_function": act, "layer_norm_epsilon": layerNormEpsilon.decimalDouble,
            "resid_pdrop": dropout.decimalDouble, "embd_pdrop": dropout.decimalDouble, "attn_pdrop": dropout.decimalDouble,
            "initializer_range": 0.02, "scale_attn_weights": true, "scale_attn_by_inverse_layer_idx": false,
            "reorder_and_upcast_attn": false, "add_cross_attention": false, "tie_word_embeddings": tieWeights,
            "use_cache": true, "dtype": "float32",
        ]
        if let e = endOfTextID { json["bos_token_id"] = e; json["eos_token_id"] = e }
        return json
    }
}

import Foundation
