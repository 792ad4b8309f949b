/// Turns sampled ids into text as they arrive: byte-level BPE ids are held back until they
/// complete a UTF-8 character, so every piece is whole text.
public struct TextStream {
    private let tokenizer: any Tokenizer
    private var bpe: BPEStreamDecoder?

    /// A stream of `tokenizer`'s ids.
    public init(_ tokenizer: any Tokenizer) {
        self.tokenizer = tokenizer
        bpe = (tokenizer as? ByteLevelBPETokenizer).map { BPEStreamDecoder($0) }
    }

    /// Text completed by `id`.
    public mutating func push(_ id: Int32) -> String {
        if bpe != nil { return bpe!.push(id) }
        return tokenizer.decode([id])
    }

    /// Text still held back (an incomplete character at the end).
    public mutating func finish() -> String { bpe?.finish() ?? "" }
}
