/// Open-addressing hash tables behind the byte-level BPE: no per-lookup
/// allocation, integer keys where possible.

/// (left id, right id) → (rank, merged id), the merge rules of a BPE vocabulary.
struct PairTable: Sendable {
    private var keys: [UInt64]
    private var values: [UInt64]  // rank << 32 | merged id
    private let shift: UInt64
    private let mask: Int
    private static let empty = UInt64.max

    init(capacityFor count: Int) {
        var bits = 4
        while (1 << bits) < count * 2 + 16 { bits += 1 }
        keys = [UInt64](repeating: PairTable.empty, count: 1 << bits)
        values = [UInt64](repeating: 0, count: 1 << bits)
        shift = UInt64(64 - bits)
        mask = (1 << bits) - 1
    }

    @inline(__always) static func key(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b)) }

    /// Inserts the rule unless the pair already has one (the first, lowest rank wins).
    mutating func insert(_ a: Int32, _ b: Int32, rank: UInt32, merged: Int32) -> Bool {
        let k = PairTable.key(a, b)
        var i = Int(truncatingIfNeeded: (k &* 0x9E37_79B9_7F4A_7C15) >> shift)
        while keys[i] != PairTable.empty {
            if keys[i] == k { return false }
            i = (i + 1) & mask
        }
        keys[i] = k
        values[i] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: merged))
        return true
    }

    /// rank << 32 | merged id, or `UInt64.max` when the pair does not merge.
    @inline(__always) func lookup(_ a: Int32, _ b: Int32) -> UInt64 {
        let k = PairTable.key(a, b)
        return keys.withUnsafeBufferPointer { (kp) -> UInt64 in
            var i = Int(truncatingIfNeeded: (k &* 0x9E37_79B9_7F4A_7C15) >> shift)
            while true {
                let x = kp[i]
                if x == k { return values[i] }
                if x == PairTable.empty { return UInt64.max }
                i = (i + 1) & mask
            }
        }
    }
}

/// A map from byte strings to an integer payload, storing keys in one arena.
/// Used as the per-call pre-token cache (payload = offset of the ids in `ids`)
/// and by the trainer to count pre-tokens (payload = count).
struct ByteStringTable {
    struct Entry {
        var hash: UInt64
        var keyStart: Int
        var keyLength: Int32
        var valueLength: Int32
        var value: Int
    }
    private(set) var entries: [Entry] = []
    private var slots: [Int32]
    private var mask: Int
    private(set) var keyBytes: [UInt8] = []
    /// Free storage for payloads that are id lists.
    var ids: [Int32] = []

    init(capacity: Int = 1024) {
        var c = 16
        while c < capacity * 2 { c <<= 1 }
        slots = [Int32](repeating: -1, count: c)
        mask = c - 1
    }

    var count: Int { entries.count }

    @inline(__always) static func hash(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325 ^ UInt64(n)
        var i = 0
        while i + 8 <= n {
            h = (h ^ UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self)) &* 0x100_0000_01B3
            h ^= h >> 29
            i += 8
        }
        while i < n {
            h = (h ^ UInt64(p[i])) &* 0x100_0000_01B3
            i += 1
        }
        return (h ^ (h >> 32)) &* 0x9E37_79B9_7F4A_7C15
    }

    /// Index of the entry for the key, or nil.
    @inline(__always) func find(_ p: UnsafePointer<UInt8>, _ n: Int, hash h: UInt64) -> Int? {
        slots.withUnsafeBufferPointer { (s) -> Int? in
            entries.withUnsafeBufferPointer { (e) -> Int? in
                keyBytes.withUnsafeBufferPointer { (kb) -> Int? in
                    var i = Int(truncatingIfNeeded: h >> 17) & mask
                    while true {
                        let x = s[i]
                        if x < 0 { return nil }
                        let en = e[Int(x)]
                        if en.hash == h && Int(en.keyLength) == n {
                            var k = 0
                            let base = kb.baseAddress! + en.keyStart
                            while k < n && base[k] == p[k] { k += 1 }
                            if k == n { return Int(x) }
                        }
                        i = (i + 1) & mask
                    }
                }
            }
        }
    }

    /// Adds a new key (the caller checked it is absent); returns its entry index.
    @discardableResult
    mutating func insert(_ p: UnsafePointer<UInt8>, _ n: Int, hash h: UInt64, value: Int, valueLength: Int32 = 0) -> Int {
        if (entries.count + 1) * 2 > slots.count { grow() }
        let index = entries.count
        entries.append(Entry(hash: h, keyStart: keyBytes.count, keyLength: Int32(n), valueLength: valueLength, value: value))
        keyBytes.append(contentsOf: UnsafeBufferPointer(start: p, count: n))
        var i = Int(truncatingIfNeeded: h >> 17) & mask
        while slots[i] >= 0 { i = (i + 1) & mask }
        slots[i] = Int32(index)
        return index
    }

    mutating func addValue(at index: Int, _ delta: Int) { entries[index].value += delta }

    /// The key of entry `index`.
    func key(at index: Int) -> ArraySlice<UInt8> {
        let e = entries[index]
        return keyBytes[e.keyStart..<(e.keyStart + Int(e.keyLength))]
    }

    private mutating func grow() {
        let c = slots.count * 2
        slots = [Int32](repeating: -1, count: c)
        mask = c - 1
        for (index, e) in entries.enumerated() {
            var i = Int(truncatingIfNeeded: e.hash >> 17) & mask
            while slots[i] >= 0 { i = (i + 1) & mask }
            slots[i] = Int32(index)
        }
    }
}
