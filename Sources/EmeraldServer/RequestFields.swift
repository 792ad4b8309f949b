/// Typed reads of a request body's fields; a wrong type or range is a 400 naming the field.
/// A field set to null counts as absent, as OpenAI's API treats it.
struct RequestFields {
    let body: JSON

    /// The body, which must be a JSON object.
    init(_ body: JSON) throws {
        guard case .object = body else { throw APIError.invalid("the request body must be a JSON object, got \(body.typeName)") }
        self.body = body
    }

    func value(_ key: String) -> JSON? {
        if case .null? = body[key] { return nil }
        return body[key]
    }

    func number(_ key: String, in range: ClosedRange<Double>) throws -> Double? {
        guard let v = value(key) else { return nil }
        guard case .number(let x) = v else { throw APIError.invalid("`\(key)` must be a number, got \(v.typeName)", param: key) }
        guard range.contains(x) else {
            throw APIError.invalid("`\(key)` must be in \(JSON.number(range.lowerBound))...\(JSON.number(range.upperBound)), got \(JSON.number(x))", param: key)
        }
        return x
    }

    func int(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let v = value(key) else { return nil }
        guard case .number(let x) = v, x == x.rounded(), abs(x) < 1e15 else {
            throw APIError.invalid("`\(key)` must be an integer, got \(v.typeName == "a number" ? v.text : v.typeName)", param: key)
        }
        guard range.contains(Int(x)) else { throw APIError.invalid("`\(key)` must be in \(range.lowerBound)...\(range.upperBound), got \(Int(x))", param: key) }
        return Int(x)
    }

    func bool(_ key: String) throws -> Bool? {
        guard let v = value(key) else { return nil }
        guard case .bool(let b) = v else { throw APIError.invalid("`\(key)` must be a boolean, got \(v.typeName)", param: key) }
        return b
    }

    func string(_ key: String) throws -> String? {
        guard let v = value(key) else { return nil }
        guard case .string(let s) = v else { throw APIError.invalid("`\(key)` must be a string, got \(v.typeName)", param: key) }
        return s
    }

    /// `stop`: a string or an array of at most 4 non-empty strings.
    func stop() throws -> [String] {
        guard let v = value("stop") else { return [] }
        let list: [JSON]
        switch v {
        case .string: list = [v]
        case .array(let items): list = items
        default: throw APIError.invalid("`stop` must be a string or an array of strings, got \(v.typeName)", param: "stop")
        }
        guard list.count <= 4 else { throw APIError.invalid("`stop` takes at most 4 strings, got \(list.count)", param: "stop") }
        return try list.map {
            guard case .string(let s) = $0, !s.isEmpty else { throw APIError.invalid("`stop` must hold non-empty strings", param: "stop") }
            return s
        }
    }
}
