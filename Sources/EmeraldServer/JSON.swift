import Foundation
import Emerald

/// A JSON value. Requests are read into it by a strict parser (so a wrong type is reported by
/// name), and responses are written from it with keys in the order given.
public enum JSON: Sendable, Equatable {
    /// `null`.
    case null
    /// `true` / `false`.
    case bool(Bool)
    /// Any number.
    case number(Double)
    /// A string.
    case string(String)
    /// An array.
    case array([JSON])
    /// An object, its keys in order.
    case object([(String, JSON)])

    /// Two values are equal when they write the same text.
    public static func == (a: JSON, b: JSON) -> Bool { a.text == b.text }

    /// Parses `bytes` as one JSON value (UTF-8).
    /// - Throws: `APIError` (400) naming what is wrong.
    public static func parse(_ bytes: [UInt8]) throws -> JSON {
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw APIError.invalid("the request body is not valid UTF-8")
        }
        var parser = JSONParser(bytes)
        guard let value = parser.document() else {
            throw APIError.invalid("the request body is not valid JSON (at byte \(parser.position))")
        }
        return value
    }

    /// The value of `key` in an object (nil when absent or when this is not an object).
    public subscript(key: String) -> JSON? {
        guard case .object(let pairs) = self else { return nil }
        return pairs.last { $0.0 == key }?.1
    }

    /// The name of this value's type, for error messages.
    var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// Compact JSON text.
    public var text: String {
        var out = ""
        write(to: &out)
        return out
    }

    func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let x): out += Self.number(x)
        case .string(let s): out += JSONText.string(s)
        case .array(let items):
            out += "["
            for (i, v) in items.enumerated() { if i > 0 { out += "," }; v.write(to: &out) }
            out += "]"
        case .object(let pairs):
            out += "{"
            for (i, (k, v)) in pairs.enumerated() {
                if i > 0 { out += "," }
                out += JSONText.string(k) + ":"; v.write(to: &out)
            }
            out += "}"
        }
    }

    /// Integers without a fraction; other numbers as Swift's shortest round-trip form; NaN and
    /// infinities (JSON has none) as null.
    static func number(_ x: Double) -> String {
        guard x.isFinite else { return "null" }
        if x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
        return "\(x)"
    }
}

extension JSON: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByFloatLiteral {
    /// A string value.
    public init(stringLiteral s: String) { self = .string(s) }
    /// A number value.
    public init(integerLiteral n: Int) { self = .number(Double(n)) }
    /// A number value.
    public init(floatLiteral x: Double) { self = .number(x) }
    /// A boolean value.
    public init(booleanLiteral b: Bool) { self = .bool(b) }
    /// An array value.
    public init(arrayLiteral items: JSON...) { self = .array(items) }
    /// An object value, keys in the order written.
    public init(dictionaryLiteral pairs: (String, JSON)...) { self = .object(pairs) }

    /// A number from an integer.
    static func int(_ n: Int) -> JSON { .number(Double(n)) }
    /// A number from a float (its shortest decimal form, not its double expansion).
    static func float(_ x: Float) -> JSON { x.isFinite ? .number(Double("\(x)") ?? Double(x)) : .null }
    /// A string, or null.
    static func optional(_ s: String?) -> JSON { s.map { .string($0) } ?? .null }
}
