/// Finds added tokens in text the way `tokenizers`' AddedVocabulary does: leftmost-longest
/// matches, searching on after each match; `single_word` tokens only between non-word characters
/// (`\w`: alphabetic, marks, decimal digits, connector punctuation, join controls); `lstrip` /
/// `rstrip` tokens swallow the whitespace (White_Space) before / after them.
struct AddedTokenMatcher {
    private struct Entry { let bytes: [UInt8]; let token: TokenizerPipeline.AddedToken }
    private let byFirstByte: [[Entry]]   // longest first
    let isEmpty: Bool

    init(_ tokens: [TokenizerPipeline.AddedToken]) {
        var table = [[Entry]](repeating: [], count: 256)
        for t in tokens where !t.content.isEmpty {
            let b = Array(t.content.utf8)
            table[Int(b[0])].append(Entry(bytes: b, token: t))
        }
        byFirstByte = table.map { $0.sorted { $0.bytes.count > $1.bytes.count } }
        isEmpty = tokens.isEmpty
    }

    /// Calls `text(start, end)` for the stretches between tokens and `token(id)` for each token, in order.
    func split(_ p: UnsafeBufferPointer<UInt8>, token: (Int32) -> Void, _ text: (Int, Int) -> Void) {
        let n = p.count
        guard !isEmpty else { if n > 0 { text(0, n) }; return }
        var offset = 0, i = 0
        while i < n {
            var found: Entry?
            for e in byFirstByte[Int(p[i])] where e.bytes.count <= n - i {
                var k = 1
                while k < e.bytes.count && p[i + k] == e.bytes[k] { k += 1 }
                if k == e.bytes.count { found = e; break }
            }
            guard let e = found else { i += 1; continue }
            var start = i, stop = i + e.bytes.count
            i = stop
            let t = e.token
            if t.singleWord {
                let before = start == 0 || !Self.isWord(Self.scalar(before: start, p))
                let after = stop == n || !Self.isWord(Self.scalar(at: stop, p))
                if !before || !after { continue }
            }
            if t.lstrip {
                var s = start
                while s > 0 {
                    let (u, len) = Self.scalarAndLength(before: s, p)
                    if !u.properties.isWhitespace { break }
                    s -= len
                }
                start = max(s, offset)
            }
            if t.rstrip {
                while stop < n {
                    let u = Self.scalar(at: stop, p)
                    if !u.properties.isWhitespace { break }
                    stop += String(u).utf8.count
                }
            }
            start = max(start, offset)
            if offset < start { text(offset, start) }
            token(t.id)
            offset = stop
            i = max(i, stop)
        }
        if offset < n { text(offset, n) }
    }

    static func isWord(_ u: Unicode.Scalar) -> Bool {
        let p = u.properties
        if p.isAlphabetic || p.isJoinControl { return true }
        switch p.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
        default: return false
        }
    }

    static func scalar(at i: Int, _ p: UnsafeBufferPointer<UInt8>) -> Unicode.Scalar {
        var it = UnsafeBufferPointer(rebasing: p[i...]).makeIterator()
        var dec = UTF8()
        if case .scalarValue(let u) = dec.decode(&it) { return u }
        return "\u{FFFD}"
    }

    static func scalarAndLength(before i: Int, _ p: UnsafeBufferPointer<UInt8>) -> (Unicode.Scalar, Int) {
        var s = i - 1
        while s > 0 && p[s] & 0xC0 == 0x80 { s -= 1 }
        return (scalar(at: s, p), i - s)
    }

    static func scalar(before i: Int, _ p: UnsafeBufferPointer<UInt8>) -> Unicode.Scalar { scalarAndLength(before: i, p).0 }
}

/// BPE merging over a list of ids: the adjacent pair with the lowest rank merges first (the
/// leftmost on a tie), until no pair has a rule — `tokenizers`' `Word::merge_all`.
enum BPEMerger {
    static func merge(_ ids: inout [Int32], _ pairs: PairTable) {
        let n = ids.count
        guard n > 1 else { return }
        if n <= 48 {
            var ranks = (0..<(n - 1)).map { pairs.lookup(ids[$0], ids[$0 + 1]) }
            while ids.count > 1 {
                var best = UInt64.max, at = -1
                for k in 0..<ranks.count where ranks[k] < best { best = ranks[k]; at = k }
                if at < 0 { break }
                ids[at] = Int32(truncatingIfNeeded: best & 0xFFFF_FFFF)
                ids.remove(at: at + 1)
                ranks.remove(at: at)
                if at > 0 { ranks[at - 1] = pairs.lookup(ids[at - 1], ids[at]) }
                if at < ids.count - 1 { ranks[at] = pairs.lookup(ids[at], ids[at + 1]) }
            }
            return
        }
        // Long words: a linked list and a min-heap of (rank, position) with lazy deletion.
        var next = (0..<n).map { $0 + 1 }, prev = (0..<n).map { $0 - 1 }
        var heap = MinHeap()
        for k in 0..<(n - 1) {
            let v = pairs.lookup(ids[k], ids[k + 1])
            if v != UInt64.max { heap.push(v >> 32, k, v) }
        }
        while let (value, left) = heap.pop() {
            let right = next[left]
            guard ids[left] >= 0, right < n, pairs.lookup(ids[left], ids[right]) == value else { continue }
            ids[left] = Int32(truncatingIfNeeded: value & 0xFFFF_FFFF)
            ids[right] = -1
            next[left] = next[right]
            if next[right] < n { prev[next[right]] = left }
            if prev[left] >= 0 {
                let v = pairs.lookup(ids[prev[left]], ids[left])
                if v != UInt64.max { heap.push(v >> 32, prev[left], v) }
            }
            if next[left] < n {
                let v = pairs.lookup(ids[left], ids[next[left]])
                if v != UInt64.max { heap.push(v >> 32, left, v) }
            }
        }
        var out: [Int32] = []
        var k = 0
        while k < n { out.append(ids[k]); k = next[k] }
        ids = out
    }

    /// Min-heap ordered by (rank, position).
    struct MinHeap {
        private var items: [(key: UInt64, value: UInt64)] = []   // key = rank << 32 | position
        mutating func push(_ rank: UInt64, _ pos: Int, _ value: UInt64) {
            items.append((rank << 32 | UInt64(pos), value))
            var i = items.count - 1
            while i > 0 {
                let parent = (i - 1) / 2
                if items[i].key >= items[parent].key { break }
                items.swapAt(i, parent); i = parent
            }
        }
        mutating func pop() -> (UInt64, Int)? {
            guard let top = items.first else { return nil }
            let last = items.removeLast()
            if !items.isEmpty {
                items[0] = last
                var i = 0
                while true {
                    let l = 2 * i + 1, r = l + 1
                    var m = i
                    if l < items.count && items[l].key < items[m].key { m = l }
                    if r < items.count && items[r].key < items[m].key { m = r }
                    if m == i { break }
                    items.swapAt(i, m); i = m
                }
            }
            return (top.value, Int(top.key & 0xFFFF_FFFF))
        }
    }
}
