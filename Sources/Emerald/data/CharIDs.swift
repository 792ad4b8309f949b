/// Token ids for `--tokenizer char` in one pass over the inputs.
///
/// The char vocabulary is the sorted set of every scalar in the inputs plus
/// U+0003, so an id is a rank known only at the end. Rather than decompress
/// everything twice (a vocabulary pass, then a token pass), the preparer holds
/// back the first `PrepareOptions.charGuessTokens` tokens of kept documents,
/// then `freeze()`s the sorted set seen so far as a guess and writes each
/// scalar's rank in it; a scalar seen later gets the next free id (first-seen
/// order). At the end `finalVocabulary()` sorts everything and gives each
/// provisional id its final rank. When the guess held — the usual case, as a
/// corpus's characters mostly appear early — that map is the identity and the
/// shards are final as written; otherwise `ProvisionalShards` rewrites, in
/// place, the shards holding an id at or above the first one that moved.
///
/// Why guess, rather than first-seen ids throughout and a remap at the end: a
/// remap rewrites and flushes the whole output after the pass, not overlapped
/// with decompression — 3 s (~10% of the run) for the 4.2 GB of shards of the
/// 2 GB OpenWebText sample while they are still cached, a second read from
/// disk when they are not. With the guess it usually costs nothing.
///
/// Everything runs on the pipeline's consumer thread in document order, so
/// provisional ids are deterministic and need no locking. Sampled-out
/// documents are registered too: the vocabulary is exactly the inputs'.
final class CharIDs {
    /// scalar → provisional id; -1 unseen, -2 seen before the freeze.
    private let table: UnsafeMutablePointer<Int32>
    /// provisional id → scalar.
    private(set) var scalars: [UInt32] = []
    /// Whether ids are assigned (after `freeze()`).
    private(set) var frozen = false
    private var scratch: UnsafeMutablePointer<UInt32>
    private var scratchCapacity = 1 << 16

    init() {
        table = .allocate(capacity: 0x110000)
        table.initialize(repeating: -1, count: 0x110000)
        scratch = .allocate(capacity: scratchCapacity)
    }

    deinit {
        table.deallocate()
        scratch.deallocate()
    }

    /// Distinct scalars so far (after the freeze; U+0003 included).
    var count: Int { scalars.count }

    /// The provisional id of U+0003 (after the freeze).
    var endOfTextID: UInt32 { UInt32(table[3]) }

    /// Records the scalars of a document that is not written (sampled out), or
    /// one held back before the freeze. (The decoder only yields scalar values, all below 0x110000.)
    func register(_ s: UnsafeBufferPointer<UInt32>) {
        let t = table
        if frozen {
            for c in s where t[Int(c)] < 0 { _ = add(c) }
        } else {
            for c in s { t[Int(c)] = -2 }
        }
    }

    /// Ends the guess: every scalar seen so far, and U+0003, gets its sorted rank.
    func freeze() {
        precondition(!frozen)
        table[3] = -2
        for c in 0..<0x110000 where table[c] == -2 {
            table[c] = Int32(scalars.count)
            scalars.append(UInt32(c))
        }
        frozen = true
    }

    /// The provisional ids of `s` (valid until the next call) and the largest;
    /// scalars not seen before get new ids. After the freeze only.
    func map(_ s: UnsafeBufferPointer<UInt32>) -> (ids: UnsafeBufferPointer<UInt32>, maxID: UInt32) {
        precondition(frozen)
        if s.count > scratchCapacity {
            scratch.deallocate()
            scratchCapacity = max(s.count, 2 * scratchCapacity)
            scratch = .allocate(capacity: scratchCapacity)
        }
        let t = table, out = scratch
        var m: Int32 = 0
        for i in 0..<s.count {
            var id = t[Int(s[i])]
            if id < 0 { id = add(s[i]) }
            out[i] = UInt32(id)
            m = max(m, id)
        }
        return (UnsafeBufferPointer(start: out, count: s.count), UInt32(m))
    }

    @inline(never)
    private func add(_ c: UInt32) -> Int32 {
        let id = Int32(scalars.count)
        scalars.append(c)
        table[Int(c)] = id
        return id
    }

    /// The sorted vocabulary, the final id of each provisional id, and the
    /// first provisional id whose final id differs (`UInt32.max` if none).
    func finalVocabulary() -> (vocabulary: [Unicode.Scalar], perm: [UInt32], unchangedBelow: UInt32) {
        let order = scalars.indices.sorted { scalars[$0] < scalars[$1] }
        var perm = [UInt32](repeating: 0, count: scalars.count)
        for (rank, p) in order.enumerated() { perm[p] = UInt32(rank) }
        let moved = perm.indices.first { perm[$0] != UInt32($0) }
        return (order.map { Unicode.Scalar(scalars[$0])! }, perm, moved.map { UInt32($0) } ?? .max)
    }
}
