import Foundation

/// The sections of a Hugging Face tokenizer.json around its BPE model — normalizer,
/// pre-tokenizer, added tokens, post-processor, decoder — for the kinds Llama-style models ship
/// (Llama 2/3, TinyLlama, Qwen2, SmolLM2), read into small enums that do what `tokenizers` does.
/// Anything else is refused with one line naming the section and its type.
enum TokenizerPipeline {
    enum Normalizer: Equatable {
        case nfc
        case prepend(String)
        case replace(String, String)
    }

    enum PrependScheme: Equatable { case always, first, never }

    enum PreTokenizer: Equatable {
        case split(SplitPattern)
        case digits(individual: Bool)
        case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
        case metaspace(replacement: String, prepend: PrependScheme, split: Bool)
    }

    enum Decoder: Equatable {
        case byteLevel
        case replace(String, String)
        case byteFallback
        case fuse
        case strip(Unicode.Scalar, start: Int, stop: Int)
        case metaspace(replacement: Unicode.Scalar, prepend: PrependScheme)
    }

    struct AddedToken {
        var content: String
        var id: Int32
        var special: Bool
        var singleWord: Bool
        var lstrip: Bool
        var rstrip: Bool
        var normalized: Bool
    }

    struct Failure: Error { let reason: String }

    static func typeName(_ v: Any?) -> String? {
        if v == nil || v is NSNull { return nil }
        return (v as? [String: Any])?["type"] as? String ?? "of no known type"
    }

    /// The string of a `{"String": s}` pattern (a `{"Regex": …}` one is refused).
    static func stringPattern(_ v: Any?, _ section: String) throws -> String {
        guard let p = v as? [String: Any], let s = p["String"] as? String, !s.isEmpty else {
            throw Failure(reason: "\(section) with a regex pattern is not supported (only a plain string pattern)")
        }
        return s
    }

    // MARK: - Reading

    static func normalizers(_ v: Any?) throws -> [Normalizer] {
        guard let type = typeName(v), let n = v as? [String: Any] else { return [] }
        switch type {
        case "NFC": return [.nfc]
        case "Prepend":
            guard let s = n["prepend"] as? String else { throw Failure(reason: "normalizer Prepend has no \"prepend\" string") }
            return [.prepend(s)]
        case "Replace":
            return [.replace(try stringPattern(n["pattern"], "normalizer Replace"), n["content"] as? String ?? "")]
        case "Sequence":
            return try (n["normalizers"] as? [Any] ?? []).flatMap { try normalizers($0) }
        default:
            throw Failure(reason: "normalizer \(type) is not supported (Emerald reads NFC, Prepend, Replace and Sequences of them)")
        }
    }

    static func prependScheme(_ n: [String: Any]) -> PrependScheme {
        switch n["prepend_scheme"] as? String {
        case "first": return .first
        case "never": return .never
        case "always": return .always
        default: return (n["add_prefix_space"] as? Bool ?? true) ? .always : .never
        }
    }

    static func preTokenizers(_ v: Any?) throws -> [PreTokenizer] {
        guard let type = typeName(v), let p = v as? [String: Any] else { return [] }
        switch type {
        case "Sequence":
            return try (p["pretokenizers"] as? [Any] ?? []).flatMap { try preTokenizers($0) }
        case "Split":
            guard let pattern = (p["pattern"] as? [String: Any])?["Regex"] as? String, let known = SplitPattern.known[pattern] else {
                throw Failure(reason: "pre_tokenizer Split with pattern \(String(describing: p["pattern"] ?? "nil")) is not supported (Emerald knows Llama 3's and Qwen2's)")
            }
            guard (p["behavior"] as? String ?? "Isolated") == "Isolated", p["invert"] as? Bool != true else {
                throw Failure(reason: "pre_tokenizer Split with behavior \(p["behavior"] ?? "nil") or invert is not supported (only Isolated)")
            }
            return [.split(known)]
        case "Digits": return [.digits(individual: p["individual_digits"] as? Bool ?? false)]
        case "ByteLevel":
            return [.byteLevel(addPrefixSpace: p["add_prefix_space"] as? Bool ?? true, useRegex: p["use_regex"] as? Bool ?? true)]
        case "Metaspace":
            let r = p["replacement"] as? String ?? "▁"
            guard r.count == 1 else { throw Failure(reason: "pre_tokenizer Metaspace replacement \(r.debugDescription) is not one character") }
            return [.metaspace(replacement: r, prepend: prependScheme(p), split: p["split"] as? Bool ?? true)]
        default:
            throw Failure(reason: "pre_tokenizer \(type) is not supported (Emerald reads Split with Llama 3's or Qwen2's pattern, Digits, ByteLevel, Metaspace and Sequences of them)")
        }
    }

    static func decoders(_ v: Any?) throws -> [Decoder] {
        guard let type = typeName(v), let d = v as? [String: Any] else { return [] }
        switch type {
        case "Sequence": return try (d["decoders"] as? [Any] ?? []).flatMap { try decoders($0) }
        case "ByteLevel": return [.byteLevel]
        case "Replace": return [.replace(try stringPattern(d["pattern"], "decoder Replace"), d["content"] as? String ?? "")]
        case "ByteFallback": return [.byteFallback]
        case "Fuse": return [.fuse]
        case "Strip":
            guard let c = (d["content"] as? String).flatMap({ $0.unicodeScalars.count == 1 ? $0.unicodeScalars.first : nil }) else {
                throw Failure(reason: "decoder Strip content is not one character")
            }
            return [.strip(c, start: d["start"] as? Int ?? 0, stop: d["stop"] as? Int ?? 0)]
        case "Metaspace":
            guard let r = (d["replacement"] as? String ?? "▁").unicodeScalars.first else { throw Failure(reason: "decoder Metaspace has an empty replacement") }
            return [.metaspace(replacement: r, prepend: prependScheme(d))]
        default:
            throw Failure(reason: "decoder \(type) is not supported (Emerald reads ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace and Sequences of them)")
        }
    }

    /// Ids the post-processor puts before and after a single sequence.
    static func postProcessor(_ v: Any?) throws -> (prefix: [Int32], suffix: [Int32]) {
        guard let type = typeName(v), let p = v as? [String: Any] else { return ([], []) }
        switch type {
        case "ByteLevel": return ([], [])
        case "Sequence":
            var pre: [Int32] = [], suf: [Int32] = []
            for q in p["processors"] as? [Any] ?? [] {
                let (a, b) = try postProcessor(q)
                pre = pre + a; suf = suf + b
            }
            return (pre, suf)
        case "TemplateProcessing":
            let specials = p["special_tokens"] as? [String: Any] ?? [:]
            var pre: [Int32] = [], suf: [Int32] = [], seenA = false
            for item in p["single"] as? [[String: Any]] ?? [] {
                if let seq = item["Sequence"] as? [String: Any] {
                    guard seq["id"] as? String == "A", !seenA else { throw Failure(reason: "post_processor TemplateProcessing single template is not [… $A …]") }
                    seenA = true
                } else if let sp = item["SpecialToken"] as? [String: Any], let name = sp["id"] as? String {
                    guard let ids = (specials[name] as? [String: Any])?["ids"] as? [Int] else {
                        throw Failure(reason: "post_processor TemplateProcessing uses \(name.debugDescription), which its special_tokens do not define")
                    }
                    if seenA { suf += ids.map { Int32($0) } } else { pre += ids.map { Int32($0) } }
                } else {
                    throw Failure(reason: "post_processor TemplateProcessing has an item that is neither Sequence nor SpecialToken")
                }
            }
            guard seenA else { throw Failure(reason: "post_processor TemplateProcessing single template has no $A") }
            return (pre, suf)
        case "RobertaProcessing", "BertProcessing":
            func id(_ key: String) throws -> Int32 {
                guard let pair = p[key] as? [Any], pair.count == 2, let i = pair[1] as? Int else { throw Failure(reason: "post_processor \(type) has no \(key)") }
                return Int32(i)
            }
            return ([try id("cls")], [try id("sep")])
        default:
            throw Failure(reason: "post_processor \(type) is not supported (Emerald reads ByteLevel, TemplateProcessing, RobertaProcessing, BertProcessing and Sequences of them)")
        }
    }

    static func addedTokens(_ v: Any?) throws -> [AddedToken] {
        guard let list = v as? [Any] else { return [] }
        return try list.map { any in
            guard let t = any as? [String: Any], let content = t["content"] as? String, !content.isEmpty, let id = t["id"] as? Int,
                  id >= 0, id < 10_000_000 else {
                throw Failure(reason: "added_tokens has an entry without a non-empty content and an id in 0..<10000000")
            }
            let special = t["special"] as? Bool ?? false
            return AddedToken(content: content, id: Int32(id), special: special, singleWord: t["single_word"] as? Bool ?? false,
                              lstrip: t["lstrip"] as? Bool ?? false, rstrip: t["rstrip"] as? Bool ?? false,
                              normalized: t["normalized"] as? Bool ?? !special)
        }
    }

    // MARK: - Normalizing

    static func normalize(_ s: String, _ steps: [Normalizer]) -> String {
        var s = s
        for step in steps {
            switch step {
            case .nfc:
                // Text without a scalar ≥ U+0300 (no byte ≥ 0xCC) is already NFC.
                if s.utf8.contains(where: { $0 >= 0xCC }) { s = s.precomposedStringWithCanonicalMapping }
            case .prepend(let p): if !s.isEmpty { s = p + s }
            case .replace(let a, let b): s = replacing(s, a, b)
            }
        }
        return s
    }

    /// `s` with every (non-overlapping, left to right) occurrence of `a` replaced by `b`, bytewise.
    static func replacing(_ s: String, _ a: String, _ b: String) -> String {
        let src = Array(s.utf8), pat = Array(a.utf8), rep = Array(b.utf8)
        guard !pat.isEmpty, src.count >= pat.count else { return s }
        var out: [UInt8] = []
        out.reserveCapacity(src.count + src.count / 4)
        var i = 0
        let first = pat[0]
        while i < src.count {
            if src[i] == first, i + pat.count <= src.count, src[i..<(i + pat.count)].elementsEqual(pat) {
                out += rep; i += pat.count
            } else {
                out.append(src[i]); i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: - Decoding

    /// The byte value of a `<0xNN>` token.
    static func fallbackByte(_ t: String) -> UInt8? {
        let u = Array(t.utf8)
        guard u.count == 6, u[0] == 0x3C, u[1] == 0x30, u[2] == 0x78, u[5] == 0x3E else { return nil }
        return UInt8(String(decoding: u[3..<5], as: UTF8.self), radix: 16)
    }

    /// `tokenizers`' decoder chain over token strings.
    static func decode(_ tokens: [String], _ steps: [Decoder]) -> [String] {
        var tokens = tokens
        for step in steps {
            switch step {
            case .byteLevel:
                var bytes: [UInt8] = []
                for t in tokens { bytes += ByteLevel.decode(t) ?? Array(t.utf8) }
                tokens = [String(decoding: bytes, as: UTF8.self)]
            case .replace(let a, let b): tokens = tokens.map { replacing($0, a, b) }
            case .fuse: tokens = [tokens.joined()]
            case .byteFallback:
                var out: [String] = [], pending: [UInt8] = []
                func flush() {
                    guard !pending.isEmpty else { return }
                    if let s = String(validating: pending, as: UTF8.self) { out.append(s) } else {
                        out += [String](repeating: "\u{FFFD}", count: pending.count)
                    }
                    pending.removeAll()
                }
                for t in tokens {
                    if let b = fallbackByte(t) { pending.append(b) } else { flush(); out.append(t) }
                }
                flush()
                tokens = out
            case .strip(let c, let start, let stop):
                tokens = tokens.map { t in
                    var chars = Array(t.unicodeScalars)
                    var a = 0
                    while a < start && a < chars.count && chars[a] == c { a += 1 }
                    chars.removeFirst(a)
                    var z = 0
                    while z < stop && z < chars.count && chars[chars.count - 1 - z] == c { z += 1 }
                    chars.removeLast(z)
                    var s = String.UnicodeScalarView()
                    s.append(contentsOf: chars)
                    return String(s)
                }
            case .metaspace(let r, let prepend):
                tokens = tokens.enumerated().map { i, t in
                    var s = String.UnicodeScalarView()
                    for ch in t.unicodeScalars {
                        if ch == r { if !(i == 0 && prepend != .never) { s.append(" ") } } else { s.append(ch) }
                    }
                    return String(s)
                }
            }
        }
        return tokens
    }
}
