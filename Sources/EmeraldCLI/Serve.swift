import ArgumentParser
import Emerald
import EmeraldServer
import Foundation

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a model over an OpenAI-compatible HTTP API, with a chat page at /.",
        discussion: """
            Endpoints: GET /v1/models, POST /v1/completions, POST /v1/chat/completions (stream: true for \
            server-sent events), GET /health, GET /metrics (Prometheus), GET / (a chat page). Up to \
            --max-batch requests are decoded together; up to --max-queue more wait (503 beyond). A request's \
            prompt plus max_tokens must fit --ctx (400 otherwise; max_tokens defaults to the rest of the \
            context). Chat prompts use the model's chat template (tokenizer_config.json: ChatML, Llama 2, \
            Llama 3), or "System: …\\nUser: …\\nAssistant:" for models without one. Ctrl-C stops the server.
            """)

    @OptionGroup var source: ModelSource
    @Option(help: "Address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface).") var host = "127.0.0.1"
    @Option(help: "Port to listen on; 0 picks a free one (the start line shows it).") var port = 8080
    @Option(help: "Require this key from API clients (Authorization: Bearer KEY).") var apiKey: String?
    @Option(help: "Requests decoded together.") var maxBatch = 16
    @Option(help: "Requests waiting for a batch slot before new ones get 503.") var maxQueue = 64
    @Option(help: "Tokens per request, prompt and answer (default: the model's context).") var ctx: Int?
    @Option(help: "Seconds a client has to send a whole request (and may stay idle between requests) before it is disconnected.")
    var requestTimeout = 30.0
    @Option(help: "Weights read per generated token: fp32, bf16 (bfloat16 copies) or int8 (q8_0 copies).")
    var dtype: DecodePrecision = .fp32

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535, got \(port)") }
        guard !host.isEmpty else { throw ValidationError("--host must not be empty") }
        // Batches up to this size decode each sequence bit-identically to decoding it alone.
        guard (1...Tensor.rowInvariantRows).contains(maxBatch) else {
            throw ValidationError("--max-batch must be in 1...\(Tensor.rowInvariantRows), got \(maxBatch)")
        }
        guard (0...100_000).contains(maxQueue) else { throw ValidationError("--max-queue must be in 0...100000, got \(maxQueue)") }
        guard requestTimeout > 0 && requestTimeout <= 3600 else {
            throw ValidationError("--request-timeout must be in (0, 3600] seconds, got \(requestTimeout)")
        }
        if let ctx, ctx < 2 { throw ValidationError("--ctx must be at least 2 (a prompt token and a new one), got \(ctx)") }
        if let apiKey, apiKey.isEmpty || apiKey.contains(where: \.isWhitespace) {
            throw ValidationError("--api-key must be non-empty, without spaces")
        }
        if (source.model == nil) == (source.checkpoint == nil) {
            throw ValidationError("pass either --model DIR|HUB-ID or --checkpoint DIR")
        }
    }

    func run() throws {
        try EmeraldCommand.guarded {
            let ckpt = try source.load()
            ckpt.model.setDecodePrecision(dtype)
            let tokenizer = try ckpt.requireTokenizer("serve needs one to read prompts and write text")
            // The batch decoder keeps a context per sequence; a bigram's is its one last token.
            try require(ckpt.model.contextLength.map { $0 > 1 } ?? true,
                        "serve needs a model with a context of at least 2 tokens (a GPT); this one reads only its last token")
            let window = ckpt.model.contextLength
            if let ctx, let window {
                try require(ctx <= window, "--ctx \(ctx) is longer than the model's context (position table) of \(window)")
            }
            let context = ctx ?? window ?? 1024
            let template = Result { try ckpt.directory.map { try ChatTemplate.load(folder: $0) } ?? .plain }
            if case .failure(let e) = template { note("warning: \(e); /v1/chat/completions will answer 400") }
            let decoder = try BatchDecoder(model: ckpt.model, maxBatch: maxBatch, maxQueue: maxQueue, context: context)
            let model = ServedModel(id: modelID, tokenizer: tokenizer, template: template, decoder: decoder)
            var settings = ServerConfiguration()
            settings.host = host; settings.port = port; settings.apiKey = apiKey; settings.readTimeout = requestTimeout
            let shown = host.contains(":") ? "[\(host)]" : host
            let (host, maxBatch, server) = (self.host, self.maxBatch, InferenceServer(model: model, configuration: settings))
            try Self.blocking {
                try await server.run { port in
                    note("serving \(model.id) on http://\(shown):\(port) (ctx \(context), max batch \(maxBatch))")
                }
            } failure: { error in
                EmeraldError.invalidArgument("cannot serve on \(host):\(self.port): \(error)")
            }
        }
    }

    /// The name clients use: the hub id, or the model folder's name.
    private var modelID: String {
        var spec = Substring(source.model ?? source.checkpoint ?? "model")
        while spec.count > 1 && spec.hasSuffix("/") { spec = spec.dropLast() }
        guard FileManager.default.fileExists(atPath: String(spec)) else { return String(spec) }  // a hub id
        return URL(fileURLWithPath: String(spec)).standardizedFileURL.lastPathComponent
    }

    /// Runs async `body` to its end from this synchronous command.
    private static func blocking(_ body: @escaping @Sendable () async throws -> Void,
                                 failure: @escaping (any Error) -> any Error) throws {
        final class Box: @unchecked Sendable { var error: (any Error)? }
        let box = Box(), done = DispatchSemaphore(value: 0)
        Task.detached {
            do { try await body() } catch { box.error = error }
            done.signal()
        }
        done.wait()
        if let error = box.error { throw failure(error) }
    }
}
