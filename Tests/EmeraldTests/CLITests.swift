import Emerald
import Foundation
import XCTest

/// Runs the built `emerald` executable: bad input fails with one helpful line, tiny runs work end to end.
final class CLITests: XCTestCase {
    struct Result {
        var status: Int32
        var reason: Process.TerminationReason
        var stdout: String
        var stderr: String
    }

    private var work = ""

    override func setUpWithError() throws {
        guard EmeraldExecutable.path != nil else {
            throw XCTSkip("no emerald executable next to the test bundle (\(Bundle.main.bundleURL.path)); build with --build-tests")
        }
        work = TestSupport.tempDir("cli")
    }

    override func tearDown() {
        if !work.isEmpty { try? FileManager.default.removeItem(atPath: work) }
    }

    /// Runs `emerald args…` in the work folder, feeding `stdin`, with a time limit.
    @discardableResult
    private func emerald(_ args: [String], stdin: String? = nil, timeout: TimeInterval = 60) throws -> Result {
        let r = try EmeraldExecutable.run(args, in: work, stdin: Array((stdin ?? "").utf8), timeout: timeout)
        return Result(status: r.status, reason: r.reason, stdout: String(decoding: r.stdout, as: UTF8.self), stderr: r.stderr)
    }

    /// Asserts a clean failure: non-zero exit, no signal, exactly one non-empty stderr line containing `phrase`.
    private func expectFailure(_ args: [String], _ phrase: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try EmeraldExecutable.run(args, in: work)
        EmeraldExecutable.assertCleanFailure(r, "emerald " + args.joined(separator: " "), phrase, file: file, line: line)
    }

    private func assertNoCrashText(_ r: Result, _ cmd: String, file: StaticString = #filePath, line: UInt = #line) {
        for bad in ["Fatal error", "Stack dump", "Backtrace", "backtrace", "Crash", "Illegal instruction", "Segmentation"] {
            XCTAssertFalse(r.stderr.contains(bad), "\(cmd): \(r.stderr)", file: file, line: line)
        }
    }

    /// A text file in the work folder (no ">" in it, so chat output splits cleanly on prompts).
    @discardableResult
    private func file(_ name: String, _ bytes: [UInt8]) -> String {
        let path = work + "/" + name
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        return path
    }

    private var smallText: String {
        String(repeating: "Dorothy met the Wizard of Oz, and the Scarecrow sang a song.\r\nThe lion roared; Toto barked!\n", count: 20)
    }

    // MARK: - Bad input

    func testTrainRejectsBadData() throws {
        try expectFailure(["train", "--model", "bigram", "--data", "missing.txt"], "no such file or folder: missing.txt")
        file("empty.txt", [])
        try expectFailure(["train", "--model", "bigram", "--data", "empty.txt"], "empty.txt is empty")
        file("bad.txt", Array("ab".utf8) + [0xFF] + Array("cd".utf8))
        try expectFailure(["train", "--model", "bigram", "--data", "bad.txt"], "not valid UTF-8 (first bad byte at offset 2)")
        try expectFailure(["train", "--model", "bigram", "--data", "."], "is a folder")
    }

    func testTrainRejectsBadOptions() throws {
        file("small.txt", Array(smallText.utf8))
        let base = ["train", "--data", "small.txt", "--threads", "1"]
        try expectFailure(base + ["--model", "bigram", "--block-size", "100000"], "block size 100000 needs more than 100000 tokens")
        try expectFailure(base + ["--model", "bigram", "--steps", "0"], "--steps must be positive")
        try expectFailure(base + ["--model", "bigram", "--batch-size", "0"], "--batch-size must be in 1...1073741824, got 0")
        try expectFailure(base + ["--model", "bigram", "--lr=-1"], "--lr must be in (0, 10)")
        try expectFailure(base + ["--model", "bigram", "--eval-iters", "0"], "--eval-iters must be in 1...1048576, got 0")
        try expectFailure(base + ["--model", "bigram", "--n-layer", "2"], "do not apply to --model bigram")
        try expectFailure(base + ["--model", "gpt", "--preset", "nope"], "unknown preset \"nope\"")
        try expectFailure(base + ["--model", "gpt", "--n-embd", "30", "--n-head", "4"], "--n-embd 30 is not divisible by --n-head 4")
        try expectFailure(base + ["--model", "gpt", "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "4000"],
                          "block size 4000 needs more than 4000 tokens")
        try expectFailure(base + ["--model", "gpt", "--activation", "swish"], "'swish' is invalid for '--activation <activation>'. Please provide one of 'gelu'")
        try expectFailure(base + ["--model", "transformer"], "'transformer' is invalid for '--model <model>'")
        try expectFailure(["train", "--data", "small.txt", "--model", "bigram", "--threads", "0"], "--threads must be in 1...256")
        try expectFailure(base + ["--model", "bigram", "--shards=0"], "--shards must be positive, got 0")
        XCTAssertFalse(FileManager.default.fileExists(atPath: work + "/runs"), "failed runs write nothing")
    }

    /// `bench memory`: one JSON line per thread count with a positive bandwidth; bad sizes fail cleanly.
    func testBenchMemory() throws {
        let r = try emerald(["bench", "memory", "--threads", "1", "--megabytes", "64", "--iterations", "1", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let line = try XCTUnwrap(r.stdout.split(separator: "\n").first)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual(object["threads"] as? Int, 1)
        XCTAssertGreaterThan(try XCTUnwrap(object["read_gb_per_s"] as? Double), 0.1)
        try expectFailure(["bench", "memory", "--megabytes", "1"], "--megabytes must be in 64...65536, got 1")
        try expectFailure(["bench", "train", "--preset", "oz", "--shards=0"], "--shards must be positive, got 0")
    }

    /// `bench gemm --json`: one line per case with its GFLOP/s and the FMA peak probed after
    /// every run; the product cannot beat the peak by much (timer noise) and is not near zero.
    func testBenchGEMMReportsPairedPeak() throws {
        let r = try emerald(["bench", "gemm", "--threads", "1", "--iterations", "3", "--shapes", "64,64,64", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 3, "NN, NT and TN")
        for line in lines {
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let gflops = try XCTUnwrap(object["gflops"] as? Double), peak = try XCTUnwrap(object["peak_gflops"] as? Double)
            XCTAssertGreaterThan(peak, 1)
            XCTAssertGreaterThan(gflops, 0.01 * peak)
            XCTAssertLessThan(gflops, 1.5 * peak)
            XCTAssertEqual(try XCTUnwrap(object["fraction_of_peak"] as? Double), gflops / peak, accuracy: 0.01)
        }
        try expectFailure(["bench", "gemm", "--shapes", "64,64"], "--shapes wants M,N,K triples")
    }

    /// `bench train --gemm-profile --json`: the timed steps' products by shape; the LM head's
    /// x·wteᵀ (tokens × vocab × width) runs once per step, its two gradients once each.
    func testBenchTrainGEMMProfile() throws {
        let r = try emerald(["bench", "train", "--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--vocab-size", "50",
                             "--block-size", "16", "--batch-size", "2", "--steps", "3", "--warmup", "1", "--threads", "1",
                             "--gemm-profile", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let profile = try XCTUnwrap(object["gemm_profile"] as? [[String: Any]])
        func calls(_ m: Int, _ n: Int, _ k: Int, _ op: String) -> Double? {
            profile.first { $0["m"] as? Int == m && $0["n"] as? Int == n && $0["k"] as? Int == k && $0["op"] as? String == op }?["calls_per_step"] as? Double
        }
        XCTAssertEqual(calls(32, 50, 32, "NT"), 1, "logits = x·wteᵀ")
        XCTAssertEqual(calls(32, 32, 50, "NN"), 1, "dx = dlogits·wte")
        XCTAssertEqual(calls(50, 32, 32, "TN"), 1, "dwte = dlogitsᵀ·x")
        XCTAssertTrue(profile.allSatisfy { ($0["gflops"] as? Double ?? 0) > 0 })
    }

    /// `bench gemm --versus`: the current rules and other ones, run by run alternately; an
    /// unknown name fails cleanly.
    func testBenchGEMMVersus() throws {
        let r = try emerald(["bench", "gemm", "--shapes", "32,32,16", "--threads", "1", "--iterations", "3",
                             "--versus", "static-skinny", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.split(separator: "\n")[0].utf8)) as? [String: Any])
        XCTAssertEqual(object["variant"] as? String, "static-skinny")
        XCTAssertGreaterThan(try XCTUnwrap(object["gflops"] as? Double), 0)
        XCTAssertGreaterThan(try XCTUnwrap(object["variant_gflops"] as? Double), 0)
        try expectFailure(["bench", "gemm", "--versus", "faster"], "--versus takes pack-a")
    }

    func testArgumentParserErrorsDoNotCrash() throws {
        for args in [["train", "--steps", "many"], ["sample"], ["frobnicate"], ["train", "--no-such-flag"]] {
            let r = try emerald(args)
            let cmd = "emerald " + args.joined(separator: " ")
            XCTAssertEqual(r.reason, .exit, cmd)
            XCTAssertNotEqual(r.status, 0, cmd)
            XCTAssertTrue(r.stderr.contains("Error:") || r.stderr.contains("error:"), "\(cmd): \(r.stderr)")
            assertNoCrashText(r, cmd)
        }
    }

    // MARK: - Happy paths and checkpoint errors

    func testBigramTrainSampleAndBadCheckpoints() throws {
        file("small.txt", Array(smallText.utf8))
        let run = try emerald(["train", "--model", "bigram", "--data", "small.txt", "--steps", "30", "--eval-interval", "10",
                               "--eval-iters", "2", "--out", "run", "--threads", "1"])
        XCTAssertEqual(run.status, 0, run.stderr)
        assertNoCrashText(run, "train")
        XCTAssertTrue(run.stdout.contains("step 30/30"), run.stdout)
        let dir = work + "/run"
        let metrics = try XCTUnwrap(FileManager.default.contents(atPath: dir + "/metrics.jsonl"))
        let lines = String(decoding: metrics, as: UTF8.self).split(separator: "\n")
        XCTAssertEqual(lines.count, 4, "evaluations at steps 0, 10, 20, 30")
        var steps: [Int] = []
        for l in lines {
            let o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any], String(l))
            for key in ["step", "train_loss", "val_loss", "tokens_per_s"] { XCTAssertNotNil(o[key], "\(key) in \(l)") }
            steps.append(try XCTUnwrap(o["step"] as? Int))
            let loss = try XCTUnwrap(o["val_loss"] as? Double)
            XCTAssertTrue(loss.isFinite && loss > 0, "\(l)")
        }
        XCTAssertEqual(steps, [0, 10, 20, 30])
        let svg = try XCTUnwrap(FileManager.default.contents(atPath: dir + "/loss.svg"))
        XCTAssertTrue(String(decoding: svg, as: UTF8.self).contains("<svg"))
        for sub in ["best", "checkpoint"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/\(sub)/model.safetensors"), sub)
        }
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: dir)),
                       ["train.json", "metrics.jsonl", "train_loss.jsonl", "loss.svg", "best", "checkpoint", ".emerald"], "no .tmp/.old leftovers")

        // Sampling is reproducible for a seed.
        let sampleArgs = ["sample", "--checkpoint", "run", "--max-new-tokens", "20", "--seed", "1"]
        let s1 = try emerald(sampleArgs), s2 = try emerald(sampleArgs)
        XCTAssertEqual(s1.status, 0, s1.stderr)
        XCTAssertEqual(s1.stdout, s2.stdout)
        XCTAssertEqual(s1.stdout.unicodeScalars.count, 1 + 20 + 1, "prompt newline, 20 tokens, final newline: \(s1.stdout.debugDescription)")
        let s3 = try emerald(["sample", "--checkpoint", "run/checkpoint", "--max-new-tokens", "5", "--prompt", "Oz", "--temperature", "0"])
        XCTAssertEqual(s3.status, 0, s3.stderr)
        XCTAssertTrue(s3.stdout.hasPrefix("Oz"), s3.stdout)
        let s4 = try emerald(sampleArgs + ["--dtype", "bf16"])
        XCTAssertEqual(s4.status, 0, s4.stderr)
        XCTAssertEqual(s4.stdout.unicodeScalars.count, 1 + 20 + 1, s4.stdout.debugDescription)
        let s5 = try emerald(sampleArgs + ["--dtype", "int8"])
        XCTAssertEqual(s5.status, 0, s5.stderr)
        try expectFailure(sampleArgs + ["--dtype", "fp16"], "The value 'fp16' is invalid for '--dtype <dtype>'. Please provide one of 'fp32', 'bf16' or 'int8'.")

        // Bad sampling options and prompts.
        try expectFailure(["sample", "--checkpoint", "run", "--prompt", "Dorothy 🦁"], "'🦁' is not in the model's vocabulary")
        try expectFailure(["sample", "--checkpoint", "run", "--prompt", "xyz"], "'x' is not in the model's vocabulary")
        try expectFailure(["sample", "--checkpoint", "run", "--temperature=-1"], "--temperature must be ≥ 0")
        try expectFailure(["sample", "--checkpoint", "run", "--top-p", "2"], "--top-p must be in (0, 1]")
        try expectFailure(["sample", "--checkpoint", "run", "--top-k", "0"], "--top-k must be positive")
        try expectFailure(["sample", "--checkpoint", "run", "--max-new-tokens=-5"], "--max-new-tokens must not be negative")
        try expectFailure(["sample", "--checkpoint", "run", "--prompt", ""], "--prompt must not be empty")
        try expectFailure(["score", "--checkpoint", "run", "--text", "Oz and", "--dtype", "bf16"], "--dtype bf16 scores models that decode with a KV cache")

        // Resuming a bigram run as a GPT, or on other data, contradicts the run.
        try expectFailure(["train", "--resume", "run", "--model", "gpt"], "--model gpt contradicts the run in run, a bigram run; drop --model")
        file("other.txt", Array(String(repeating: "Quixote?\n", count: 50).utf8))
        try expectFailure(["train", "--resume", "run", "--data", "other.txt"], "--data other.txt contradicts the run in run, which trains on ")
        // Once the run's corpus is gone, another file may be named; the vocabulary must fit.
        try FileManager.default.moveItem(atPath: work + "/small.txt", toPath: work + "/moved.txt")
        try expectFailure(["train", "--resume", "run", "--data", "other.txt"], "is not in the model's vocabulary")
        try FileManager.default.moveItem(atPath: work + "/moved.txt", toPath: work + "/small.txt")

        // Damaged checkpoints.
        try expectFailure(["sample", "--checkpoint", "nowhere"], "no such file or folder: nowhere")
        let fm = FileManager.default
        try fm.copyItem(atPath: dir + "/best", toPath: work + "/garbage")
        try Data("}{ garbage".utf8).write(to: URL(fileURLWithPath: work + "/garbage/config.json"))
        try expectFailure(["sample", "--checkpoint", "garbage"], "garbage/config.json is unusable: not a JSON object")
        try fm.copyItem(atPath: dir + "/best", toPath: work + "/truncated")
        let w = try XCTUnwrap(fm.contents(atPath: work + "/truncated/model.safetensors"))
        try w.prefix(w.count - 7).write(to: URL(fileURLWithPath: work + "/truncated/model.safetensors"))
        try expectFailure(["sample", "--checkpoint", "truncated"], "model.safetensors is unusable")
        try fm.createDirectory(atPath: work + "/hollow", withIntermediateDirectories: true)
        try expectFailure(["sample", "--checkpoint", "hollow"], "no config.json inside")
        try expectFailure(["chat", "--checkpoint", "truncated"], "model.safetensors is unusable")
    }

    func testTinyGPTTrainAndChat() throws {
        file("small.txt", Array(smallText.utf8))
        let run = try emerald(["train", "--model", "gpt", "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16",
                               "--steps", "4", "--eval-interval", "2", "--eval-iters", "1", "--batch-size", "2",
                               "--data", "small.txt", "--out", "gpt", "--threads", "1"])
        XCTAssertEqual(run.status, 0, run.stderr)
        assertNoCrashText(run, "train gpt")
        let metrics = try XCTUnwrap(FileManager.default.contents(atPath: work + "/gpt/metrics.jsonl"))
        XCTAssertEqual(String(decoding: metrics, as: UTF8.self).split(separator: "\n").count, 3, "steps 0, 2, 4")
        let ckpt = try Checkpoint.load(from: work + "/gpt/checkpoint")
        guard let cfg = ckpt.model.config.as(GPTConfig.self) else { return XCTFail("\(ckpt.model.config)") }
        XCTAssertEqual([cfg.nLayer, cfg.nHead, cfg.nEmbd, cfg.blockSize], [1, 2, 16, 16])
        XCTAssertEqual(ckpt.state?.step, 4)
        XCTAssertEqual(ckpt.moments?.step, 4)

        // A prompt longer than the position table is refused; generation past it slides.
        let letters = String(smallText.filter { $0.isLetter }.prefix(1))
        try expectFailure(["sample", "--checkpoint", "gpt", "--prompt", String(repeating: letters, count: 17)], "context")
        let long = try emerald(["sample", "--checkpoint", "gpt", "--prompt", String(repeating: letters, count: 16),
                                "--max-new-tokens", "20"])
        XCTAssertEqual(long.status, 0, long.stderr)

        // Scoring with bf16 decode weights (token by token) moves the loss only by rounding.
        func score(_ extra: [String]) throws -> [Float] {
            let r = try emerald(["score", "--checkpoint", "gpt", "--text", String(smallText.prefix(12)), "--json"] + extra)
            XCTAssertEqual(r.status, 0, r.stderr)
            let o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            return try XCTUnwrap(o["per_token_loss"] as? [Double]).map { Float($0) }
        }
        let fp32 = try score([])
        for dtype in ["bf16", "int8"] {
            let copied = try score(["--dtype", dtype])
            XCTAssertEqual(fp32.count, copied.count)
            XCTAssertNotEqual(fp32, copied, "\(dtype) copies are read")
            for (a, b) in zip(fp32, copied) { XCTAssertEqual(a, b, accuracy: 0.05, dtype) }
        }

        // Two prompts, then EOF: two answers, each after a "> " prompt, then a last prompt and a clean exit.
        let chat = try emerald(["chat", "--checkpoint", "gpt", "--max-new-tokens", "8", "--seed", "3"],
                               stdin: "Dorothy\n\nthe lion\n")
        XCTAssertEqual(chat.status, 0, chat.stderr)
        XCTAssertEqual(chat.reason, .exit)
        assertNoCrashText(chat, "chat")
        let parts = chat.stdout.components(separatedBy: "> ")
        XCTAssertEqual(parts.count, 5, "prompts: first, first again after the empty line, second, final: \(chat.stdout.debugDescription)")
        XCTAssertEqual(parts.first, "")
        let answers = parts.dropFirst().filter { $0 != "\n" && !$0.isEmpty }
        XCTAssertEqual(answers.count, 2, chat.stdout.debugDescription)
        for a in answers {
            XCTAssertTrue(a.hasSuffix("\n"))
            XCTAssertEqual(a.unicodeScalars.count, 8 + 1, a.debugDescription)
        }
        XCTAssertEqual(parts.last, "\n")

        // An unknown character in one prompt is reported and the chat goes on.
        let chat2 = try emerald(["chat", "--checkpoint", "gpt", "--max-new-tokens", "4"], stdin: "Oz 🦁\nOz\n")
        XCTAssertEqual(chat2.status, 0, chat2.stderr)
        XCTAssertTrue(chat2.stderr.contains("'🦁' is not in the model's vocabulary"), chat2.stderr)
        XCTAssertEqual(chat2.stdout.components(separatedBy: "> ").count, 4, chat2.stdout.debugDescription)
        try expectFailure(["chat", "--checkpoint", "gpt", "--max-new-tokens", "0"], "--max-new-tokens must be positive")

        // Resuming the finished run with more steps continues from step 4.
        let more = try emerald(["train", "--model", "gpt", "--resume", "gpt", "--data", "small.txt", "--steps", "6",
                                "--eval-interval", "2", "--eval-iters", "1", "--batch-size", "2", "--threads", "1"])
        XCTAssertEqual(more.status, 0, more.stderr)
        XCTAssertTrue(more.stdout.contains("resumed at step 4 of 6 (was 4)"), more.stdout)
        XCTAssertEqual(try Checkpoint.load(from: work + "/gpt/checkpoint").state?.step, 6)
        let lines = String(decoding: FileManager.default.contents(atPath: work + "/gpt/metrics.jsonl") ?? Data(), as: UTF8.self)
            .split(separator: "\n")
        XCTAssertEqual(lines.count, 4, "steps 0, 2, 4, 6: \(lines)")
    }
}
