import Emerald
import Foundation
import XCTest

/// `emerald serve` through its HTTP API: the real binary on `--port 0`, a raw socket client.
/// Most tests share one server over a small char-level GPT trained for them (context 1024, slow
/// enough per token that a cancelled stream visibly stops early); the tiny Hugging Face GPT-2
/// fixture covers byte-level BPE and its end-of-text token.
final class ServerTests: XCTestCase {
    /// The trained model's folder, and the server every test shares.
    private static var modelDir: String?
    private static var shared: (child: Child, port: Int)?
    private var extra: [Child] = []

    override func setUpWithError() throws {
        guard EmeraldExecutable.path != nil else { throw XCTSkip("no emerald executable; build with --build-tests") }
        guard HTTPTestClient.loopbackAvailable() else { throw XCTSkip("cannot bind 127.0.0.1: no loopback interface in this sandbox") }
    }

    override func tearDown() {
        for c in extra { c.send(SIGKILL); c.wait(timeout: 10) }
        extra = []
    }

    override class func tearDown() {
        if let s = shared { s.child.send(SIGINT); if !s.child.wait(timeout: 10) { s.child.send(SIGKILL) } }
        shared = nil
    }

    // MARK: - Fixtures

    private static func model() throws -> String {
        if let m = modelDir { return m }
        let dir = TestSupport.tempDir("servermodel")
        let r = try EmeraldExecutable.run(["train", "--data", TestSupport.bookPath, "--n-layer", "6", "--n-head", "6", "--n-embd", "384",
                                           "--block-size", "1024", "--steps", "1", "--batch-size", "1", "--eval-iters", "1",
                                           "--eval-interval", "1", "--out", "m", "--progress", "none"], in: dir, timeout: 300)
        XCTAssertEqual(r.status, 0, r.stderr)
        modelDir = dir + "/m"
        return dir + "/m"
    }

    /// Starts `emerald serve ARGS --port 0` and waits for its start line; returns it and the port.
    private static func start(_ args: [String], in dir: String) throws -> (Child, Int) {
        let child = try Child(EmeraldExecutable.path!, ["serve"] + args + ["--port", "0"], in: dir, environment: ["HF_HUB_OFFLINE": "1"])
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            let err = child.stderr
            if let r = err.range(of: #"serving \S+ on http://127\.0\.0\.1:(\d+) \(ctx \d+, max batch \d+\)"#, options: .regularExpression) {
                let port = Int(err[r].split(separator: ":").last!.split(separator: " ").first!)!
                return (child, port)
            }
            if !child.isRunning { throw NSError(domain: "serve", code: 1, userInfo: [NSLocalizedDescriptionKey: "serve exited: \(err)"]) }
            usleep(20_000)
        }
        throw NSError(domain: "serve", code: 2, userInfo: [NSLocalizedDescriptionKey: "no start line: \(child.stderr)"])
    }

    /// The shared server over the trained model.
    private func server() throws -> HTTPTestClient {
        if let s = Self.shared, s.child.isRunning { return HTTPTestClient(port: s.port) }
        let (child, port) = try Self.start(["--checkpoint", try Self.model()], in: TestSupport.tempDir("serve"))
        Self.shared = (child, port)
        return HTTPTestClient(port: port)
    }

    /// A server of its own, killed after the test.
    private func ownServer(_ args: [String]) throws -> HTTPTestClient {
        let (child, port) = try Self.start(args, in: TestSupport.tempDir("serve"))
        extra.append(child)
        return HTTPTestClient(port: port)
    }

    private func tokenizer(_ dir: String) throws -> any Tokenizer { try XCTUnwrap(Checkpoint.load(from: dir).tokenizer) }

    /// `emerald sample --temperature 0 --prompt-ids … --print-ids`.
    private func sampleIDs(_ source: [String], prompt: [Int32], count: Int) throws -> [Int32] {
        let r = try EmeraldExecutable.run(["sample"] + source + ["--prompt-ids", prompt.map(String.init).joined(separator: ","),
                                           "--temperature", "0", "--max-new-tokens", String(count), "--print-ids"],
                                          in: TestSupport.tempDir("sample"))
        XCTAssertEqual(r.status, 0, r.stderr)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout)) as? [Int]).map(Int32.init)
    }

    private func choice(_ json: [String: Any]) throws -> [String: Any] {
        try XCTUnwrap((json["choices"] as? [[String: Any]])?.first, "\(json)")
    }

    private func usage(_ json: [String: Any]) throws -> [String: Int] { try XCTUnwrap(json["usage"] as? [String: Int], "\(json)") }

    private func assertError(_ r: HTTPTestClient.Reply, _ status: Int, _ phrase: String, param: String? = nil,
                             file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(r.status, status, r.text, file: file, line: line)
        XCTAssertEqual(r.headers["content-type"], "application/json", file: file, line: line)
        let error = try XCTUnwrap(try r.json()["error"] as? [String: Any], r.text, file: file, line: line)
        XCTAssertEqual(Set(error.keys), ["message", "type", "param", "code"], file: file, line: line)
        XCTAssertTrue((error["message"] as? String ?? "").contains(phrase), "\(error) should mention \(phrase)", file: file, line: line)
        if let param { XCTAssertEqual(error["param"] as? String, param, file: file, line: line) }
    }

    // MARK: - Tests

    func testModelsHealthMetricsAndPage() throws {
        let http = try server()
        let models = try http.request("GET", "/v1/models").json()
        XCTAssertEqual(models["object"] as? String, "list")
        let model = try XCTUnwrap((models["data"] as? [[String: Any]])?.first)
        XCTAssertEqual(model["id"] as? String, "m")
        XCTAssertEqual(model["context_length"] as? Int, 1024)
        XCTAssertEqual(try http.request("GET", "/v1/models/m").json()["id"] as? String, "m")
        XCTAssertEqual(try http.request("GET", "/health").json()["status"] as? String, "ok")
        let page = try http.request("GET", "/")
        XCTAssertEqual(page.status, 200)
        XCTAssertTrue(page.headers["content-type"]?.hasPrefix("text/html") == true)
        for part in ["/v1/chat/completions", "/v1/models", "AbortController", "getReader", "New chat", "Stop", "Bearer"] {
            XCTAssertTrue(page.text.contains(part), "the page lacks \(part)")
        }
        XCTAssertFalse(page.text.contains("http://") || page.text.contains("https://"), "the page must load nothing from elsewhere")
        let metrics = try http.request("GET", "/metrics")
        XCTAssertTrue(metrics.headers["content-type"]?.hasPrefix("text/plain") == true)
        for name in ["emerald_http_requests_total{endpoint=\"/v1/models\",status=\"200\"}", "# TYPE emerald_generated_tokens_total counter",
                     "emerald_tokens_per_second", "emerald_queue_depth", "emerald_active_sequences", "emerald_decode_steps_total"] {
            XCTAssertTrue(metrics.text.contains(name), "metrics lack \(name):\n\(metrics.text)")
        }
    }

    /// Greedy completions are `emerald sample --temperature 0`'s ids, as text and as tokens.
    func testGreedyCompletionEqualsSample() throws {
        let http = try server()
        let dir = try Self.model(), tok = try tokenizer(dir)
        let prompt = try tok.encode("Dorothy said")
        let want = try sampleIDs(["--checkpoint", dir], prompt: prompt, count: 24)
        let r = try http.post("/v1/completions", json: ["model": "m", "prompt": prompt.map(Int.init), "max_tokens": 24,
                                                        "temperature": 0, "logprobs": 0])
        XCTAssertEqual(r.status, 200, r.text)
        let c = try choice(try r.json())
        XCTAssertEqual(c["text"] as? String, tok.decode(want))
        XCTAssertEqual((c["logprobs"] as? [String: Any])?["tokens"] as? [String], want.map { tok.decode([$0]) })
        XCTAssertEqual(c["finish_reason"] as? String, "length")
        XCTAssertEqual(try usage(try r.json()), ["prompt_tokens": prompt.count, "completion_tokens": 24, "total_tokens": prompt.count + 24])
        // The same prompt as text.
        let t = try http.post("/v1/completions", json: ["prompt": "Dorothy said", "max_tokens": 24, "temperature": 0])
        XCTAssertEqual(try choice(try t.json())["text"] as? String, tok.decode(want))
    }

    /// Byte-level BPE (the Hugging Face fixture): the same ids up to GPT-2's end-of-text token,
    /// which ends the completion with "stop".
    func testGreedyBPECompletionStopsAtEndOfText() throws {
        let dir = try HFTests.folder("tiny-gpt2")
        let http = try ownServer(["--model", dir])
        let tok = try tokenizer(dir)
        for prompt: [Int32] in [[15, 16, 17], [40, 41], [100]] {
            let want = try sampleIDs(["--model", dir], prompt: prompt, count: 32 - prompt.count)
            let r = try http.post("/v1/completions", json: ["prompt": prompt.map(Int.init), "temperature": 0])
            let c = try choice(try r.json())
            let end = want.firstIndex(of: 0)  // <|endoftext|>
            XCTAssertEqual(c["text"] as? String, tok.decode(Array(want[..<(end ?? want.count)])), "\(prompt)")
            XCTAssertEqual(c["finish_reason"] as? String, end == nil ? "length" : "stop")
            XCTAssertEqual(try usage(try r.json())["completion_tokens"], end ?? want.count)
        }
        let models = try http.request("GET", "/v1/models").json()
        XCTAssertEqual((models["data"] as? [[String: Any]])?.first?["context_length"] as? Int, 32)
        // Chat: GPT-2 has no template, so the plain one; its prompt is that text's tokens.
        let chat = try http.post("/v1/chat/completions", json: ["messages": [["role": "user", "content": "hi"]], "max_tokens": 4])
        XCTAssertEqual(chat.status, 200, chat.text)
        XCTAssertEqual(try usage(try chat.json())["prompt_tokens"], try tok.encode("User: hi\nAssistant:").count)
    }

    func testStreamingCompletionAndChat() throws {
        let http = try server()
        let body: [String: Any] = ["prompt": "Dorothy", "max_tokens": 12, "temperature": 0]
        let whole = try choice(try http.post("/v1/completions", json: body).json())["text"] as? String
        var streamed = body
        streamed["stream"] = true
        streamed["stream_options"] = ["include_usage": true]
        let r = try http.post("/v1/completions", json: streamed)
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.headers["content-type"], "text/event-stream")
        XCTAssertTrue(r.text.hasSuffix("data: [DONE]\n\n"), r.text)
        let chunks = try r.events.dropLast().map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        XCTAssertTrue(chunks.allSatisfy { $0["object"] as? String == "text_completion" })
        let texts = chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first?["text"] as? String }
        XCTAssertEqual(texts.joined(), whole)
        XCTAssertEqual(chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String }, ["length"])
        XCTAssertEqual(chunks.last?["usage"] as? [String: Int], ["prompt_tokens": 7, "completion_tokens": 12, "total_tokens": 19])
        XCTAssertEqual((chunks.last?["choices"] as? [Any])?.count, 0)

        let chat = try http.post("/v1/chat/completions", json: ["messages": [["role": "user", "content": "Hello"]], "max_tokens": 8,
                                                                 "temperature": 0, "stream": true])
        XCTAssertTrue(chat.text.hasSuffix("data: [DONE]\n\n"), chat.text)
        let deltas = try chat.events.dropLast().map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        XCTAssertTrue(deltas.allSatisfy { $0["object"] as? String == "chat.completion.chunk" })
        let parts = deltas.compactMap { ($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any] }
        XCTAssertEqual(parts.first?["role"] as? String, "assistant")
        let nonStream = try http.post("/v1/chat/completions", json: ["messages": [["role": "user", "content": "Hello"]], "max_tokens": 8,
                                                                      "temperature": 0])
        let message = try XCTUnwrap(try choice(try nonStream.json())["message"] as? [String: Any])
        XCTAssertEqual(parts.compactMap { $0["content"] as? String }.joined(), message["content"] as? String)
    }

    func testChatCompletion() throws {
        let http = try server()
        let tok = try tokenizer(try Self.model())
        let messages = [["role": "system", "content": "Be kind."], ["role": "user", "content": "Who is Dorothy?"]]
        let r = try http.post("/v1/chat/completions", json: ["model": "m", "messages": messages, "max_tokens": 10, "seed": 7])
        XCTAssertEqual(r.status, 200, r.text)
        let json = try r.json()
        XCTAssertEqual(json["object"] as? String, "chat.completion")
        XCTAssertTrue((json["id"] as? String)?.hasPrefix("chatcmpl-") == true)
        let c = try choice(json)
        XCTAssertEqual((c["message"] as? [String: Any])?["role"] as? String, "assistant")
        // The plain template (an Emerald checkpoint has none).
        let prompt = try tok.encode("System: Be kind.\nUser: Who is Dorothy?\nAssistant:").count
        let u = try usage(json)
        XCTAssertEqual(u["prompt_tokens"], prompt)
        XCTAssertEqual(u["total_tokens"], prompt + u["completion_tokens"]!)
        // A seed repeats a sampled answer.
        let again = try http.post("/v1/chat/completions", json: ["messages": messages, "max_tokens": 10, "seed": 7])
        XCTAssertEqual(try choice(try again.json())["message"] as? [String: String], c["message"] as? [String: String])
    }

    /// Text stops before a stop string, streamed or not, and never shows part of it.
    func testStopStrings() throws {
        let http = try server()
        let body: [String: Any] = ["prompt": "The Wizard", "max_tokens": 40, "temperature": 0]
        let text = try XCTUnwrap(try choice(try http.post("/v1/completions", json: body).json())["text"] as? String)
        let scalars = Array(text.unicodeScalars)
        XCTAssertEqual(scalars.count, 40)
        let stop = String(String.UnicodeScalarView(scalars[10..<13]))
        let cut = try XCTUnwrap(text.range(of: stop))
        let want = String(text[..<cut.lowerBound])
        for stream in [false, true] {
            var b = body
            b["stop"] = ["\u{7}never", stop]
            b["stream"] = stream
            let r = try http.post("/v1/completions", json: b)
            XCTAssertEqual(r.status, 200, r.text)
            if stream {
                let chunks = try r.events.dropLast().map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
                let choices = chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first }
                XCTAssertEqual(choices.compactMap { $0["text"] as? String }.joined(), want)
                XCTAssertEqual(choices.last?["finish_reason"] as? String, "stop")
            } else {
                let c = try choice(try r.json())
                XCTAssertEqual(c["text"] as? String, want)
                XCTAssertEqual(c["finish_reason"] as? String, "stop")
            }
        }
        var one = body
        one["stop"] = stop  // a single string
        XCTAssertEqual(try choice(try http.post("/v1/completions", json: one).json())["text"] as? String, want)
    }

    func testLogprobsShapes() throws {
        let http = try server()
        let r = try http.post("/v1/completions", json: ["prompt": "Oz", "max_tokens": 6, "temperature": 0, "logprobs": 3])
        let c = try choice(try r.json())
        let lp = try XCTUnwrap(c["logprobs"] as? [String: Any])
        let tokens = try XCTUnwrap(lp["tokens"] as? [String]), chosen = try XCTUnwrap(lp["token_logprobs"] as? [Double])
        let top = try XCTUnwrap(lp["top_logprobs"] as? [[String: Double]]), offsets = try XCTUnwrap(lp["text_offset"] as? [Int])
        XCTAssertEqual([tokens.count, chosen.count, top.count, offsets.count], [6, 6, 6, 6])
        XCTAssertEqual(tokens.joined(), c["text"] as? String)
        XCTAssertEqual(offsets.first, 2, "offsets start after the prompt")
        for i in 0..<6 {
            XCTAssertLessThanOrEqual(top[i].count, 3)
            XCTAssertLessThanOrEqual(chosen[i], 0)
            XCTAssertEqual(chosen[i], top[i].values.max()!, accuracy: 1e-5, "greedy picks the likeliest")
            if i > 0 { XCTAssertEqual(offsets[i], offsets[i - 1] + tokens[i - 1].unicodeScalars.count) }
        }
        let chat = try http.post("/v1/chat/completions", json: ["messages": [["role": "user", "content": "Hi"]], "max_tokens": 5,
                                                                 "logprobs": true, "top_logprobs": 2])
        let json = try chat.json()
        let content = try XCTUnwrap((try choice(json)["logprobs"] as? [String: Any])?["content"] as? [[String: Any]])
        XCTAssertEqual(content.count, try usage(json)["completion_tokens"])
        for entry in content {
            XCTAssertNotNil(entry["token"] as? String)
            XCTAssertNotNil(entry["logprob"] as? Double)
            XCTAssertNotNil(entry["bytes"] as? [Int])
            let alternatives = try XCTUnwrap(entry["top_logprobs"] as? [[String: Any]])
            XCTAssertEqual(alternatives.count, 2)
            XCTAssertEqual(Set(alternatives[0].keys), ["token", "logprob", "bytes"])
        }
        let plain = try http.post("/v1/chat/completions", json: ["messages": [["role": "user", "content": "Hi"]], "max_tokens": 2])
        XCTAssertTrue(try choice(try plain.json())["logprobs"] is NSNull)
    }

    func testBadRequestsAre400() throws {
        let http = try server()
        try assertError(try http.request("POST", "/v1/completions", body: Array(#"{"prompt": "#.utf8)), 400, "not valid JSON")
        try assertError(try http.request("POST", "/v1/completions", body: Array(#"[1, 2]"#.utf8)), 400, "must be a JSON object")
        // Strict JSON: what Foundation's lenient decoder would let through, and nesting deep enough to exhaust a stack.
        for bad in [#"{"prompt": "Oz",}"#, #"{"prompt": "Oz", "stop": ["a",]}"#, #"{"prompt": "Oz"} x"#, #"{"prompt": NaN}"#,
                    #"{"prompt": "\ud800"}"#, #"{"prompt": 'Oz'}"#, #"{"prompt": "a", "max_tokens": 01}"#, "{\"prompt\": \"a\u{1}\"}",
                    String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)] {
            try assertError(try http.request("POST", "/v1/completions", body: Array(bad.utf8)), 400, "not valid JSON")
        }
        let escaped = try http.request("POST", "/v1/completions", body: Array(#"{"prompt": "\u0044orothy\n", "max_tokens": 1e0}"#.utf8))
        XCTAssertEqual(escaped.status, 200, escaped.text)
        XCTAssertEqual(try usage(try escaped.json())["prompt_tokens"], 8)
        try assertError(try http.request("POST", "/v1/completions", body: Array(#"{"prompt": ""#.utf8) + [0xFF, 0xFE] + Array(#""}"#.utf8)),
                        400, "not valid UTF-8")
        let cases: [([String: Any], String, String)] = [
            (["prompt": "Oz", "temperature": 9], "temperature", "must be in 0...2, got 9"),
            (["prompt": "Oz", "temperature": -0.5], "temperature", "must be in 0...2"),
            (["prompt": "Oz", "temperature": "hot"], "temperature", "must be a number, got a string"),
            (["prompt": "Oz", "top_p": 0], "top_p", "(0, 1]"),
            (["prompt": "Oz", "top_p": 1.5], "top_p", "must be in"),
            (["prompt": "Oz", "max_tokens": 0], "max_tokens", "must be in 1..."),
            (["prompt": "Oz", "max_tokens": 1.5], "max_tokens", "must be an integer"),
            (["prompt": "Oz", "max_tokens": 1023], "max_tokens", "exceed the context of 1024 tokens"),
            (["prompt": Array(repeating: 5, count: 1024)], "prompt", "the context holds 1024"),
            (["prompt": 5], "prompt", "must be a string or an array of token ids"),
            (["prompt": [1, -2]], "prompt", "token ids in 0..<"),
            (["max_tokens": 3], "prompt", "`prompt` is required"),
            (["prompt": "Oz", "stream": "yes"], "stream", "must be a boolean"),
            (["prompt": "Oz", "stop": ["a", "b", "c", "d", "e"]], "stop", "at most 4"),
            (["prompt": "Oz", "stop": 3], "stop", "string or an array"),
            (["prompt": "Oz", "n": 2], "n", "`n` must be 1"),
            (["prompt": "Oz", "logprobs": 21], "logprobs", "must be in 0...20"),
            (["prompt": "Oz", "echo": true], "echo", "not supported"),
            (["prompt": "Oz \u{263A}"], "", "cannot read the text"),  // a character the char model never saw
        ]
        for (body, param, phrase) in cases {
            try assertError(try http.post("/v1/completions", json: body), 400, phrase, param: param.isEmpty ? nil : param)
        }
        let chatCases: [([String: Any], String, String)] = [
            (["messages": []], "messages", "non-empty array"),
            (["messages": [["role": "user"]]], "messages", "`content`"),
            (["messages": [["role": "wizard", "content": "hi"]]], "messages", "`role`"),
            (["messages": [["role": "user", "content": "hi"]], "top_logprobs": 2], "top_logprobs", "needs `logprobs: true`"),
            (["messages": [["role": "user", "content": "hi"]], "temperature": 2.5], "temperature", "must be in 0...2"),
        ]
        for (body, param, phrase) in chatCases {
            try assertError(try http.post("/v1/chat/completions", json: body), 400, phrase, param: param)
        }
        XCTAssertEqual(try http.request("GET", "/health").status, 200, "the server lives on")
    }

    func testNotFoundMethodAndTooLarge() throws {
        let http = try server()
        try assertError(try http.post("/v1/completions", json: ["model": "gpt-9", "prompt": "Oz"]), 404, "gpt-9", param: "model")
        try assertError(try http.post("/v1/chat/completions", json: ["model": "gpt-9", "messages": [["role": "user", "content": "hi"]]]),
                        404, "does not exist", param: "model")
        try assertError(try http.request("GET", "/v1/models/gpt-9"), 404, "does not exist")
        try assertError(try http.request("GET", "/v1/embeddings"), 404, "no such endpoint")
        let wrong = try http.request("GET", "/v1/completions")
        try assertError(wrong, 405, "takes POST")
        XCTAssertEqual(wrong.headers["allow"], "POST")
        try assertError(try http.request("DELETE", "/v1/models"), 405, "takes GET")
        // Refused by Content-Length before any of the body is read…
        let declared = HTTPTestClient.encode("POST", "/v1/completions", headers: ["Content-Length": "2000000"], body: Array("{}".utf8))
        try assertError(try http.send(raw: declared), 413, "larger than 1048576 bytes")
        // … or while a chunked body streams in.
        var chunked = HTTPTestClient.encode("POST", "/v1/completions", headers: ["Transfer-Encoding": "chunked"])
        let piece = [UInt8](repeating: 0x20, count: 65536)
        for _ in 0..<17 { chunked += Array("10000\r\n".utf8) + piece + Array("\r\n".utf8) }
        chunked += Array("0\r\n\r\n".utf8)
        try assertError(try http.send(raw: chunked), 413, "larger than")
        XCTAssertEqual(try http.request("GET", "/health").status, 200)
    }

    func testAPIKey() throws {
        let http = try ownServer(["--checkpoint", try Self.model(), "--api-key", "sesame"])
        try assertError(try http.request("GET", "/v1/models"), 401, "API key is required")
        let wrong = try http.request("GET", "/v1/models", headers: ["Authorization": "Bearer open"])
        try assertError(wrong, 401, "wrong")
        XCTAssertEqual(wrong.headers["www-authenticate"], "Bearer")
        try assertError(try http.post("/v1/completions", json: ["prompt": "Oz"]), 401, "API key")
        XCTAssertEqual(try http.request("GET", "/v1/models", headers: ["Authorization": "Bearer sesame"]).status, 200)
        let ok = try http.post("/v1/completions", json: ["prompt": "Oz", "max_tokens": 2], headers: ["Authorization": "Bearer sesame"])
        XCTAssertEqual(ok.status, 200, ok.text)
        XCTAssertEqual(try http.request("GET", "/health").status, 200, "health needs no key")
        XCTAssertEqual(try http.request("GET", "/").status, 200, "the page needs no key (it asks for one)")
    }

    /// A client that leaves mid-stream frees its slot: with one slot, the next requests are
    /// served (they would wait forever in the queue otherwise), and the abandoned generation
    /// stopped early.
    func testClientDisconnectMidStream() throws {
        let http = try ownServer(["--checkpoint", try Self.model(), "--max-batch", "1", "--max-queue", "4"])
        let fd = try http.connect()
        HTTPTestClient.send(fd, HTTPTestClient.encode("POST", "/v1/completions", body: Array(
            #"{"prompt": "Oz", "max_tokens": 1000, "temperature": 0, "stream": true}"#.utf8)))
        var got: [UInt8] = [], buf = [UInt8](repeating: 0, count: 4096)
        while !String(decoding: got, as: UTF8.self).contains("data: ") {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            got += buf[..<n]
        }
        XCTAssertTrue(String(decoding: got, as: UTF8.self).contains("200 OK"))
        close(fd)
        // The slot comes back: wait until nothing is active.
        func gauge(_ name: String) throws -> Int {
            let text = try http.request("GET", "/metrics").text
            let line = try XCTUnwrap(text.split(separator: "\n").first { $0.hasPrefix(name + " ") })
            return Int(Double(line.split(separator: " ").last!)!)
        }
        let deadline = Date().addingTimeInterval(30)
        while try gauge("emerald_active_sequences") > 0 && Date() < deadline { usleep(20_000) }
        XCTAssertEqual(try gauge("emerald_active_sequences"), 0)
        XCTAssertLessThan(try gauge("emerald_generated_tokens_total"), 1000, "the abandoned generation should stop early")
        for _ in 0..<3 {
            let r = try http.post("/v1/completions", json: ["prompt": "Oz", "max_tokens": 3])
            XCTAssertEqual(r.status, 200, r.text)
        }
    }

    /// A request whose body stalls is cut off after --request-timeout.
    func testStalledRequestTimesOut() throws {
        let http = try ownServer(["--checkpoint", try Self.model(), "--request-timeout", "1"])
        let fd = try http.connect()
        defer { close(fd) }
        let start = Date()
        HTTPTestClient.send(fd, Array("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"prompt\"".utf8))
        _ = HTTPTestClient.readAll(fd)  // returns when the server closes
        XCTAssertLessThan(Date().timeIntervalSince(start), 10)
        XCTAssertEqual(try http.request("GET", "/health").status, 200)
    }

    func testBadFlags() throws {
        let dir = TestSupport.tempDir("serveflags")
        for (args, phrase) in [(["--port", "70000"], "--port must be in 0...65535"), (["--max-batch", "0"], "--max-batch must be in"),
                               (["--ctx", "1"], "--ctx must be at least 2"), ([String](), "pass either --model")] {
            let r = try EmeraldExecutable.run(["serve"] + args, in: dir)
            EmeraldExecutable.assertCleanFailure(r, "serve \(args)", phrase)
        }
        let r = try EmeraldExecutable.run(["serve", "--checkpoint", try Self.model(), "--ctx", "2048", "--port", "0"], in: dir)
        EmeraldExecutable.assertCleanFailure(r, "serve --ctx 2048", "longer than the model's context")
        let bigram = try EmeraldExecutable.run(["train", "--model", "bigram", "--data", TestSupport.bookPath, "--steps", "2",
                                                "--eval-iters", "1", "--out", "bigram", "--progress", "none"], in: dir)
        XCTAssertEqual(bigram.status, 0, bigram.stderr)
        EmeraldExecutable.assertCleanFailure(try EmeraldExecutable.run(["serve", "--checkpoint", "bigram", "--port", "0"], in: dir),
                                             "serve a bigram", "serve needs a model with a context")
    }
}
