import Foundation
import Hummingbird
import Logging
import NIOCore

/// Where and how the server listens.
public struct ServerConfiguration: Sendable {
    /// Address to bind; loopback by default, so nothing outside the machine reaches it unasked.
    public var host = "127.0.0.1"
    /// Port; 0 picks a free one (reported to `onStart`).
    public var port = 8080
    /// When set, `/v1/*` requests must send `Authorization: Bearer KEY`.
    public var apiKey: String?
    /// Largest request body accepted (413 beyond it).
    public var maxBodyBytes = 1 << 20
    /// Seconds a client has to send a whole request, or may stay idle between requests.
    public var readTimeout = 30.0

    /// The defaults.
    public init() {}
}

/// An OpenAI-compatible HTTP server over one `ServedModel` (Hummingbird 2, HTTP/1.1).
public struct InferenceServer: Sendable {
    /// What is served.
    public let model: ServedModel
    /// Where and how.
    public let configuration: ServerConfiguration

    /// A server for `model`.
    public init(model: ServedModel, configuration: ServerConfiguration) {
        self.model = model; self.configuration = configuration
    }

    /// Listens until SIGINT or SIGTERM, calling `onStart` with the bound port once accepting
    /// connections; shuts the decoder down on the way out.
    /// - Throws: when the address cannot be bound.
    public func run(onStart: @escaping @Sendable (Int) -> Void) async throws {
        var logger = Logger(label: "emerald-serve")
        logger.logLevel = .error  // the command prints its own start line; requests are not logged
        let timeout = TimeAmount.nanoseconds(Int64(configuration.readTimeout * 1e9))
        let app = Application(
            responder: Routes(model: model, configuration: configuration, metrics: Metrics()),
            server: .http1(configuration: .init(additionalChannelHandlers: [RequestReadTimeout(timeout: timeout)])),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "emerald"),
            onServerRunning: { channel in onStart(channel.localAddress?.port ?? configuration.port) },
            logger: logger)
        defer { model.decoder.shutdown() }
        try await app.runService()
    }
}
