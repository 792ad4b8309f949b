/// Turns generated ids into text as they arrive, without cutting UTF-8 characters: byte-level
/// BPE ids are held back until they complete a character (see `BPEStreamDecoder`); other
/// tokenizers' ids are decoded one by one.
///
/// Stand-in written on the `serve` branch against the engine spec of issue 22; main's version
/// replaces it when merged.
public struct TextStream {
    private let tokenizer: any Tokenizer
    private var bpe: BPEStreamDecoder?

    /// A stream decoding `tokenizer`'s ids.
    public init(_ tokenizer: any Tokenizer) {
        self.tokenizer = tokenizer
        bpe = (tokenizer as? ByteLevelBPETokenizer).map { BPEStreamDecoder($0) }
    }

    /// Text completed by `id` (empty while a character is still incomplete).
    public mutating func push(_ id: Int32) -> String {
        if bpe != nil { return bpe!.push(id) }
        return tokenizer.decode([id])
    }

    /// Text still held back (an incomplete character becomes U+FFFD).
    public mutating func finish() -> String { bpe?.finish() ?? "" }
}
