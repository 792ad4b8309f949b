import Emerald
import Foundation
import XCTest

/// Paths and small builders shared by the tests.
enum TestSupport {
    /// The repository root (tests live in Tests/EmeraldTests).
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The guide's book as shipped in the repository (assets/, compiled into the binary too).
    static var bookPath: String { repoRoot.appendingPathComponent("assets/wizard_of_oz.txt").path }

    /// GPT-2's encoder.json and vocab.bpe as shipped in the repository.
    static var gpt2Dir: String { repoRoot.appendingPathComponent("assets/gpt2").path }

    /// A fresh temporary folder, inside one folder per test process that is removed when
    /// the process exits.
    static func tempDir(_ name: String = #function) -> String {
        let d = tempRoot + "/\(name.filter(\.isLetter))-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    private static let tempRoot: String = {
        let root = NSTemporaryDirectory() + "emerald-tests-\(getpid())"
        atexit { try? FileManager.default.removeItem(atPath: TestSupport.tempRoot) }
        return root
    }()

    /// A tiny GPT config for fast tests.
    static func tinyGPT(vocab: Int = 11, block: Int = 16, norm: NormPlacement = .pre, tie: Bool = true,
                        dropout: Float = 0, activation: Activation = .gelu) -> GPTConfig {
        GPTConfig(vocabSize: vocab, blockSize: block, nLayer: 2, nHead: 2, nEmbd: 16, dropout: dropout,
                  activation: activation, norm: norm, tieWeights: tie)
    }

    /// Deterministic pseudo-text ids.
    static func ids(_ n: Int, vocab: Int, seed: UInt64 = 7) -> [Int32] {
        var rng = RandomGenerator(seed: seed)
        return (0..<n).map { _ in Int32(rng.nextInt(below: vocab)) }
    }

    /// max |a − b|.
    static func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        return zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }

    /// ‖a − b‖ / ‖b‖ in double precision (‖a − b‖ when b is zero).
    static func relativeError(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count)
        var num = 0.0, den = 0.0
        for (x, y) in zip(a, b) {
            let d = Double(x) - Double(y)
            num += d * d; den += Double(y) * Double(y)
        }
        return den == 0 ? num.squareRoot() : (num / den).squareRoot()
    }
}

/// The built `emerald` executable, run as a child process by the CLI tests.
enum EmeraldExecutable {
    /// The binary beside the test bundle (`.build/<config>/emerald`), if built.
    static let path: String? = {
        var dirs: [URL] = [Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent(),
                           URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()]
        if let p = Bundle.main.executableURL { dirs.append(p.deletingLastPathComponent()) }
        for d in dirs {
            let path = d.appendingPathComponent("emerald").path
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue,
               FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }()

    /// What a run left behind.
    struct Output {
        var status: Int32
        var reason: Process.TerminationReason
        var stdout: [UInt8]
        var stderr: String
    }

    /// Runs `emerald args…` in `directory`, feeding `stdin`, killed after `timeout` seconds
    /// (a test failure). Output goes through files, so large outputs cannot block on a pipe.
    static func run(_ args: [String], in directory: String, stdin: [UInt8] = [], timeout: TimeInterval = 60,
                    environment: [String: String] = [:]) throws -> Output {
        // Tests never download: hub ids fail fast with the offline message.
        let child = try Child(path!, args, in: directory, stdin: stdin,
                              environment: ["HF_HUB_OFFLINE": "1"].merging(environment) { $1 })
        if !child.wait(timeout: timeout) {
            child.send(SIGKILL)
            child.wait(timeout: 10)
            XCTFail("emerald \(args.joined(separator: " ")) ran past \(timeout) s")
        }
        return child.output
    }
}

extension Child {
    /// What the exited child left behind, in the form the CLI assertions take.
    var output: EmeraldExecutable.Output {
        EmeraldExecutable.Output(status: exitStatus, reason: signaled ? .uncaughtSignal : .exit, stdout: stdout, stderr: stderr)
    }
}

extension EmeraldExecutable {
    /// Asserts a clean failure: exit ≠ 0 (no signal) and exactly one stderr line, starting
    /// "error: " and containing `phrase`, with no crash text.
    static func assertCleanFailure(_ r: Output, _ cmd: String, _ phrase: String,
                                   file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.reason, .exit, "\(cmd) died from signal \(r.status)", file: file, line: line)
        XCTAssertNotEqual(r.status, 0, "\(cmd) should fail", file: file, line: line)
        let lines = r.stderr.split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertEqual(lines.count, 2, "\(cmd): stderr should be one line, got:\n\(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.hasPrefix("error: "), "\(cmd): \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.contains(phrase), "\(cmd): stderr \(r.stderr.debugDescription) should mention \(phrase.debugDescription)",
                      file: file, line: line)
        for bad in ["Fatal error", "Stack dump", "Backtrace", "backtrace", "Crash", "Segmentation", "Illegal instruction"] {
            XCTAssertFalse(r.stderr.contains(bad), "\(cmd): \(r.stderr)", file: file, line: line)
        }
    }
}
