/// GPT-2's pre-tokenizer, as a hand-written scanner over UTF-8 bytes.
///
/// It splits text exactly like GPT-2's regular expression
///
///     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
///
/// (the `pat_str` of tiktoken's `gpt2`/`r50k_base` and of Hugging Face's
/// `ByteLevel` pre-tokenizer), without a regex engine:
/// - contractions are matched first and only in lowercase (`'S` is not one);
/// - `\p{L}` / `\p{N}` are the Unicode general categories L* and N*; combining
///   marks (M*) are therefore "other" characters, like punctuation;
/// - `\s` is the Unicode `White_Space` property (`Unicode.Scalar.Properties.isWhitespace`):
///   tab…CR, space, U+0085, NBSP, U+1680, U+2000…U+200A, U+2028/9, U+202F, U+205F, U+3000;
/// - one optional leading *space* (U+0020 only) joins a following letter, number
///   or "other" run;
/// - a whitespace run followed by more text gives back its last character (the
///   `\s+(?!\S)` rule), so that `"  word"` splits as `" "`, `" word"`.
/// The scanner runs in one pass with a table lookup per ASCII byte; non-ASCII
/// classes come from a table for the Basic Multilingual Plane built once.
public enum GPT2PreTokenizer {
    static let other: UInt8 = 0, letter: UInt8 = 1, number: UInt8 = 2, space: UInt8 = 3

    /// Class of every BMP scalar (other / letter / number / whitespace).
    static let bmpClasses: [UInt8] = (0..<0x10000).map { (v: Int) -> UInt8 in
        // Surrogates never occur in valid UTF-8.
        guard let s = Unicode.Scalar(UInt32(v)) else { return GPT2PreTokenizer.other }
        return GPT2PreTokenizer.classify(s)
    }

    static func classify(_ s: Unicode.Scalar) -> UInt8 {
        let p = s.properties
        if p.isWhitespace { return space }
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return letter
        case .decimalNumber, .letterNumber, .otherNumber: return number
        default: return other
        }
    }

    @inline(never)
    static func classifySupplementary(_ v: UInt32) -> UInt8 {
        guard let s = Unicode.Scalar(v) else { return other }
        return classify(s)
    }

    /// The pre-tokens of `text`, as strings (convenient for tests and tools; the
    /// tokenizer itself works on byte ranges).
    public static func split(_ text: String) -> [String] {
        var text = text
        return text.withUTF8 { (p) -> [String] in
            var out: [String] = []
            forEachPiece(p) { s, e in out.append(String(decoding: UnsafeBufferPointer(rebasing: p[s..<e]), as: UTF8.self)) }
            return out
        }
    }

    /// Calls `body(start, end)` for each pre-token of the valid UTF-8 bytes `p`, in order;
    /// the ranges tile `p` exactly.
    @inline(__always)
    static func forEachPiece(_ p: UnsafeBufferPointer<UInt8>, _ body: (Int, Int) -> Void) {
        let n = p.count
        guard n > 0 else { return }
        bmpClasses.withUnsafeBufferPointer { table in
            let t = table.baseAddress!
            let b = p.baseAddress!
            // Class and byte length of the scalar at byte offset i.
            @inline(__always) func classAt(_ i: Int) -> (UInt8, Int) {
                let b0 = UInt32(b[i])
                if b0 < 0x80 { return (t[Int(b0)], 1) }
                if b0 < 0xE0 {
                    return (t[Int((b0 & 0x1F) << 6 | UInt32(b[i + 1] & 0x3F))], 2)
                }
                if b0 < 0xF0 {
                    return (t[Int((b0 & 0x0F) << 12 | UInt32(b[i + 1] & 0x3F) << 6 | UInt32(b[i + 2] & 0x3F))], 3)
                }
                let v = (b0 & 0x07) << 18 | UInt32(b[i + 1] & 0x3F) << 12 | UInt32(b[i + 2] & 0x3F) << 6 | UInt32(b[i + 3] & 0x3F)
                return (classifySupplementary(v), 4)
            }
            var i = 0
            while i < n {
                let c0 = b[i]
                // 's 't 're 've 'm 'll 'd (lowercase only, as in GPT-2's pattern).
                if c0 == 0x27 && i + 1 < n {
                    let c1 = b[i + 1]
                    if c1 == 0x73 || c1 == 0x74 || c1 == 0x6D || c1 == 0x64 { body(i, i + 2); i += 2; continue }
                    if i + 2 < n {
                        let c2 = b[i + 2]
                        if (c2 == 0x65 && (c1 == 0x72 || c1 == 0x76)) || (c1 == 0x6C && c2 == 0x6C) {
                            body(i, i + 3); i += 3; continue
                        }
                    }
                }
                var (cls, len) = classAt(i)
                var j = i + len
                if c0 == 0x20 && j < n {
                    // " ?X+": a space joins a following letter / number / other run.
                    let (c2, len2) = classAt(j)
                    if c2 != space { cls = c2; j += len2 }
                }
                if cls != space {
                    while j < n {
                        let (c, l) = classAt(j)
                        if c != cls { break }
                        j += l
                    }
                    body(i, j); i = j
                    continue
                }
                // A whitespace run [i, j): all of it at the end of the text or when it is one
                // character long; otherwise all but its last character (\s+(?!\S)).
                var last = i
                while j < n {
                    let (c, l) = classAt(j)
                    if c != space { break }
                    last = j
                    j += l
                }
                if j == n || last == i {
                    body(i, j); i = j
                } else {
                    body(i, last); i = last
                }
            }
        }
    }
}
