/// What `emerald prepare` does with a document whose bytes are not valid UTF-8.
public enum InvalidUTF8Policy: String, Sendable, CaseIterable {
    /// Drop the document (default); counted as `invalid_utf8` in the manifest.
    case skip
    /// Replace each maximal invalid subsequence by U+FFFD, like Python's
    /// `errors="replace"`; affected documents are counted in the manifest.
    case replace
    /// Stop with an error naming the document and byte offset.
    case error
}

/// Decodes one document's bytes to Unicode scalars the way `TextCorpus` reads
/// files: a leading byte-order mark is dropped, "\r\n" and lone "\r" become
/// "\n", and invalid UTF-8 is replaced (maximal subparts → U+FFFD) while
/// counting how many replacements were made and where the first was.
public struct DocumentDecoder {
    /// Scalars of the last decoded document.
    public private(set) var scalars: [UInt32] = []
    /// Invalid sequences in the last document.
    public private(set) var invalidCount = 0
    /// Byte offset of the first invalid sequence (or -1).
    public private(set) var firstInvalidOffset = -1

    /// A reusable decoder.
    public init() {}

    /// Decodes `bytes` into `scalars`.
    public mutating func decode(_ bytes: UnsafeBufferPointer<UInt8>) {
        invalidCount = 0
        firstInvalidOffset = -1
        var out = scalars  // reuse the capacity without copying
        scalars = []
        out.removeAll(keepingCapacity: true)
        let n = bytes.count
        guard n > 0 else { scalars = out; return }
        // At most one scalar per byte: size the output once, write through a pointer, trim at the end.
        out.append(contentsOf: repeatElement(0, count: n))
        var written = 0
        out.withUnsafeMutableBufferPointer { decode(bytes.baseAddress!, n, into: $0.baseAddress!, &written) }
        out.removeLast(n - written)
        scalars = out
    }

    private mutating func decode(_ p: UnsafePointer<UInt8>, _ n: Int, into q: UnsafeMutablePointer<UInt32>, _ k: inout Int) {
        var i = 0
        if n >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF { i = 3 }
        var lastCR = false
        @inline(__always) func emit(_ c: UInt32) {
            if c == 0x0D { q[k] = 0x0A; k += 1; lastCR = true; return }
            if c == 0x0A && lastCR { lastCR = false; return }
            lastCR = false
            q[k] = c
            k += 1
        }
        while i < n {
            // Eight ASCII bytes without "\r" (most text) copy straight through.
            if !lastCR && i + 8 <= n {
                let w = UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self)
                let cr = w ^ 0x0D0D_0D0D_0D0D_0D0D
                if (w | ((cr &- 0x0101_0101_0101_0101) & ~cr)) & 0x8080_8080_8080_8080 == 0 {
                    for j in 0..<8 { q[k + j] = UInt32(p[i + j]) }
                    k += 8
                    i += 8
                    continue
                }
            }
            let b0 = p[i]
            if b0 < 0x80 { emit(UInt32(b0)); i += 1; continue }
            var need = 0
            var cp: UInt32 = 0
            var lo: UInt8 = 0x80, hi: UInt8 = 0xBF
            switch b0 {
            case 0xC2...0xDF: need = 1; cp = UInt32(b0 & 0x1F)
            case 0xE0: need = 2; lo = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: need = 2; cp = UInt32(b0 & 0x0F)
            case 0xED: need = 2; cp = 0x0D; hi = 0x9F
            case 0xF0: need = 3; lo = 0x90
            case 0xF1...0xF3: need = 3; cp = UInt32(b0 & 0x07)
            case 0xF4: need = 3; cp = 4; hi = 0x8F
            default: need = -1
            }
            var j = 1
            if need > 0 {
                while j <= need && i + j < n {
                    let b = p[i + j]
                    let l: UInt8 = j == 1 ? lo : 0x80, h: UInt8 = j == 1 ? hi : 0xBF
                    guard b >= l && b <= h else { break }
                    cp = cp << 6 | UInt32(b & 0x3F)
                    j += 1
                }
            }
            if need > 0 && j == need + 1 {
                emit(cp)
                i += j
            } else {
                if firstInvalidOffset < 0 { firstInvalidOffset = i }
                invalidCount += 1
                emit(0xFFFD)
                i += j  // the maximal subpart (at least one byte)
            }
        }
    }
}

/// The seeded per-document decisions of `emerald prepare`: which documents
/// are kept (`--sample-rate`) and which go to validation (`--val-fraction`).
///
/// Each is a pure function of the document's index (its position in input
/// order, counting every document read) and the seed, so runs are
/// deterministic, independent of thread count, and adding documents at the
/// end never moves earlier ones. `scripts/count_tokens.py` mirrors it:
/// `u = (mix(mix(seed ^ salt) ^ index) >> 11) / 2^53` with SplitMix64's `mix`.
public enum DocumentSplit {
    static let sampleSalt: UInt64 = 0x73616D706C65  // "sample"
    static let splitSalt: UInt64 = 0x73706C6974  // "split"

    /// SplitMix64's finaliser.
    @inline(__always)
    public static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform number in [0, 1) for (index, seed, salt).
    @inline(__always)
    public static func unit(index: Int, seed: UInt64, salt: UInt64) -> Double {
        Double(mix(mix(seed ^ salt) ^ UInt64(index)) >> 11) / 9_007_199_254_740_992.0
    }

    /// Whether document `index` survives `--sample-rate`.
    public static func isSampled(index: Int, seed: UInt64, rate: Double) -> Bool {
        rate >= 1 || unit(index: index, seed: seed, salt: sampleSalt) < rate
    }

    /// Whether document `index` belongs to the validation split.
    public static func isValidation(index: Int, seed: UInt64, fraction: Double) -> Bool {
        fraction > 0 && unit(index: index, seed: seed, salt: splitSalt) < fraction
    }
}
