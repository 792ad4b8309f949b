import Foundation

/// A merge rule of a BPE vocabulary: the adjacent tokens `left`, `right` become one.
public struct BPEMerge: Sendable, Equatable {
    public var left: Int32
    public var right: Int32
    public init(_ left: Int32, _ right: Int32) { self.left = left; self.right = right }
}

/// GPT-2's byte-level BPE tokenizer (and any vocabulary of the same form, such
/// as one trained by `BPETrainer`).
///
/// Encoding is GPT-2's, byte for byte: the text is split by
/// `GPT2PreTokenizer`; each piece starts as one token per UTF-8 byte, and the
/// adjacent pair with the lowest merge rank is merged (the leftmost on a tie)
/// until no pair has a rule. Results are cached per piece for the duration of
/// one `encode` call, so common words cost one hash lookup.
///
/// Special tokens (`<|endoftext|>`) are ordinary text unless the caller allows
/// them, like tiktoken's `encode_ordinary` / `encode(allowed_special=…)`:
/// `encode(_:)` and `encodeOrdinary(_:)` never produce a special id;
/// `encode(_:allowedSpecial:)` turns the allowed ones into their ids.
///
/// Decoding concatenates the tokens' bytes. `decodeBytes(_:)` returns them
/// as they are; `decode(_:)` turns them into a `String`, replacing invalid
/// UTF-8 (a multi-byte character cut between ids) with U+FFFD, one per maximal
/// invalid subsequence — what Hugging Face's `ByteLevel` decoder and Python's
/// `bytes.decode("utf-8", errors="replace")` do.
public struct ByteLevelBPETokenizer: Tokenizer {
    /// Number of ids (the largest id + 1).
    public let vocabularySize: Int
    /// The merge rules in rank order (rank 0 first).
    public let merges: [BPEMerge]
    /// Special tokens: content → id.
    public let specialTokens: [String: Int32]

    private let tokenOffsets: [Int]   // id → start in tokenArena; vocabularySize + 1 entries
    private let tokenArena: [UInt8]
    private let defined: [Bool]
    private let pairs: PairTable
    private let byteIds: [Int32]      // byte → id of its single-byte token
    private let specialsLongestFirst: [(bytes: [UInt8], id: Int32, content: String)]

    // MARK: - Building

    /// Builds a tokenizer from id → bytes (`nil` for unused ids), merge rules by rank,
    /// and special tokens (content → id; their bytes are their UTF-8).
    ///
    /// Throws `EmeraldError.invalidTokenizer` when a byte has no single-byte token,
    /// a merge names an unknown id, or a merge makes a token that is not in the vocabulary.
    public init(tokens: [[UInt8]?], merges: [BPEMerge], specialTokens: [String: Int32] = [:], path: String = "tokenizer") throws {
        var tokens = tokens
        for (content, id) in specialTokens {
            guard id >= 0, id < 10_000_000 else {
                throw EmeraldError.invalidTokenizer(path: path, reason: "special token \(content.debugDescription) has invalid id \(id)")
            }
            if Int(id) >= tokens.count { tokens += [[UInt8]?](repeating: nil, count: Int(id) + 1 - tokens.count) }
            let bytes = Array(content.utf8)
            if let existing = tokens[Int(id)], existing != bytes {
                throw EmeraldError.invalidTokenizer(path: path, reason: "special token \(content.debugDescription) has id \(id), which the vocabulary gives to another token")
            }
            tokens[Int(id)] = bytes
        }
        var offsets = [Int](repeating: 0, count: tokens.count + 1)
        var arena: [UInt8] = []
        var defined = [Bool](repeating: false, count: tokens.count)
        var byBytes: [[UInt8]: Int32] = [:]
        byBytes.reserveCapacity(tokens.count)
        for (id, t) in tokens.enumerated() {
            if let t {
                arena.append(contentsOf: t)
                defined[id] = true
                if byBytes[t] == nil { byBytes[t] = Int32(id) }
            }
            offsets[id + 1] = arena.count
        }
        var byteIds = [Int32](repeating: -1, count: 256)
        for b in 0..<256 {
            guard let id = byBytes[[UInt8(b)]] else {
                let hex = String(b, radix: 16, uppercase: true)
                throw EmeraldError.invalidTokenizer(path: path, reason: "the vocabulary has no token for byte 0x\(b < 16 ? "0" : "")\(hex) (\(ByteLevel.encode([UInt8(b)]))), so some text could not be encoded")
            }
            byteIds[b] = id
        }
        var table = PairTable(capacityFor: merges.count)
        for (rank, m) in merges.enumerated() {
            for side in [m.left, m.right] where side < 0 || Int(side) >= tokens.count || !defined[Int(side)] {
                throw EmeraldError.invalidTokenizer(path: path, reason: "merge rule \(rank + 1) uses id \(side), which is not in the vocabulary")
            }
            let joined = tokens[Int(m.left)]! + tokens[Int(m.right)]!
            guard let merged = byBytes[joined] else {
                throw EmeraldError.invalidTokenizer(path: path, reason: "merge rule \(rank + 1) (\(ByteLevel.encode(tokens[Int(m.left)]!)) \(ByteLevel.encode(tokens[Int(m.right)]!))) makes \(ByteLevel.encode(joined).debugDescription), which is not in the vocabulary")
            }
            _ = table.insert(m.left, m.right, rank: UInt32(rank), merged: merged)
        }
        self.vocabularySize = tokens.count
        self.merges = merges
        self.specialTokens = specialTokens
        self.tokenOffsets = offsets
        self.tokenArena = arena
        self.defined = defined
        self.pairs = table
        self.byteIds = byteIds
        self.specialsLongestFirst = specialTokens.map { (bytes: Array($0.key.utf8), id: $0.value, content: $0.key) }
            .filter { !$0.bytes.isEmpty }
            .sorted { $0.bytes.count != $1.bytes.count ? $0.bytes.count > $1.bytes.count : $0.bytes.lexicographicallyPrecedes($1.bytes) }
    }

    /// Builds a tokenizer from a vocabulary in byte-level strings (`encoder.json`,
    /// `vocab.json`, a tokenizer.json's `model.vocab`), merge rules as pairs of such
    /// strings in rank order, and special tokens (content → id).
    ///
    /// `mergeLineOffset` is added to a rule's 1-based index to name its line in errors.
    public init(vocabulary: [String: Int], merges: [(String, String)], specialTokens: [String: Int] = [:],
                path: String = "tokenizer", mergeLineOffset: Int = 0) throws {
        guard !vocabulary.isEmpty else { throw EmeraldError.invalidTokenizer(path: path, reason: "the vocabulary is empty") }
        let maxId = vocabulary.values.max()!
        guard vocabulary.values.min()! >= 0, maxId < 10_000_000 else {
            throw EmeraldError.invalidTokenizer(path: path, reason: "token ids must be in 0..<10000000")
        }
        var tokens = [[UInt8]?](repeating: nil, count: maxId + 1)
        var keys = [String?](repeating: nil, count: maxId + 1)
        for (key, id) in vocabulary {
            if let other = keys[id] {
                throw EmeraldError.invalidTokenizer(path: path, reason: "id \(id) is given to both \(other.debugDescription) and \(key.debugDescription)")
            }
            keys[id] = key
            if let bytes = ByteLevel.decode(key) {
                tokens[id] = bytes
            } else if specialTokens[key] == id {
                tokens[id] = Array(key.utf8)
            } else {
                throw EmeraldError.invalidTokenizer(path: path, reason: "token \(key.debugDescription) (id \(id)) has characters outside GPT-2's byte-level alphabet; only byte-level BPE vocabularies are supported")
            }
        }
        var rules: [BPEMerge] = []
        rules.reserveCapacity(merges.count)
        for (i, (a, b)) in merges.enumerated() {
            for t in [a, b] where vocabulary[t] == nil {
                let at = mergeLineOffset > 0 ? "line \(i + 1 + mergeLineOffset)" : "merge rule \(i + 1)"
                throw EmeraldError.invalidTokenizer(path: path, reason: "\(at) (\(a) \(b)) references unknown token \(t.debugDescription)")
            }
            rules.append(BPEMerge(Int32(vocabulary[a]!), Int32(vocabulary[b]!)))
        }
        var specials: [String: Int32] = [:]
        for (content, id) in specialTokens {
            guard id >= 0 && id < 10_000_000 else {
                throw EmeraldError.invalidTokenizer(path: path, reason: "special token \(content.debugDescription) has id \(id), outside 0..<10000000")
            }
            specials[content] = Int32(id)
        }
        try self.init(tokens: tokens, merges: rules, specialTokens: specials, path: path)
    }

    // MARK: - Lookups

    /// The bytes of token `id`, or nil for an id outside the vocabulary.
    public func tokenBytes(_ id: Int32) -> [UInt8]? {
        guard id >= 0, Int(id) < vocabularySize, defined[Int(id)] else { return nil }
        return Array(tokenArena[tokenOffsets[Int(id)]..<tokenOffsets[Int(id) + 1]])
    }

    /// The vocabulary-file spelling of token `id`: its bytes in GPT-2's byte-level
    /// alphabet, or a special token's content.
    public func tokenString(_ id: Int32) -> String? {
        guard let bytes = tokenBytes(id) else { return nil }
        if let s = specialContent[id] { return s }
        return ByteLevel.encode(bytes)
    }

    /// id → content of the special tokens.
    var specialContent: [Int32: String] {
        var d: [Int32: String] = [:]
        for (k, v) in specialTokens { d[v] = k }
        return d
    }

    /// All special token contents (pass as `allowedSpecial` to recognise all of them).
    public var allSpecialTokens: Set<String> { Set(specialTokens.keys) }

    // MARK: - Encoding

    /// Ids for `text`; special tokens are encoded as ordinary text.
    public func encode(_ text: String) -> [Int32] { encodeOrdinary(text) }

    /// Ids for `text`, treating special-token text like any other text (tiktoken's `encode_ordinary`).
    public func encodeOrdinary(_ text: String) -> [Int32] {
        var text = text
        return text.withUTF8 { encodeValid($0, allowed: []) }
    }

    /// Ids for `text`, where occurrences of the special tokens in `allowedSpecial`
    /// become their ids (tiktoken's `encode(text, allowed_special=…)`); other special
    /// tokens stay ordinary text. Names that are not special tokens are ignored.
    public func encode(_ text: String, allowedSpecial: Set<String>) -> [Int32] {
        var text = text
        let allowed = specialsLongestFirst.filter { allowedSpecial.contains($0.content) }
        return text.withUTF8 { encodeValid($0, allowed: allowed) }
    }

    /// Ids for UTF-8 `bytes`, which are checked first: invalid UTF-8 throws
    /// `EmeraldError.invalidUTF8` naming the first bad byte.
    public func encode(utf8 bytes: [UInt8], allowedSpecial: Set<String> = [], source: String = "text to encode") throws -> [Int32] {
        try bytes.withUnsafeBufferPointer { (p) throws -> [Int32] in
            if let bad = UTF8Check.firstInvalid(p) { throw EmeraldError.invalidUTF8(path: source, byteOffset: bad) }
            return encodeValid(p, allowed: specialsLongestFirst.filter { allowedSpecial.contains($0.content) })
        }
    }

    private func encodeValid(_ p: UnsafeBufferPointer<UInt8>, allowed: [(bytes: [UInt8], id: Int32, content: String)]) -> [Int32] {
        var out: [Int32] = []
        guard p.count > 0 else { return out }
        out.reserveCapacity(p.count / 3 + 8)
        var cache = ByteStringTable(capacity: min(1 << 16, p.count / 4 + 64))
        if allowed.isEmpty {
            encodeSegment(p, into: &out, cache: &cache)
            return out
        }
        var firstBytes = [Bool](repeating: false, count: 256)
        for s in allowed { firstBytes[Int(s.bytes[0])] = true }
        var segment = 0, i = 0
        let n = p.count
        while i < n {
            if firstBytes[Int(p[i])] {
                var matched: (Int, Int32)?
                for s in allowed where s.bytes.count <= n - i {
                    var k = 0
                    while k < s.bytes.count && p[i + k] == s.bytes[k] { k += 1 }
                    if k == s.bytes.count { matched = (k, s.id); break }
                }
                if let match = matched {
                    let (len, id) = match
                    encodeSegment(UnsafeBufferPointer(rebasing: p[segment..<i]), into: &out, cache: &cache)
                    out.append(id)
                    i += len
                    segment = i
                    continue
                }
            }
            i += 1
        }
        encodeSegment(UnsafeBufferPointer(rebasing: p[segment..<n]), into: &out, cache: &cache)
        return out
    }

    /// Encodes text without special tokens: pre-tokenize, then BPE each piece (cached).
    private func encodeSegment(_ p: UnsafeBufferPointer<UInt8>, into out: inout [Int32], cache: inout ByteStringTable) {
        guard let base = p.baseAddress, p.count > 0 else { return }
        byteIds.withUnsafeBufferPointer { byteIds in
            GPT2PreTokenizer.forEachPiece(p) { s, e in
                let n = e - s
                let ptr = base + s
                if n == 1 { out.append(byteIds[Int(ptr[0])]); return }
                let h = ByteStringTable.hash(ptr, n)
                if let index = cache.find(ptr, n, hash: h) {
                    let entry = cache.entries[index]
                    cache.ids.withUnsafeBufferPointer { ids in
                        out.append(contentsOf: UnsafeBufferPointer(rebasing: ids[entry.value..<(entry.value + Int(entry.valueLength))]))
                    }
                    return
                }
                if cache.count >= 1 << 19 { cache = ByteStringTable(capacity: 1 << 16) }
                let start = cache.ids.count
                mergePiece(ptr, n, byteIds: byteIds, into: &cache.ids)
                cache.insert(ptr, n, hash: h, value: start, valueLength: Int32(cache.ids.count - start))
                cache.ids.withUnsafeBufferPointer { ids in
                    out.append(contentsOf: UnsafeBufferPointer(rebasing: ids[start...]))
                }
            }
        }
    }

    /// BPE on one piece: start from byte tokens, merge the lowest-ranked adjacent pair
    /// (leftmost on a tie) until none merges; appends the ids to `out`.
    private func mergePiece(_ p: UnsafePointer<UInt8>, _ n: Int, byteIds: UnsafeBufferPointer<Int32>, into out: inout [Int32]) {
        if n > 64 { return mergeLongPiece(p, n, byteIds: byteIds, into: &out) }
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: n) { ids in
            withUnsafeTemporaryAllocation(of: UInt64.self, capacity: n) { ranks in
                var m = n
                for k in 0..<n { ids[k] = byteIds[Int(p[k])] }
                for k in 0..<(m - 1) { ranks[k] = pairs.lookup(ids[k], ids[k + 1]) }
                while m > 1 {
                    var best = UInt64.max, at = -1
                    for k in 0..<(m - 1) where ranks[k] < best { best = ranks[k]; at = k }
                    if at < 0 { break }
                    ids[at] = Int32(truncatingIfNeeded: best & 0xFFFF_FFFF)
                    var k = at + 1
                    while k < m - 1 { ids[k] = ids[k + 1]; k += 1 }
                    k = at + 1
                    while k < m - 2 { ranks[k] = ranks[k + 1]; k += 1 }
                    m -= 1
                    if at > 0 { ranks[at - 1] = pairs.lookup(ids[at - 1], ids[at]) }
                    if at < m - 1 { ranks[at] = pairs.lookup(ids[at], ids[at + 1]) }
                }
                out.append(contentsOf: UnsafeBufferPointer(start: ids.baseAddress, count: m))
            }
        }
    }

    /// The same merges in O(n log n) for long pieces (runs of spaces, symbols, digits…):
    /// `BPEMerger`'s linked list and min-heap of (rank, position) with lazy deletion.
    private func mergeLongPiece(_ p: UnsafePointer<UInt8>, _ n: Int, byteIds: UnsafeBufferPointer<Int32>, into out: inout [Int32]) {
        var ids = (0..<n).map { byteIds[Int(p[$0])] }
        BPEMerger.merge(&ids, pairs)
        out.append(contentsOf: ids)
    }

    // MARK: - Decoding

    /// The bytes of `ids`, concatenated (ids outside the vocabulary are skipped).
    public func decodeBytes(_ ids: [Int32]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(ids.count * 4)
        tokenArena.withUnsafeBufferPointer { arena in
            for id in ids where id >= 0 && Int(id) < vocabularySize {
                let s = tokenOffsets[Int(id)], e = tokenOffsets[Int(id) + 1]
                if e > s { out.append(contentsOf: UnsafeBufferPointer(rebasing: arena[s..<e])) }
            }
        }
        return out
    }

    /// Text for `ids`: their bytes as UTF-8, invalid sequences replaced by U+FFFD.
    public func decode(_ ids: [Int32]) -> String {
        String(decoding: decodeBytes(ids), as: UTF8.self)
    }

    /// The tokenizer in Hugging Face's tokenizer.json form (saved in checkpoints).
    public func serialized() throws -> [String: Any] { tokenizerJSON() }
}
