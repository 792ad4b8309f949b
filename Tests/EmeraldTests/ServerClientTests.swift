import Foundation
import XCTest

/// `emerald serve` from the outside, through the Python scripts in tests/server: the official
/// `openai` client (completions, chat, streaming, errors, determinism under concurrency), the
/// chat page in headless Chromium, 1,000 malformed requests, and 2 minutes of load with 32
/// streaming clients. Each is skipped, with the reason, when what it needs is missing:
/// .venv-server/ with `openai` and Debian's `chromium` come from scripts/setup when online;
/// all of them need 127.0.0.1.
final class ServerClientTests: XCTestCase {
    private var work = ""
    /// A tiny char-level model, trained once for all these tests.
    private static var model: String?

    override func setUpWithError() throws {
        XCTAssertNotNil(EmeraldExecutable.path, "build with --build-tests")
        guard Self.loopbackBinds() else { throw XCTSkip("cannot bind 127.0.0.1 (no loopback interface here)") }
        work = TestSupport.tempDir("serverclient")
    }

    override func tearDown() {
        if !work.isEmpty { try? FileManager.default.removeItem(atPath: work) }
    }

    private static let scripts = TestSupport.repoRoot.appendingPathComponent("tests/server").path
    private static let venvPython = TestSupport.repoRoot.appendingPathComponent(".venv-server/bin/python").path

    /// The official client against the server: models, completions, chat, streaming, 401/404/400
    /// as the client's own exception types; at temperature 0, 16 requests at once give the same
    /// tokens as one at a time and as `emerald sample`.
    func testOpenAIClient() throws {
        let python = try pythonWithOpenAI()
        try runScript("openai_client_test.py", [], python: python, timeout: 600)
    }

    /// The chat page in headless Chromium: controls present, a typed message sent with a click,
    /// the reply streamed into the page, a screenshot taken.
    func testChatPageInBrowser() throws {
        guard let chromium = Self.onPath(["chromium", "chromium-browser", "google-chrome"]) else {
            throw XCTSkip("no chromium: scripts/setup installs Debian's chromium when online")
        }
        let shot = work + "/serve-page.png"
        try runScript("browser_test.py", [shot], python: try plainPython(), timeout: 300, environment: ["PATH": Self.path(with: chromium)])
        let png = try XCTUnwrap(FileManager.default.contents(atPath: shot), "no screenshot written")
        XCTAssertEqual(Array(png.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "the screenshot is not a PNG")
    }

    /// 1,000 malformed requests over raw sockets, each answered with a 4xx or a closed
    /// connection; the server answers a normal completion the same way afterwards.
    func testMalformedRequests() throws {
        try runScript("robustness_test.py", ["--requests", "1000"], python: try plainPython(), timeout: 600)
    }

    /// 120 s of 32 streaming clients: no errors, the server's memory flat after warm-up.
    func testLoadForTwoMinutes() throws {
        try runScript("load_test.py", ["--duration", "120", "--clients", "32"], python: try plainPython(), timeout: 420)
    }

    // MARK: - Helpers

    /// Runs `tests/server/NAME args… --emerald BIN --checkpoint MODEL`; exit 0 passes, 77 skips
    /// (the script's line says why), anything else fails with the script's last lines.
    private func runScript(_ name: String, _ args: [String], python: String, timeout: TimeInterval,
                           environment: [String: String] = [:]) throws {
        let model = try Self.tinyModel()
        let child = try Child(python, [Self.scripts + "/" + name] + args + ["--emerald", EmeraldExecutable.path!, "--checkpoint", model],
                              in: work, environment: ["PYTHONDONTWRITEBYTECODE": "1", "HF_HUB_OFFLINE": "1"].merging(environment) { $1 })
        if !child.wait(timeout: timeout) {
            child.send(SIGTERM)
            if !child.wait(timeout: 20) { child.send(SIGKILL); child.wait(timeout: 10) }
            XCTFail("\(name) ran past \(Int(timeout)) s: \(Self.tail(child))")
            return
        }
        let out = String(decoding: child.stdout, as: UTF8.self)
        if child.exitStatus == 77 && !child.signaled {
            throw XCTSkip(out.split(separator: "\n").last.map(String.init) ?? "\(name) skipped")
        }
        XCTAssertEqual(child.exitStatus, 0, "\(name): \(Self.tail(child))")
        XCTAssertFalse(child.signaled, "\(name) died from signal \(child.exitStatus)")
        print(out, terminator: "")
    }

    private static func tail(_ child: Child) -> String {
        let text = child.stderr + String(decoding: child.stdout, as: UTF8.self)
        return text.split(separator: "\n").suffix(8).joined(separator: "\n")
    }

    /// Trains the shared tiny model (2 layers × 64, 30 steps, a few seconds) on first use.
    private static func tinyModel() throws -> String {
        if let model { return model }
        let dir = TestSupport.tempDir("servermodel")
        let r = try EmeraldExecutable.run(["train", "--data", TestSupport.bookPath, "--steps", "30", "--n-layer", "2", "--n-head", "2",
                                           "--n-embd", "64", "--block-size", "128", "--batch-size", "8", "--out", "tiny"],
                                          in: dir, timeout: 300)
        guard r.status == 0 else { throw NSError(domain: "train", code: Int(r.status), userInfo: [NSLocalizedDescriptionKey: r.stderr]) }
        model = dir + "/tiny"
        return model!
    }

    /// .venv-server's Python with `openai` importable; else the test is skipped.
    private func pythonWithOpenAI() throws -> String {
        guard FileManager.default.isExecutableFile(atPath: Self.venvPython) else {
            throw XCTSkip("no .venv-server/: scripts/setup makes it (with the openai package) when PyPI is reachable")
        }
        let probe = try Child(Self.venvPython, ["-c", "import openai"], in: work)
        guard probe.wait(timeout: 60), probe.exitStatus == 0 else {
            throw XCTSkip("openai is not importable from .venv-server/: rerun scripts/setup online")
        }
        return Self.venvPython
    }

    /// A Python 3.11+ for the scripts that need only the standard library: the venv's, else the system's.
    private func plainPython() throws -> String {
        if FileManager.default.isExecutableFile(atPath: Self.venvPython) { return Self.venvPython }
        guard let python = Self.onPath(["python3"]) else { throw XCTSkip("no python3 on PATH") }
        let probe = try Child(python, ["-c", "import sys; sys.exit(sys.version_info < (3, 11))"], in: work)
        guard probe.wait(timeout: 60), probe.exitStatus == 0 else { throw XCTSkip("\(python) is older than 3.11") }
        return python
    }

    /// The first of `names` found on PATH (and in the usual system folders).
    private static func onPath(_ names: [String]) -> String? {
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) + ["/usr/bin", "/usr/local/bin"]
        for name in names {
            for d in dirs where FileManager.default.isExecutableFile(atPath: d + "/" + name) { return d + "/" + name }
        }
        return nil
    }

    /// PATH with `executable`'s folder in it.
    private static func path(with executable: String) -> String {
        let dir = URL(fileURLWithPath: executable).deletingLastPathComponent().path
        return dir + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
    }

    /// Whether a TCP socket can be bound to 127.0.0.1.
    private static func loopbackBinds() -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return bound == 0 && listen(fd, 1) == 0
    }
}
