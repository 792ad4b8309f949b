/// Turns sampled ids into text as they arrive: ids of byte-level BPE and of byte-fallback
/// (`<0xNN>`) tokens are held back until they complete a UTF-8 character, so every piece is whole text.
public struct TextStream {
    private let tokenizer: any Tokenizer
    private let bytes: (any ByteStreamingTokenizer)?
    private var pending: [UInt8] = []

    /// A stream of `tokenizer`'s ids.
    public init(_ tokenizer: any Tokenizer) {
        self.tokenizer = tokenizer
        bytes = tokenizer as? any ByteStreamingTokenizer
    }

    /// Text completed by `id`.
    public mutating func push(_ id: Int32) -> String {
        guard let bytes else { return tokenizer.decode([id]) }
        pending += bytes.streamBytes(id)
        let ready = pending.count - BPEStreamDecoder.incompleteTail(pending)
        guard ready > 0 else { return "" }
        let text = String(decoding: pending[..<ready], as: UTF8.self)
        pending.removeFirst(ready)
        return text
    }

    /// Text still held back (an incomplete character at the end).
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }
}
