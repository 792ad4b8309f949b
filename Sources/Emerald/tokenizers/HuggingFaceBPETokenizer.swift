import Foundation

/// A Hugging Face tokenizer.json with a BPE model, as Llama-style models ship it, encoding to the
/// ids `tokenizers` gives:
/// - **byte-level** (Llama 3, Qwen2, SmolLM2): a `Split` (Llama 3's / Qwen2's pattern, `SplitPattern`)
///   and/or `Digits` pre-tokenizer before `ByteLevel`, an optional NFC normalizer;
/// - **SentencePiece-style** (Llama 2, TinyLlama): vocabulary of `▁`-words, `Prepend("▁")` +
///   `Replace(" ", "▁")` normalizer or a `Metaspace` pre-tokenizer, `<0xNN>` byte-fallback tokens
///   for characters outside the vocabulary, `<unk>` (fused) when there is no fallback.
///
/// As in `tokenizers`, added tokens (special or not) are found in the text before anything else —
/// those with `normalized: false` in the raw text, the others after normalization — honouring
/// `single_word`, `lstrip` and `rstrip`; each piece then goes through the pre-tokenizer and the
/// BPE (lowest merge rank first; `ignore_merges` takes a piece that is itself in the vocabulary).
/// `encode(_:)` adds no template tokens; `encode(_:addSpecialTokens: true)` adds the
/// post-processor's (Llama's BOS). Decoding runs the file's decoder chain; `serialized()` returns
/// the tokenizer.json as read, so checkpoints keep it.
public struct HuggingFaceBPETokenizer: Tokenizer, ByteStreamingTokenizer, @unchecked Sendable {
    public enum Kind: Sendable { case byteLevel, sentencePiece }

    public let kind: Kind
    public let vocabularySize: Int
    /// Ids the post-processor adds before / after a text (`encode(_:addSpecialTokens: true)`).
    public let prefixIds: [Int32], suffixIds: [Int32]
    /// Added tokens: content → id.
    public let addedTokens: [String: Int32]
    /// Ids of the added tokens marked special.
    public let specialIds: Set<Int32>

    private let json: [String: Any]
    private let normalizers: [TokenizerPipeline.Normalizer]
    private let preTokenizers: [TokenizerPipeline.PreTokenizer]
    private let decoders: [TokenizerPipeline.Decoder]
    private let rawAdded: AddedTokenMatcher, normalizedAdded: AddedTokenMatcher
    private let tokens: [String?]            // id → vocabulary key or added content
    private let tokenBytes: [[UInt8]]        // id → bytes (byte-level: through the alphabet; else UTF-8 of the key)
    private let pairs: PairTable
    private let vocab: [String: Int32]
    private let byteIds: [Int32]             // byte-level: byte → id of its token; -1 when none
    private let fallbackIds: [Int32]         // sentencepiece: byte → id of <0xNN>; -1 when none
    private let unkId: Int32?
    private let fuseUnk: Bool, byteFallback: Bool, ignoreMerges: Bool

    /// Whether `json` is the SentencePiece-style kind (byte fallback, ▁ normalizer, Metaspace).
    static func isSentencePiece(_ json: [String: Any]) -> Bool {
        let model = json["model"] as? [String: Any] ?? [:]
        let text = [json["normalizer"], json["pre_tokenizer"], json["decoder"]].map { "\($0 ?? "")" }.joined()
        return model["byte_fallback"] as? Bool == true || text.contains("Metaspace") || text.contains("Prepend")
            || text.contains("ByteFallback")
    }

    /// Reads tokenizer.json content; errors name the unsupported section and type.
    public init(tokenizerJSON json: [String: Any], path: String) throws {
        func fail(_ r: String) -> EmeraldError { .invalidTokenizer(path: path, reason: r) }
        guard let model = json["model"] as? [String: Any] else { throw fail("it has no \"model\" section") }
        let type = model["type"] as? String ?? (model["merges"] != nil ? "BPE" : "of no known type")
        guard type == "BPE" else { throw fail("model \(type) is not supported (Emerald reads BPE tokenizer.json files)") }
        if let d = model["dropout"] as? Double, d > 0 { throw fail("model BPE dropout is not supported") }
        for k in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let s = model[k] as? String, !s.isEmpty { throw fail("model BPE \(k) \(s.debugDescription) is not supported") }
        }
        do {
            normalizers = try TokenizerPipeline.normalizers(json["normalizer"])
            preTokenizers = try TokenizerPipeline.preTokenizers(json["pre_tokenizer"])
            decoders = try TokenizerPipeline.decoders(json["decoder"])
        } catch let e as TokenizerPipeline.Failure { throw fail(e.reason) }
        let sentencePiece = Self.isSentencePiece(json)
        kind = sentencePiece ? .sentencePiece : .byteLevel
        if sentencePiece {
            if let p = preTokenizers.first(where: { if case .metaspace = $0 { return false } else { return true } }) {
                throw fail("pre_tokenizer \(p) is not supported with a SentencePiece-style (byte fallback / ▁) vocabulary")
            }
        } else if !preTokenizers.contains(where: { if case .byteLevel = $0 { return true } else { return false } }) {
            throw fail("pre_tokenizer \(TokenizerPipeline.typeName(json["pre_tokenizer"]) ?? "null") has no ByteLevel step; Emerald reads byte-level or SentencePiece-style (byte_fallback) BPE")
        }

        guard let rawVocab = model["vocab"] as? [String: Any] else { throw fail("model.vocab is missing or not an object") }
        var vocab: [String: Int32] = [:]
        vocab.reserveCapacity(rawVocab.count)
        var maxId = -1
        for (k, v) in rawVocab {
            guard let id = v as? Int, id >= 0, id < 10_000_000 else { throw fail("model.vocab[\(k.debugDescription)] is not an id in 0..<10000000") }
            vocab[k] = Int32(id)
            maxId = max(maxId, id)
        }
        var added: [TokenizerPipeline.AddedToken]
        do { added = try TokenizerPipeline.addedTokens(json["added_tokens"]) } catch let e as TokenizerPipeline.Failure { throw fail(e.reason) }
        // tokenizers gives an added token that is also in the model's vocabulary the model's id.
        for i in added.indices { if let id = vocab[added[i].content] { added[i].id = id } }
        for t in added { maxId = max(maxId, Int(t.id)) }
        guard maxId >= 0 else { throw fail("the vocabulary is empty") }
        var tokens = [String?](repeating: nil, count: maxId + 1)
        for (k, id) in vocab {
            if let other = tokens[Int(id)] { throw fail("id \(id) is given to both \(other.debugDescription) and \(k.debugDescription)") }
            tokens[Int(id)] = k
        }
        for t in added { tokens[Int(t.id)] = t.content }
        vocabularySize = maxId + 1
        self.tokens = tokens
        tokenBytes = tokens.map { t in
            guard let t else { return [] }
            return sentencePiece ? Array(t.utf8) : (ByteLevel.decode(t) ?? Array(t.utf8))
        }
        addedTokens = Dictionary(added.map { ($0.content, $0.id) }, uniquingKeysWith: { _, b in b })
        specialIds = Set(added.filter(\.special).map(\.id))
        let norms = normalizers
        rawAdded = AddedTokenMatcher(added.filter { !$0.normalized })
        normalizedAdded = AddedTokenMatcher(added.filter(\.normalized).map {
            var t = $0
            t.content = TokenizerPipeline.normalize(t.content, norms)
            return t
        })

        guard let rawMerges = model["merges"] as? [Any] else { throw fail("model.merges is missing or not a list") }
        var table = PairTable(capacityFor: rawMerges.count)
        for (rank, m) in rawMerges.enumerated() {
            let a: String, b: String
            if let s = m as? String {
                let parts = s.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw fail("merge rule \(rank + 1) \(s.debugDescription) is not two tokens separated by a space") }
                (a, b) = (String(parts[0]), String(parts[1]))
            } else if let pair = m as? [String], pair.count == 2 {
                (a, b) = (pair[0], pair[1])
            } else {
                throw fail("merge rule \(rank + 1) is neither \"a b\" nor [\"a\", \"b\"]")
            }
            guard let ia = vocab[a], let ib = vocab[b] else { throw fail("merge rule \(rank + 1) (\(a) \(b)) names a token that is not in the vocabulary") }
            guard let merged = vocab[a + b] else { throw fail("merge rule \(rank + 1) (\(a) \(b)) makes \((a + b).debugDescription), which is not in the vocabulary") }
            _ = table.insert(ia, ib, rank: UInt32(rank), merged: merged)
        }
        pairs = table
        self.vocab = vocab
        byteIds = (0..<256).map { vocab[ByteLevel.encode([UInt8($0)])] ?? -1 }
        fallbackIds = (0..<256).map { vocab[String(format: "<0x%02X>", $0)] ?? -1 }
        if let u = model["unk_token"] as? String {
            guard let id = vocab[u] else { throw fail("model.unk_token \(u.debugDescription) is not in the vocabulary") }
            unkId = id
        } else {
            unkId = nil
        }
        fuseUnk = model["fuse_unk"] as? Bool ?? false
        byteFallback = model["byte_fallback"] as? Bool ?? false
        ignoreMerges = model["ignore_merges"] as? Bool ?? false
        do {
            (prefixIds, suffixIds) = try TokenizerPipeline.postProcessor(json["post_processor"])
        } catch let e as TokenizerPipeline.Failure { throw fail(e.reason) }
        for id in prefixIds + suffixIds where id < 0 || Int(id) >= vocabularySize || tokens[Int(id)] == nil {
            throw fail("post_processor adds id \(id), which is not in the vocabulary")
        }
        self.json = json
    }

    // MARK: - Lookups

    /// The vocabulary key (or added token content) of `id`.
    public func tokenString(_ id: Int32) -> String? { id >= 0 && Int(id) < vocabularySize ? tokens[Int(id)] : nil }

    /// The id of a vocabulary key or added token.
    public func tokenId(_ s: String) -> Int32? { addedTokens[s] ?? vocab[s] }

    // MARK: - Encoding

    /// Ids for `text` without the post-processor's tokens (added tokens in the text are matched).
    public func encode(_ text: String) -> [Int32] { encode(text, addSpecialTokens: false) }

    /// Ids for `text`; with `addSpecialTokens`, the post-processor's tokens around them (Llama's BOS),
    /// like `tokenizers`' `encode(text, add_special_tokens=True)`.
    public func encode(_ text: String, addSpecialTokens: Bool) -> [Int32] {
        var out: [Int32] = addSpecialTokens ? prefixIds : []
        var cache = ByteStringTable(capacity: min(1 << 16, text.utf8.count / 4 + 64))
        var text = text
        text.withUTF8 { p in
            rawAdded.split(p, token: { out.append($0) }) { s, e in
                var piece = TokenizerPipeline.normalize(String(decoding: UnsafeBufferPointer(rebasing: p[s..<e]), as: UTF8.self), normalizers)
                piece.withUTF8 { q in
                    normalizedAdded.split(q, token: { out.append($0) }) { s2, e2 in
                        encodeSegment(UnsafeBufferPointer(rebasing: q[s2..<e2]), atStart: s == 0 && s2 == 0, into: &out, cache: &cache)
                    }
                }
            }
        }
        if addSpecialTokens { out += suffixIds }
        return out
    }

    /// Pre-tokenizes one normalized segment between added tokens, then BPE on each piece.
    private func encodeSegment(_ p: UnsafeBufferPointer<UInt8>, atStart: Bool, into out: inout [Int32], cache: inout ByteStringTable) {
        guard p.count > 0 else { return }
        if kind == .sentencePiece {
            guard case .metaspace(let r, let prepend, let split)? = preTokenizers.first else { return model(p, into: &out, cache: &cache) }
            var s = TokenizerPipeline.replacing(String(decoding: p, as: UTF8.self), " ", r)
            if (prepend == .always || (prepend == .first && atStart)) && !s.hasPrefix(r) { s = r + s }
            s.withUTF8 { q in
                guard split else { return model(q, into: &out, cache: &cache) }
                let rb = Array(r.utf8)
                var start = 0, i = 0
                while i < q.count {
                    if i > start && q[i] == rb[0] && i + rb.count <= q.count && q[i..<(i + rb.count)].elementsEqual(rb) {
                        model(UnsafeBufferPointer(rebasing: q[start..<i]), into: &out, cache: &cache)
                        start = i
                    }
                    i += 1
                }
                model(UnsafeBufferPointer(rebasing: q[start...]), into: &out, cache: &cache)
            }
            return
        }
        preTokenize(p, step: 0) { model($0, into: &out, cache: &cache) }
    }

    /// Applies the pre-tokenizers from `step` on, calling `body` with each final piece.
    private func preTokenize(_ p: UnsafeBufferPointer<UInt8>, step: Int, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        guard p.count > 0 else { return }
        guard step < preTokenizers.count else { return body(p) }
        switch preTokenizers[step] {
        case .split(let pattern):
            pattern.forEachPiece(p) { s, e in preTokenize(UnsafeBufferPointer(rebasing: p[s..<e]), step: step + 1, body) }
        case .digits(let individual):
            UTF8Classes.forEachDigitsPiece(p, individual: individual) { s, e in preTokenize(UnsafeBufferPointer(rebasing: p[s..<e]), step: step + 1, body) }
        case .byteLevel(let prefix, let useRegex):
            func run(_ q: UnsafeBufferPointer<UInt8>) {
                guard useRegex else { return preTokenize(q, step: step + 1, body) }
                GPT2PreTokenizer.forEachPiece(q) { s, e in preTokenize(UnsafeBufferPointer(rebasing: q[s..<e]), step: step + 1, body) }
            }
            if prefix && p[0] != 0x20 {
                let spaced = [0x20] + Array(p)
                spaced.withUnsafeBufferPointer { run($0) }
            } else {
                run(p)
            }
        case .metaspace:
            body(p)  // refused at load for byte-level vocabularies
        }
    }

    /// BPE on one pre-token (cached per call).
    private func model(_ p: UnsafeBufferPointer<UInt8>, into out: inout [Int32], cache: inout ByteStringTable) {
        guard let base = p.baseAddress, p.count > 0 else { return }
        let n = p.count
        let h = ByteStringTable.hash(base, n)
        if let index = cache.find(base, n, hash: h) {
            let e = cache.entries[index]
            out += cache.ids[e.value..<(e.value + Int(e.valueLength))]
            return
        }
        if cache.count >= 1 << 19 { cache = ByteStringTable(capacity: 1 << 16) }
        let ids = pieceIds(p)
        let start = cache.ids.count
        cache.ids += ids
        cache.insert(base, n, hash: h, value: start, valueLength: Int32(ids.count))
        out += ids
    }

    private func pieceIds(_ p: UnsafeBufferPointer<UInt8>) -> [Int32] {
        var ids: [Int32] = []
        ids.reserveCapacity(p.count)
        if kind == .byteLevel {
            if ignoreMerges, let id = vocab[ByteLevel.encode(p)] { return [id] }
            for b in p where byteIds[Int(b)] >= 0 { ids.append(byteIds[Int(b)]) }
        } else {
            let s = String(decoding: p, as: UTF8.self)
            if ignoreMerges, let id = vocab[s] { return [id] }
            var pendingUnk = false
            for u in s.unicodeScalars {
                if let id = vocab[String(u)] {
                    if pendingUnk, let unkId { ids.append(unkId) }
                    pendingUnk = false
                    ids.append(id)
                    continue
                }
                if byteFallback {
                    let bytes = Array(String(u).utf8)
                    if bytes.allSatisfy({ fallbackIds[Int($0)] >= 0 }) {
                        if pendingUnk, let unkId { ids.append(unkId) }
                        pendingUnk = false
                        ids += bytes.map { fallbackIds[Int($0)] }
                        continue
                    }
                }
                guard let unkId else { continue }
                if fuseUnk { pendingUnk = true } else { ids.append(unkId) }
            }
            if pendingUnk, let unkId { ids.append(unkId) }
        }
        BPEMerger.merge(&ids, pairs)
        return ids
    }

    // MARK: - Decoding

    /// Text for `ids` through the file's decoder (special tokens included).
    public func decode(_ ids: [Int32]) -> String { decode(ids, skipSpecialTokens: false) }

    /// Text for `ids`, as `tokenizers`' `decode(ids, skip_special_tokens=…)`; unknown ids are skipped.
    public func decode(_ ids: [Int32], skipSpecialTokens: Bool) -> String {
        let valid = ids.filter { $0 >= 0 && Int($0) < vocabularySize && tokens[Int($0)] != nil && !(skipSpecialTokens && specialIds.contains($0)) }
        if decoders == [.byteLevel] {
            var bytes: [UInt8] = []
            for id in valid { bytes += tokenBytes[Int(id)] }
            return String(decoding: bytes, as: UTF8.self)
        }
        return TokenizerPipeline.decode(valid.map { tokens[Int($0)]! }, decoders).joined()
    }

    /// The bytes id `id` adds to a stream of text (byte tokens alone, `▁` as a space).
    public func streamBytes(_ id: Int32) -> [UInt8] {
        guard id >= 0, Int(id) < vocabularySize, let t = tokens[Int(id)] else { return [] }
        if kind == .byteLevel { return tokenBytes[Int(id)] }
        if decoders.contains(.byteFallback), let b = TokenizerPipeline.fallbackByte(t) { return [b] }
        var s = t
        for d in decoders {
            if case .replace(let a, let b) = d { s = TokenizerPipeline.replacing(s, a, b) }
            if case .metaspace(let r, _) = d { s = TokenizerPipeline.replacing(s, String(r), " ") }
        }
        return Array(s.utf8)
    }

    /// The tokenizer.json as it was read.
    public func serialized() throws -> [String: Any] { json }

    /// The tokenizer.json as bytes (for checkpoints; keys unsorted, which is much faster on large vocabularies).
    public func tokenizerJSONData() throws -> Data { Self.escapingByteOrderMarks(try JSONSerialization.data(withJSONObject: json)) }

    /// JSON text with every raw U+FEFF (EF BB BF, only possible inside strings) written as `\ufeff`,
    /// and one at the very start dropped: Foundation's JSONSerialization on Linux drops a raw U+FEFF
    /// that starts a string (a token of the Oz-trained vocabularies, and of some real ones).
    public static func escapingByteOrderMarks(_ data: Data) -> Data {
        let b = [UInt8](data)
        guard b.count >= 3, (0..<(b.count - 2)).contains(where: { b[$0] == 0xEF && b[$0 + 1] == 0xBB && b[$0 + 2] == 0xBF }) else { return data }
        var out: [UInt8] = []
        out.reserveCapacity(b.count + 64)
        var i = 0
        while i < b.count {
            if i + 2 < b.count && b[i] == 0xEF && b[i + 1] == 0xBB && b[i + 2] == 0xBF {
                if i > 0 { out += Array("\\ufeff".utf8) }
                i += 3
            } else {
                out.append(b[i]); i += 1
            }
        }
        return Data(out)
    }
}

/// Tokenizers whose ids map to bytes, so that a stream of ids can be printed whole characters at a time.
public protocol ByteStreamingTokenizer: Tokenizer {
    /// The bytes `id` adds to the text.
    func streamBytes(_ id: Int32) -> [UInt8]
}

extension ByteLevelBPETokenizer: ByteStreamingTokenizer {
    public func streamBytes(_ id: Int32) -> [UInt8] { decodeBytes([id]) }
}

extension Tokenizer {
    /// Ids for `text`, with the post-processor's special tokens (a BOS) when `addSpecialTokens`
    /// and the tokenizer has any (`HuggingFaceBPETokenizer`); other tokenizers add none.
    public func encode(_ text: String, addSpecialTokens: Bool) throws -> [Int32] {
        if let hf = self as? HuggingFaceBPETokenizer { return hf.encode(text, addSpecialTokens: addSpecialTokens) }
        return try encode(text)
    }
}
