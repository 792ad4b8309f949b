import Foundation

/// Trains a byte-level BPE vocabulary, GPT-2 style.
///
/// 1. The corpus is split into pre-tokens by `GPT2PreTokenizer` and each distinct
///    pre-token is counted (the text is cut into one part per thread at line starts
///    where the split is provably unchanged, and the parts are counted in parallel).
/// 2. Every pre-token starts as its bytes; ids 0…255 are the bytes in GPT-2's order
///    (so single-byte ids equal GPT-2's).
/// 3. Repeatedly, the most frequent adjacent pair (summed over pre-tokens × counts)
///    becomes a new token, until the vocabulary is full or the best pair occurs fewer
///    than `minFrequency` times. Ties go to the smaller (left id, right id), so a
///    corpus always gives the same vocabulary. Pair counts are updated incrementally:
///    only the pre-tokens that contain the merged pair are rewritten.
/// 4. Special tokens take the last ids.
///
/// The result encodes with the same algorithm as GPT-2's files, and its
/// `tokenizerJSON()` loads in Hugging Face `tokenizers` with identical ids.
public struct BPETrainer {
    /// Total number of ids wanted, special tokens included.
    public var vocabularySize: Int
    /// Stop when the best pair occurs fewer times than this.
    public var minFrequency: Int
    /// Special tokens, given the last ids in this order.
    public var specialTokens: [String]
    /// Threads for counting pre-tokens.
    public var threads: Int

    public init(vocabularySize: Int, minFrequency: Int = 2, specialTokens: [String] = ["<|endoftext|>"], threads: Int = 2) {
        self.vocabularySize = vocabularySize
        self.minFrequency = minFrequency
        self.specialTokens = specialTokens
        self.threads = threads
    }

    /// Checks the settings.
    public func validate() throws {
        let least = 256 + specialTokens.count
        try require(vocabularySize >= least && vocabularySize <= 1_000_000, field: "vocab_size",
                    "must be in \(least)...1000000 (256 byte tokens + \(specialTokens.count) special), got \(vocabularySize)")
        try require(minFrequency >= 1, field: "min_frequency", "must be at least 1, got \(minFrequency)")
        try require(threads >= 1 && threads <= 256, field: "threads", "must be in 1...256, got \(threads)")
        try require(Set(specialTokens).count == specialTokens.count && !specialTokens.contains(""), "special tokens must be distinct and non-empty")
    }

    /// Trains on `texts` (each one a separate document: no pre-token spans two).
    public func train(texts: [String]) throws -> ByteLevelBPETokenizer {
        try validate()
        let counted = BPETrainer.countPreTokens(texts, threads: threads)
        return try train(preTokens: counted)
    }

    /// Trains on pre-token counts.
    public func train(preTokens counted: [(bytes: [UInt8], count: Int)]) throws -> ByteLevelBPETokenizer {
        try validate()
        let target = vocabularySize - specialTokens.count
        var tokens: [[UInt8]] = ByteLevel.bytesInIdOrder.map { [$0] }
        var byteToId = [Int32](repeating: 0, count: 256)
        for (i, b) in ByteLevel.bytesInIdOrder.enumerated() { byteToId[Int(b)] = Int32(i) }
        var known: [[UInt8]: Int32] = [:]
        for (i, t) in tokens.enumerated() { known[t] = Int32(i) }

        var words: [[Int32]] = counted.map { $0.bytes.map { byteToId[Int($0)] } }
        let freqs = counted.map(\.count)
        var pairCounts: [UInt64: Int] = [:]
        var holders: [UInt64: [Int32]] = [:]   // pair → pre-tokens that (may) contain it
        for (w, word) in words.enumerated() where word.count > 1 {
            for k in 0..<(word.count - 1) {
                let key = PairTable.key(word[k], word[k + 1])
                pairCounts[key, default: 0] += freqs[w]
                holders[key, default: []].append(Int32(w))
            }
        }
        var heap = PairHeap()
        for (key, c) in pairCounts { heap.push(c, key) }

        var merges: [BPEMerge] = []
        var seen = [Int](repeating: -1, count: words.count)
        while tokens.count < target, let top = heap.pop() {
            let current = pairCounts[top.key] ?? 0
            if current != top.count {
                if current > 0 { heap.push(current, top.key) }
                continue
            }
            if current < minFrequency { break }
            let a = Int32(truncatingIfNeeded: top.key >> 32), b = Int32(truncatingIfNeeded: top.key & 0xFFFF_FFFF)
            let joined = tokens[Int(a)] + tokens[Int(b)]
            let newId: Int32
            if let existing = known[joined] {
                newId = existing   // another pair already made these bytes: reuse the id (as Hugging Face does)
            } else {
                newId = Int32(tokens.count)
                tokens.append(joined)
                known[joined] = newId
            }
            merges.append(BPEMerge(a, b))
            let stamp = merges.count
            var delta: [UInt64: Int] = [:]
            for w32 in holders.removeValue(forKey: top.key) ?? [] {
                let w = Int(w32)
                if seen[w] == stamp { continue }
                seen[w] = stamp
                let word = words[w]
                var merged: [Int32] = []
                merged.reserveCapacity(word.count)
                var k = 0
                while k < word.count {
                    if k + 1 < word.count && word[k] == a && word[k + 1] == b {
                        merged.append(newId); k += 2
                    } else {
                        merged.append(word[k]); k += 1
                    }
                }
                if merged.count == word.count { continue }
                let f = freqs[w]
                for k in 0..<(word.count - 1) { delta[PairTable.key(word[k], word[k + 1]), default: 0] -= f }
                if merged.count > 1 {
                    for k in 0..<(merged.count - 1) {
                        let key = PairTable.key(merged[k], merged[k + 1])
                        delta[key, default: 0] += f
                        if merged[k] == newId || merged[k + 1] == newId { holders[key, default: []].append(w32) }
                    }
                }
                words[w] = merged
            }
            for (key, d) in delta where d != 0 {
                let c = (pairCounts[key] ?? 0) + d
                if c > 0 { pairCounts[key] = c } else { pairCounts.removeValue(forKey: key) }
                if d > 0 { heap.push(c, key) }
            }
        }
        var specials: [String: Int32] = [:]
        for (i, s) in specialTokens.enumerated() { specials[s] = Int32(tokens.count + i) }
        return try ByteLevelBPETokenizer(tokens: tokens.map { Optional($0) }, merges: merges, specialTokens: specials, path: "trained tokenizer")
    }

    // MARK: - Corpus

    /// The texts of a corpus: one UTF-8 file, or every non-hidden regular file under a
    /// folder (recursively, in path order; empty files skipped). Files are read like
    /// `TextCorpus.load` (strict UTF-8, BOM dropped, CRLF → LF).
    public static func readCorpus(path: String) throws -> [String] {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDir) else { throw EmeraldError.fileNotFound(path) }
        guard isDir.boolValue else { return [try TextCorpus.load(path: path)] }
        guard let e = fm.enumerator(atPath: path) else { throw EmeraldError.io("cannot list \(path)") }
        var files: [String] = []
        while let rel = e.nextObject() as? String {
            if rel.split(separator: "/").contains(where: { $0.hasPrefix(".") }) { continue }
            var d: ObjCBool = false
            let full = path + "/" + rel
            if fm.fileExists(atPath: full, isDirectory: &d), !d.boolValue { files.append(full) }
        }
        var texts: [String] = []
        for f in files.sorted() {
            guard let data = fm.contents(atPath: f) else { throw EmeraldError.io("cannot read \(f)") }
            if data.isEmpty { continue }
            texts.append(try TextCorpus.decode(data, path: f))
        }
        guard !texts.isEmpty else { throw EmeraldError.emptyInput(path) }
        return texts
    }

    // MARK: - Counting

    /// Distinct pre-tokens of `texts` with their counts, sorted by bytes.
    public static func countPreTokens(_ texts: [String], threads: Int = 2) -> [(bytes: [UInt8], count: Int)] {
        let utf8s = texts.map { Array($0.utf8) }
        let workers = max(1, threads)
        var chunks: [(text: Int, range: Range<Int>)] = []
        for (t, bytes) in utf8s.enumerated() {
            let parts = bytes.count >= 1 << 16 ? workers : 1
            var start = 0
            for k in 1..<max(parts, 2) where k < parts {
                if let c = safeCut(bytes, from: max(start + 1, bytes.count * k / parts)) {
                    chunks.append((t, start..<c))
                    start = c
                }
            }
            chunks.append((t, start..<bytes.count))
        }
        let used = min(workers, chunks.count)
        var tables = [ByteStringTable?](repeating: nil, count: used)
        tables.withUnsafeMutableBufferPointer { out in
            DispatchQueue.concurrentPerform(iterations: used) { w in
                var table = ByteStringTable(capacity: 1 << 14)
                for (i, c) in chunks.enumerated() where i % used == w {
                    utf8s[c.text].withUnsafeBufferPointer { all in
                        let p = UnsafeBufferPointer(rebasing: all[c.range])
                        guard let base = p.baseAddress else { return }
                        GPT2PreTokenizer.forEachPiece(p) { s, e in
                            let h = ByteStringTable.hash(base + s, e - s)
                            if let index = table.find(base + s, e - s, hash: h) {
                                table.addValue(at: index, 1)
                            } else {
                                table.insert(base + s, e - s, hash: h, value: 1)
                            }
                        }
                    }
                }
                out[w] = table
            }
        }
        var total = tables[0]!
        for t in tables.dropFirst() {
            let t = t!
            t.keyBytes.withUnsafeBufferPointer { kb in
                for e in t.entries {
                    let p = kb.baseAddress! + e.keyStart, n = Int(e.keyLength)
                    if let index = total.find(p, n, hash: e.hash) {
                        total.addValue(at: index, e.value)
                    } else {
                        total.insert(p, n, hash: e.hash, value: e.value)
                    }
                }
            }
        }
        var result: [(bytes: [UInt8], count: Int)] = []
        result.reserveCapacity(total.count)
        for (i, e) in total.entries.enumerated() { result.append((Array(total.key(at: i)), e.value)) }
        result.sort { $0.bytes.lexicographicallyPrecedes($1.bytes) }
        return result
    }

    /// A cut at or after `from` that cannot change GPT-2's split: the start of a line that
    /// begins with an ASCII letter, after a line ending in a non-space ASCII character.
    static func safeCut(_ b: [UInt8], from: Int) -> Int? {
        var c = max(from, 2)
        while c < b.count {
            let x = b[c]
            if b[c - 1] == 0x0A && ((x | 0x20) >= 0x61 && (x | 0x20) <= 0x7A) {
                let p = b[c - 2]
                if p < 0x80 && p != 0x20 && !(p >= 0x09 && p <= 0x0D) { return c }
            }
            c += 1
        }
        return nil
    }
}

/// A max-heap of (count, pair): larger count first, then smaller pair key.
struct PairHeap {
    private var items: [(count: Int, key: UInt64)] = []

    @inline(__always) private static func above(_ x: (count: Int, key: UInt64), _ y: (count: Int, key: UInt64)) -> Bool {
        x.count != y.count ? x.count > y.count : x.key < y.key
    }

    mutating func push(_ count: Int, _ key: UInt64) {
        items.append((count, key))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if !PairHeap.above(items[i], items[parent]) { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> (count: Int, key: UInt64)? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if items.isEmpty { return top }
        items[0] = last
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var best = i
            if l < items.count && PairHeap.above(items[l], items[best]) { best = l }
            if r < items.count && PairHeap.above(items[r], items[best]) { best = r }
            if best == i { break }
            items.swapAt(i, best)
            i = best
        }
        return top
    }
}
