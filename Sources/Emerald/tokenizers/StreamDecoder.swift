/// Decodes byte-level BPE ids one at a time (as a sampler produces them) without
/// cutting UTF-8 characters: a character whose bytes are split over several ids is
/// held back until its last byte arrives, instead of printing U+FFFD halves.
///
///     var stream = BPEStreamDecoder(tokenizer)
///     for id in ids { print(stream.push(id), terminator: "") }
///     print(stream.finish())
public struct BPEStreamDecoder {
    /// The tokenizer whose ids are decoded.
    public let tokenizer: ByteLevelBPETokenizer
    private var stream: TextStream

    public init(_ tokenizer: ByteLevelBPETokenizer) {
        self.tokenizer = tokenizer
        stream = TextStream(tokenizer)
    }

    /// Text completed by `id` (possibly empty while a character is still incomplete).
    public mutating func push(_ id: Int32) -> String { stream.push(id) }

    /// Whatever is still held back (an incomplete character becomes U+FFFD).
    public mutating func finish() -> String { stream.finish() }

    /// Length of a trailing, so-far-valid but unfinished UTF-8 sequence (0…3).
    static func incompleteTail(_ b: [UInt8]) -> Int {
        let n = b.count
        var k = 1
        while k <= min(3, n) {
            let x = b[n - k]
            if x & 0xC0 != 0x80 {  // not a continuation byte: the sequence start
                let need: Int
                switch x {
                case 0xC2...0xDF: need = 2
                case 0xE0...0xEF: need = 3
                case 0xF0...0xF4: need = 4
                default: return 0
                }
                return k < need ? k : 0
            }
            k += 1
        }
        return 0
    }
}
