import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// A request's context: Hummingbird's, plus the connection, whose closing cancels generation.
struct ServerContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// Answers every request: routing by path and method (404, 405), the API key (401), body limits
/// (413), then the endpoint. Every error is answered in OpenAI's JSON shape.
struct Routes: HTTPResponder {
    typealias Context = ServerContext
    let model: ServedModel
    let configuration: ServerConfiguration
    let metrics: Metrics

    /// Paths and the one method each takes.
    private static let methods: [String: HTTPRequest.Method] = [
        "/": .get, "/health": .get, "/metrics": .get, "/v1/models": .get, "/v1/completions": .post, "/v1/chat/completions": .post,
    ]

    func respond(to request: Request, context: Context) async throws -> Response {
        let path = request.uri.path.count > 1 && request.uri.path.hasSuffix("/") ? String(request.uri.path.dropLast()) : request.uri.path
        let response: Response
        do {
            response = try await route(path, request, context.channel)
        } catch let e as APIError {
            response = e.response
        } catch is NIOTooManyBytesError {
            response = tooLarge.response  // the body outgrew the limit while it was read
        } catch {
            response = APIError(.badRequest, "the request could not be read", type: "invalid_request_error").response
        }
        metrics.record(endpoint: path, status: Int(response.status.code))
        return response
    }

    private var tooLarge: APIError {
        APIError(.contentTooLarge, "the request body is larger than \(configuration.maxBodyBytes) bytes", code: "request_too_large")
    }

    private func route(_ path: String, _ request: Request, _ channel: any Channel) async throws -> Response {
        let modelPath = path.hasPrefix("/v1/models/") ? "/v1/models/" : path
        guard let method = Self.methods[modelPath] ?? (modelPath == "/v1/models/" ? .get : nil) else {
            throw APIError(.notFound, "no such endpoint: \(request.method) \(path)", code: "unknown_url")
        }
        guard request.method == method else {
            var e = APIError(.methodNotAllowed, "\(path) takes \(method), not \(request.method)").response
            e.headers[.allow] = method.rawValue
            return e
        }
        if path.hasPrefix("/v1/") { try authorize(request) }
        switch modelPath {
        case "/": return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                                  body: .init(byteBuffer: ByteBuffer(string: WebPage.html)))
        case "/health": return json(["status": "ok"])
        case "/metrics": return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                                         body: .init(byteBuffer: ByteBuffer(string: metrics.render(model.decoder.statistics))))
        case "/v1/models": return json(["object": "list", "data": [modelJSON]])
        case "/v1/models/":
            guard path.dropFirst("/v1/models/".count) == model.id else {
                throw APIError(.notFound, "the model `\(path.dropFirst("/v1/models/".count))` does not exist", param: "model", code: "model_not_found")
            }
            return json(modelJSON)
        case "/v1/completions": return try await generate(GenerationParameters.completion(body(request), model: model), chat: false, channel)
        default: return try await generate(GenerationParameters.chat(body(request), model: model), chat: true, channel)
        }
    }

    private var modelJSON: JSON {
        ["id": .string(model.id), "object": "model", "created": .int(model.created), "owned_by": "emerald",
         "context_length": .int(model.context)]
    }

    private func authorize(_ request: Request) throws {
        guard let key = configuration.apiKey else { return }
        let given = request.headers[.authorization] ?? ""
        guard given.hasPrefix("Bearer "), Self.constantTimeEqual(Array(given.utf8.dropFirst(7)), Array(key.utf8)) else {
            throw APIError(.unauthorized, given.isEmpty ? "an API key is required: send Authorization: Bearer KEY" : "the API key is wrong",
                           code: "invalid_api_key")
        }
    }

    /// Compares without stopping at the first difference, so timing does not reveal the key's prefix.
    private static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<max(a.count, b.count) { diff |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0) }
        return diff == 0
    }

    /// The body as JSON: refused by its Content-Length before reading, or while reading it.
    private func body(_ request: Request) async throws -> JSON {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > configuration.maxBodyBytes { throw tooLarge }
        let buffer = try await request.body.collect(upTo: configuration.maxBodyBytes)
        return try JSON.parse(Array(buffer.readableBytesView))
    }

    private func json(_ value: JSON, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: value.text)))
    }

    /// Runs a completion or chat request: one JSON response, or server-sent events.
    private func generate(_ p: GenerationParameters, chat: Bool, _ channel: any Channel) async throws -> Response {
        let ticket = try Generation.submit(p, to: model)  // before any status is sent: 503 and 400 stay statuses
        // A client that leaves frees its slot at once, streaming or not (a stream would also
        // notice at its next failed write).
        channel.closeFuture.whenComplete { [weak ticket] _ in ticket?.cancel() }
        let shape = ResponseShape(chat: chat, model: model.id, promptLength: p.promptLength, logprobs: p.request.topLogprobs != nil)
        let promptTokens = p.request.prompt.count
        let model = self.model, executor = EventLoopExecutor(channel.eventLoop)
        guard p.stream else {
            var text = "", tokens: [TokenInfo] = []
            let outcome = try await withTaskExecutorPreference(executor) {
                try await withTaskCancellationHandler {
                    try await Generation.consume(ticket, p, model: model) { text += $0.text; tokens += $0.tokens }
                } onCancel: { ticket.cancel() }
            }
            return json(shape.complete(text: text, tokens: tokens, outcome: outcome, promptTokens: promptTokens))
        }
        let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache"]
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in try await withTaskExecutorPreference(executor) {
            func send(_ line: String) async throws { try await writer.write(ByteBuffer(string: "data: " + line + "\n\n")) }
            do {
                var first = chat
                let outcome = try await Generation.consume(ticket, p, model: model) { chunk in
                    try await send(shape.delta(chunk, first: first).text)
                    first = false
                }
                if first { try await send(shape.delta(Chunk(text: "", tokens: []), first: true).text) }
                try await send(shape.finish(outcome).text)
                if p.includeUsage { try await send(shape.usageChunk(promptTokens: promptTokens, outcome).text) }
            } catch let e as APIError {
                try await send(e.json.text)  // the status is sent already: the error goes in the stream
            }
            try await send("[DONE]")
            try await writer.finish(nil)
        } })
    }
}
