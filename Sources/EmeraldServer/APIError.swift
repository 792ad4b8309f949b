import HTTPTypes
import Hummingbird

/// An error answered in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`
/// with its HTTP status.
public struct APIError: Error, Sendable {
    /// HTTP status.
    public var status: HTTPResponse.Status
    /// One sentence for a person.
    public var message: String
    /// OpenAI's error type: `invalid_request_error`, `authentication_error`, `server_error`, …
    public var type: String
    /// The request field at fault, if one is.
    public var param: String?
    /// A short machine-readable code, if any.
    public var code: String?

    /// An error with every field given.
    public init(_ status: HTTPResponse.Status, _ message: String, type: String = "invalid_request_error",
                param: String? = nil, code: String? = nil) {
        self.status = status; self.message = message; self.type = type; self.param = param; self.code = code
    }

    /// 400: a malformed request or parameter.
    static func invalid(_ message: String, param: String? = nil, code: String? = nil) -> APIError {
        APIError(.badRequest, message, param: param, code: code)
    }

    /// The JSON body.
    var json: JSON {
        ["error": ["message": .string(message), "type": .string(type), "param": .optional(param), "code": .optional(code)]]
    }

    /// The response.
    var response: Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: json.text)))
    }
}
