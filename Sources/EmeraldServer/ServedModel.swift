import Emerald
import Foundation

/// The one model a server serves: its name, tokenizer, chat template and decoder.
public final class ServedModel: Sendable {
    /// The id clients name it by (`model` in requests, `/v1/models`).
    public let id: String
    /// Its tokenizer.
    public let tokenizer: any Tokenizer
    /// Its chat template; nil when the model has one of a form Emerald does not know.
    public let template: ChatTemplate?
    /// Why `template` is nil (chat requests answer it as a 400).
    public let templateProblem: String?
    /// The decoder running the model.
    public let decoder: BatchDecoder
    /// Ids that end a generation: end-of-text and end-of-turn tokens the tokenizer has.
    public let stopTokens: Set<Int32>
    /// Unix time the server started (`created` of `/v1/models`).
    public let created = Int(Date().timeIntervalSince1970)

    /// Serves `decoder`'s model as `id`; `template` is the model's chat template, or the error
    /// reading it gave.
    public init(id: String, tokenizer: any Tokenizer, template: Result<ChatTemplate, any Error>, decoder: BatchDecoder) {
        self.id = id; self.tokenizer = tokenizer; self.decoder = decoder
        switch template {
        case .success(let t): self.template = t; templateProblem = nil
        case .failure(let e): self.template = nil; templateProblem = "\(e)"
        }
        let t = self.template
        stopTokens = Set(["<|endoftext|>", t?.endOfTurn, t?.eos].compactMap { $0.flatMap { Self.special($0, in: tokenizer) } })
    }

    /// The id of a special token of the tokenizer (`<|endoftext|>`), if it has it.
    func specialToken(_ text: String) -> Int32? { Self.special(text, in: tokenizer) }

    private static func special(_ text: String, in tokenizer: any Tokenizer) -> Int32? {
        (tokenizer as? ByteLevelBPETokenizer)?.specialTokens[text]
    }

    /// Positions a request may use: prompt plus generated tokens.
    public var context: Int { decoder.context }

    /// Ids for request text; special tokens are read as such only in rendered chat templates.
    func encode(_ text: String, specials: Bool) throws -> [Int32] {
        do {
            if specials, let bpe = tokenizer as? ByteLevelBPETokenizer {
                return bpe.encode(text, allowedSpecial: bpe.allSpecialTokens)
            }
            return try tokenizer.encode(text)
        } catch let e as EmeraldError {
            throw APIError.invalid("the model's tokenizer cannot read the text: \(e.description)")
        }
    }

    /// The bytes a token stands for (its text's UTF-8 for tokenizers that are not byte-level).
    func bytes(_ id: Int32) -> [UInt8] {
        if let bpe = tokenizer as? ByteLevelBPETokenizer { return bpe.decodeBytes([id]) }
        return Array(tokenizer.decode([id]).utf8)
    }
}
