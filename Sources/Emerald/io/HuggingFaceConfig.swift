import Foundation

/// Hugging Face GPT-2's `config.json` (`transformers.GPT2Config`): the fields Emerald reads
/// and writes, each optional as in the file.
public struct GPT2HuggingFaceConfig: Codable, Sendable, Equatable {
    public var architectures: [String]?
    public var modelType: String?
    public var vocabSize: Int?
    public var nPositions: Int?
    public var nCtx: Int?
    public var nEmbd: Int?
    public var nLayer: Int?
    public var nHead: Int?
    public var nInner: Int?
    public var activationFunction: String?
    public var layerNormEpsilon: Double?
    public var residPdrop: Double?
    public var embdPdrop: Double?
    public var attnPdrop: Double?
    public var initializerRange: Double?
    public var scaleAttnWeights: Bool?
    public var scaleAttnByInverseLayerIdx: Bool?
    public var reorderAndUpcastAttn: Bool?
    public var addCrossAttention: Bool?
    public var tieWordEmbeddings: Bool?
    public var useCache: Bool?
    public var dtype: String?
    public var bosTokenId: Int?
    public var eosTokenId: Int?

    enum CodingKeys: String, CodingKey {
        case architectures, modelType = "model_type", vocabSize = "vocab_size", nPositions = "n_positions", nCtx = "n_ctx"
        case nEmbd = "n_embd", nLayer = "n_layer", nHead = "n_head", nInner = "n_inner"
        case activationFunction = "activation_function", layerNormEpsilon = "layer_norm_epsilon"
        case residPdrop = "resid_pdrop", embdPdrop = "embd_pdrop", attnPdrop = "attn_pdrop", initializerRange = "initializer_range"
        case scaleAttnWeights = "scale_attn_weights", scaleAttnByInverseLayerIdx = "scale_attn_by_inverse_layer_idx"
        case reorderAndUpcastAttn = "reorder_and_upcast_attn", addCrossAttention = "add_cross_attention"
        case tieWordEmbeddings = "tie_word_embeddings", useCache = "use_cache", dtype
        case bosTokenId = "bos_token_id", eosTokenId = "eos_token_id"
    }

    /// Every field absent.
    public init() {}

    /// Reads config.json's bytes; a field of the wrong type is an error naming it.
    public init(jsonData data: Data, path: String) throws {
        do { self = try JSONDecoder().decode(Self.self, from: data) } catch {
            throw EmeraldError.corruptCheckpoint(path: path, reason: ConfigDecoding.describe(error))
        }
    }

    /// The file's bytes, keys sorted.
    public func jsonData() throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try enc.encode(self)
    }
}

/// Hugging Face GPT-2 `config.json` ⇄ `GPTConfig`.
///
/// Only options Emerald's GPT computes exactly are accepted; anything else is an
/// error naming the option, never a model that silently computes something else.
extension GPTConfig {
    /// `activation_function` values that are the tanh-approximated GELU Emerald implements.
    static let tanhGELUNames: Set<String> = ["gelu_new", "gelu_pytorch_tanh", "gelu_fast"]

    /// The GPT a `transformers` GPT-2 config describes (`model_type` "gpt2").
    public init(huggingFace hf: GPT2HuggingFaceConfig, path: String) throws {
        func bad(_ r: String) -> EmeraldError { .corruptCheckpoint(path: path, reason: r) }
        func unsupported(_ r: String) -> EmeraldError { .invalidArgument("\(path): \(r) is not supported by Emerald's GPT-2") }
        func int(_ v: Int?, _ key: String) throws -> Int {
            guard let v else { throw bad("config.json needs an integer \"\(key)\"") }
            return v
        }
        guard hf.modelType == "gpt2" else { throw bad("model_type \(hf.modelType.map { "\"\($0)\"" } ?? "(missing)") is not gpt2") }
        let nEmbd = try int(hf.nEmbd, "n_embd")
        self.init(vocabSize: try int(hf.vocabSize, "vocab_size"), blockSize: try int(hf.nPositions ?? hf.nCtx, "n_positions"),
                  nLayer: try int(hf.nLayer, "n_layer"), nHead: try int(hf.nHead, "n_head"), nEmbd: nEmbd)
        if let inner = hf.nInner, inner != 4 * nEmbd { throw unsupported("n_inner \(inner) (only 4 × n_embd = \(4 * nEmbd))") }
        let act = hf.activationFunction ?? "gelu_new"
        switch act {
        case _ where Self.tanhGELUNames.contains(act): activation = .gelu
        case "relu": activation = .relu
        case "silu", "swish": activation = .silu
        case "tanh": activation = .tanh
        case "sigmoid": activation = .sigmoid
        default: throw unsupported("activation_function \"\(act)\" (choose gelu_new, gelu_pytorch_tanh, relu, silu, tanh or sigmoid)")
        }
        guard hf.scaleAttnWeights ?? true else { throw unsupported("scale_attn_weights false") }
        guard !(hf.scaleAttnByInverseLayerIdx ?? false) else { throw unsupported("scale_attn_by_inverse_layer_idx true") }
        guard !(hf.addCrossAttention ?? false) else { throw unsupported("add_cross_attention true") }
        layerNormEpsilon = Float(hf.layerNormEpsilon ?? 1e-5)
        tieWeights = hf.tieWordEmbeddings ?? true
        // Emerald has one dropout rate; GPT-2 sets all three equal (0.1).
        dropout = Float(hf.residPdrop ?? 0.1)
        do { try validate() } catch let e as EmeraldError { throw bad(e.description) }
    }

    /// The config `transformers.GPT2LMHeadModel` loads for this model; throws for shapes
    /// GPT-2 cannot express (post-LN blocks).
    public func huggingFaceConfig(endOfTextID: Int?) throws -> GPT2HuggingFaceConfig {
        guard norm == .pre else {
            throw EmeraldError.invalidArgument("Hugging Face GPT-2 is pre-LN; this checkpoint has post-LN blocks and cannot be exported as GPT-2")
        }
        var hf = GPT2HuggingFaceConfig()
        switch activation {
        case .gelu: hf.activationFunction = "gelu_new"
        case .relu: hf.activationFunction = "relu"
        case .silu: hf.activationFunction = "silu"
        case .tanh: hf.activationFunction = "tanh"
        case .sigmoid: hf.activationFunction = "sigmoid"
        }
        hf.architectures = ["GPT2LMHeadModel"]; hf.modelType = "gpt2"; hf.vocabSize = vocabSize
        hf.nPositions = blockSize; hf.nCtx = blockSize; hf.nEmbd = nEmbd; hf.nLayer = nLayer; hf.nHead = nHead
        hf.layerNormEpsilon = layerNormEpsilon.decimalDouble
        hf.residPdrop = dropout.decimalDouble; hf.embdPdrop = dropout.decimalDouble; hf.attnPdrop = dropout.decimalDouble
        hf.initializerRange = 0.02; hf.scaleAttnWeights = true; hf.scaleAttnByInverseLayerIdx = false
        hf.reorderAndUpcastAttn = false; hf.addCrossAttention = false; hf.tieWordEmbeddings = tieWeights
        hf.useCache = true; hf.dtype = "float32"
        hf.bosTokenId = endOfTextID; hf.eosTokenId = endOfTextID
        return hf
    }
}
