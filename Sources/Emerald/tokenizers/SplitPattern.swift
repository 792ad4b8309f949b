/// The `Split` pre-tokenizer patterns of Llama 3 and Qwen2 (tiktoken's `cl100k_base` family),
/// as a hand-written scanner over UTF-8 bytes, like `GPT2PreTokenizer`:
///
///     (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
///
/// (Qwen2 has `\p{N}` — single digits — where Llama 3 has `\p{N}{1,3}`.) The alternatives are
/// tried in order at each position, as Oniguruma (Hugging Face `tokenizers`' regex engine) does:
/// - contractions in any case, with Unicode case folding (`'S`, `'Ll`, and `'ſ` — U+017F folds to s);
/// - one optional character that is not CR, LF, a letter or a number (a space, a tab, a quote, a
///   combining mark…) joins the letter run that follows it;
/// - digits in runs of at most `maxDigits`;
/// - one optional space, a run of "other" characters (not whitespace, letter or number), then any
///   CR/LF characters;
/// - a whitespace run that holds a CR or LF ends after its last CR/LF;
/// - otherwise a whitespace run gives back its last character when text follows (`\s+(?!\S)`),
///   unless it is one character long (`\s+`).
/// `\p{L}`, `\p{N}` and `\s` are those of `GPT2PreTokenizer` (general categories L*, N*; White_Space).
public enum SplitPattern: Sendable, Equatable {
    /// Llama 3's pattern (`\p{N}{1,3}`).
    case llama3
    /// Qwen2's pattern (`\p{N}`, one digit per piece).
    case qwen2

    /// The regular expressions recognised in a tokenizer.json `Split` pre-tokenizer.
    static let known: [String: SplitPattern] = [
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#: .llama3,
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#: .qwen2,
    ]

    var maxDigits: Int { self == .llama3 ? 3 : 1 }

    /// The pieces of `text`, as strings (for tests and tools).
    public func split(_ text: String) -> [String] {
        var text = text
        return text.withUTF8 { p in
            var out: [String] = []
            forEachPiece(p) { s, e in out.append(String(decoding: UnsafeBufferPointer(rebasing: p[s..<e]), as: UTF8.self)) }
            return out
        }
    }

    /// Calls `body(start, end)` for each piece of the valid UTF-8 bytes `p`; the ranges tile `p`.
    func forEachPiece(_ p: UnsafeBufferPointer<UInt8>, _ body: (Int, Int) -> Void) {
        let n = p.count
        guard n > 0 else { return }
        let maxDigits = self.maxDigits
        let letter = GPT2PreTokenizer.letter, number = GPT2PreTokenizer.number
        let space = GPT2PreTokenizer.space, other = GPT2PreTokenizer.other
        GPT2PreTokenizer.bmpClasses.withUnsafeBufferPointer { table in
            let b = p.baseAddress!
            @inline(__always) func classAt(_ i: Int) -> (UInt8, Int) { UTF8Classes.classAt(b, i, table) }
            @inline(__always) func isNewline(_ i: Int) -> Bool { b[i] == 0x0A || b[i] == 0x0D }
            @inline(__always) func run(from j0: Int, of cls: UInt8) -> Int {
                var j = j0
                while j < n {
                    let (c, l) = classAt(j)
                    if c != cls { break }
                    j += l
                }
                return j
            }
            var i = 0
            while i < n {
                if b[i] == 0x27, i + 1 < n {
                    let len = Self.contraction(b, i, n)
                    if len > 0 { body(i, i + len); i += len; continue }
                }
                let (cls, len) = classAt(i)
                // [^\r\n\p{L}\p{N}]?\p{L}+
                if cls == letter { let j = run(from: i + len, of: letter); body(i, j); i = j; continue }
                if cls != number && !isNewline(i) && i + len < n {
                    let (c2, l2) = classAt(i + len)
                    if c2 == letter { let j = run(from: i + len + l2, of: letter); body(i, j); i = j; continue }
                }
                // \p{N}{1,maxDigits}
                if cls == number {
                    var j = i + len, count = 1
                    while j < n && count < maxDigits {
                        let (c, l) = classAt(j)
                        if c != number { break }
                        j += l; count += 1
                    }
                    body(i, j); i = j
                    continue
                }
                // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
                var s = -1
                if cls == other { s = i + len } else if b[i] == 0x20 && i + 1 < n {
                    let (c2, l2) = classAt(i + 1)
                    if c2 == other { s = i + 1 + l2 }
                }
                if s >= 0 {
                    var j = run(from: s, of: other)
                    while j < n && isNewline(j) { j += 1 }
                    body(i, j); i = j
                    continue
                }
                // Whitespace: \s*[\r\n]+ | \s+(?!\S) | \s+
                var j = i, lastNewline = -1, lastStart = i
                while j < n {
                    let (c, l) = classAt(j)
                    if c != space { break }
                    if isNewline(j) { lastNewline = j }
                    lastStart = j
                    j += l
                }
                if lastNewline >= 0 { body(i, lastNewline + 1); i = lastNewline + 1; continue }
                if j == n || lastStart == i { body(i, j); i = j; continue }
                body(i, lastStart); i = lastStart
            }
        }
    }

    /// Length of the case-insensitive contraction at `i` (a `'`), or 0.
    @inline(__always)
    static func contraction(_ b: UnsafePointer<UInt8>, _ i: Int, _ n: Int) -> Int {
        let c1 = b[i + 1] | 0x20  // ASCII lowercase (only compared with letters)
        switch c1 {
        case 0x73, 0x74, 0x6D, 0x64: if b[i + 1] & 0xC0 == 0x40 { return 2 }  // s t m d (S T M D)
        case 0x72, 0x76: if i + 2 < n, b[i + 1] & 0xC0 == 0x40, b[i + 2] | 0x20 == 0x65, b[i + 2] & 0xC0 == 0x40 { return 3 }  // re ve
        case 0x6C: if i + 2 < n, b[i + 1] & 0xC0 == 0x40, b[i + 2] | 0x20 == 0x6C, b[i + 2] & 0xC0 == 0x40 { return 3 }  // ll
        default: break
        }
        if b[i + 1] == 0xC5, i + 2 < n, b[i + 2] == 0xBF { return 3 }  // 'ſ (U+017F LATIN SMALL LETTER LONG S folds to s)
        return 0
    }
}

/// UTF-8 scalar classes shared by the pre-tokenizer scanners.
enum UTF8Classes {
    /// Class (`GPT2PreTokenizer`'s other / letter / number / space) and byte length of the scalar at `i`.
    @inline(__always)
    static func classAt(_ b: UnsafePointer<UInt8>, _ i: Int, _ t: UnsafeBufferPointer<UInt8>) -> (UInt8, Int) {
        let b0 = UInt32(b[i])
        if b0 < 0x80 { return (t[Int(b0)], 1) }
        if b0 < 0xE0 { return (t[Int((b0 & 0x1F) << 6 | UInt32(b[i + 1] & 0x3F))], 2) }
        if b0 < 0xF0 { return (t[Int((b0 & 0x0F) << 12 | UInt32(b[i + 1] & 0x3F) << 6 | UInt32(b[i + 2] & 0x3F))], 3) }
        let v = (b0 & 0x07) << 18 | UInt32(b[i + 1] & 0x3F) << 12 | UInt32(b[i + 2] & 0x3F) << 6 | UInt32(b[i + 3] & 0x3F)
        return (GPT2PreTokenizer.classifySupplementary(v), 4)
    }

    /// `Digits` pre-tokenizer: numbers (`char::is_numeric`: N*) isolated one by one
    /// (`individual`) or as runs; the text between them as runs.
    static func forEachDigitsPiece(_ p: UnsafeBufferPointer<UInt8>, individual: Bool, _ body: (Int, Int) -> Void) {
        let n = p.count
        guard n > 0 else { return }
        GPT2PreTokenizer.bmpClasses.withUnsafeBufferPointer { table in
            let b = p.baseAddress!
            var i = 0
            while i < n {
                let (c, l) = classAt(b, i, table)
                let isNumber = c == GPT2PreTokenizer.number
                var j = i + l
                if !(isNumber && individual) {
                    while j < n {
                        let (c2, l2) = classAt(b, j, table)
                        if (c2 == GPT2PreTokenizer.number) != isNumber { break }
                        j += l2
                    }
                }
                body(i, j); i = j
            }
        }
    }
}
