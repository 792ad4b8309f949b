/// GPT-2's byte-level alphabet: every byte 0…255 is given a printable Unicode
/// character, so that byte strings can be written as JSON/text vocabulary
/// entries (`encoder.json`, `vocab.json`, `tokenizer.json`).
///
/// The printable bytes `!`…`~`, `¡`…`¬` and `®`…`ÿ` stand for themselves; the
/// other 68 bytes (controls, space, DEL, NBSP, soft hyphen, …) map in byte order
/// to U+0100, U+0101, … — so the space byte is `Ġ` (U+0120) and "\n" is `Ċ`
/// (U+010A). This is `bytes_to_unicode()` from GPT-2's `encoder.py`.
public enum ByteLevel {
    /// The bytes in GPT-2's id order: the printable ones first, then the rest
    /// ascending. GPT-2's `encoder.json` gives byte `bytesInIdOrder[i]` the id `i`.
    public static let bytesInIdOrder: [UInt8] = {
        var bs: [UInt8] = []
        for r in [0x21...0x7E, 0xA1...0xAC, 0xAE...0xFF] { bs.append(contentsOf: r.map { UInt8($0) }) }
        let printable = Set(bs)
        for b in 0...255 where !printable.contains(UInt8(b)) { bs.append(UInt8(b)) }
        return bs
    }()

    /// byte → its character's scalar value.
    public static let byteToScalar: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var n: UInt32 = 0
        for b in 0...255 {
            if (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b) {
                table[b] = UInt32(b)
            } else {
                table[b] = 256 + n
                n += 1
            }
        }
        return table
    }()

    /// scalar value → byte, or -1 for a character outside the alphabet (all scalars < 0x144).
    static let scalarToByte: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for b in 0...255 { table[Int(byteToScalar[b])] = Int16(b) }
        return table
    }()

    /// The byte-level string for `bytes` (as stored in vocabulary files).
    public static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(Unicode.Scalar(byteToScalar[Int(b)])!) }
        return String(s)
    }

    /// The bytes behind a byte-level string, or nil when it has a character outside the alphabet.
    public static func decode(_ s: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count)
        for u in s.unicodeScalars {
            guard u.value < 0x144 else { return nil }
            let b = scalarToByte[Int(u.value)]
            guard b >= 0 else { return nil }
            out.append(UInt8(b))
        }
        return out
    }
}

/// UTF-8 helpers shared by the byte-level tokenizer.
enum UTF8Check {
    /// Offset of the first byte that breaks UTF-8 (overlong forms, surrogates and
    /// values above U+10FFFF included), or nil when `bytes` is valid.
    static func firstInvalid(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        let n = bytes.count
        var i = 0
        while i < n {
            let b0 = bytes[i]
            if b0 < 0x80 { i += 1; continue }
            var need = 0
            var lo: UInt8 = 0x80, hi: UInt8 = 0xBF
            switch b0 {
            case 0xC2...0xDF: need = 1
            case 0xE0: need = 2; lo = 0xA0
            case 0xE1...0xEC, 0xEE, 0xEF: need = 2
            case 0xED: need = 2; hi = 0x9F
            case 0xF0: need = 3; lo = 0x90
            case 0xF1...0xF3: need = 3
            case 0xF4: need = 3; hi = 0x8F
            default: return i
            }
            if i + need >= n { return i }
            let b1 = bytes[i + 1]
            if b1 < lo || b1 > hi { return i }
            var k = 2
            while k <= need {
                let b = bytes[i + k]
                if b < 0x80 || b > 0xBF { return i }
                k += 1
            }
            i += need + 1
        }
        return nil
    }
}
