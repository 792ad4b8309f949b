/// A strict RFC 8259 parser for request bodies. Foundation's decoder accepts more than JSON
/// (trailing commas), which a server should answer with 400; nesting is limited so a hostile
/// body cannot exhaust the stack.
struct JSONParser {
    private let bytes: [UInt8]
    /// Where parsing stopped (the error's offset when it failed).
    private(set) var position = 0
    private var depth = 0
    private static let maxDepth = 64

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// The one value the bytes hold, with nothing but whitespace around it; nil if they are not JSON.
    mutating func document() -> JSON? {
        guard let v = value() else { return nil }
        skipSpace()
        guard position == bytes.count else { return nil }  // something after the value
        return v
    }

    private var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    private mutating func skipSpace() {
        while let c = current, c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { position += 1 }
    }

    private mutating func take(_ c: UInt8) -> Bool {
        guard current == c else { return false }
        position += 1
        return true
    }

    private mutating func literal(_ word: String, _ v: JSON) -> JSON? {
        let w = Array(word.utf8)
        guard bytes.count - position >= w.count, bytes[position..<(position + w.count)].elementsEqual(w) else { return nil }
        position += w.count
        return v
    }

    private mutating func value() -> JSON? {
        skipSpace()
        switch current {
        case UInt8(ascii: "{")?: return container(close: UInt8(ascii: "}")) { p in
                guard let key = p.string() else { return nil }
                p.skipSpace()
                guard p.take(UInt8(ascii: ":")), let v = p.value() else { return nil }
                return .object([(key, v)])
            }
        case UInt8(ascii: "[")?: return container(close: UInt8(ascii: "]")) { p in p.value().map { .array([$0]) } }
        case UInt8(ascii: "\"")?: return string().map(JSON.string)
        case UInt8(ascii: "t")?: return literal("true", .bool(true))
        case UInt8(ascii: "f")?: return literal("false", .bool(false))
        case UInt8(ascii: "n")?: return literal("null", .null)
        default: return number()
        }
    }

    /// An object or array: `element` parses one member (as a one-member object or array).
    private mutating func container(close: UInt8, _ element: (inout JSONParser) -> JSON?) -> JSON? {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else { return nil }
        position += 1
        var pairs: [(String, JSON)] = [], items: [JSON] = []
        skipSpace()
        if !take(close) {
            repeat {
                skipSpace()
                switch element(&self) {
                case .object(let p)?: pairs += p
                case .array(let i)?: items += i
                default: return nil
                }
                skipSpace()
            } while take(UInt8(ascii: ","))  // a comma must be followed by a member: no trailing comma
            guard take(close) else { return nil }
        }
        return close == UInt8(ascii: "}") ? .object(pairs) : .array(items)
    }

    private mutating func string() -> String? {
        guard take(UInt8(ascii: "\"")) else { return nil }
        var out: [UInt8] = []
        while let c = current {
            position += 1
            switch c {
            case UInt8(ascii: "\""): return String(decoding: out, as: UTF8.self)  // the body was checked as UTF-8
            case UInt8(ascii: "\\"):
                guard let e = current else { return nil }
                position += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    guard var u = hex4() else { return nil }
                    if (0xD800..<0xDC00).contains(u) {  // a high surrogate needs its low half
                        guard take(UInt8(ascii: "\\")), take(UInt8(ascii: "u")), let low = hex4(), (0xDC00..<0xE000).contains(low) else { return nil }
                        u = 0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let scalar = Unicode.Scalar(u) else { return nil }  // a lone low surrogate
                    out += Array(String(Character(scalar)).utf8)
                default: return nil
                }
            case 0..<0x20: return nil  // control characters must be escaped
            default: out.append(c)
            }
        }
        return nil
    }

    private mutating func hex4() -> UInt32? {
        guard bytes.count - position >= 4, let v = UInt32(String(decoding: bytes[position..<(position + 4)], as: UTF8.self), radix: 16),
              bytes[position..<(position + 4)].allSatisfy({ $0 != UInt8(ascii: "+") && $0 != UInt8(ascii: "-") }) else { return nil }
        position += 4
        return v
    }

    /// -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, finite.
    private mutating func number() -> JSON? {
        let start = position
        func digits() -> Int {
            let from = position
            while let c = current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) { position += 1 }
            return position - from
        }
        _ = take(UInt8(ascii: "-"))
        if take(UInt8(ascii: "0")) {} else if digits() == 0 { return nil }
        if take(UInt8(ascii: ".")), digits() == 0 { return nil }
        if take(UInt8(ascii: "e")) || take(UInt8(ascii: "E")) {
            if !take(UInt8(ascii: "+")) { _ = take(UInt8(ascii: "-")) }
            if digits() == 0 { return nil }
        }
        guard let x = Double(String(decoding: bytes[start..<position], as: UTF8.self)), x.isFinite else { return nil }
        return .number(x)
    }
}
