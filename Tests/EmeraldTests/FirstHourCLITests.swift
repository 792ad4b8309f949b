import Emerald
import Foundation
import XCTest

/// A newcomer's first hour, through the built binary: the shipped book, exact resume, progress,
/// prompts read like training text, perplexity, sampling options, help and mistakes.
final class FirstHourCLITests: XCTestCase {
    private var work = ""

    override func setUpWithError() throws {
        XCTAssertNotNil(EmeraldExecutable.path, "build with --build-tests")
        work = TestSupport.tempDir("firsthour")
    }

    override func tearDown() {
        if !work.isEmpty { try? FileManager.default.removeItem(atPath: work) }
    }

    private func emerald(_ args: [String], stdin: String = "", timeout: TimeInterval = 120) throws -> EmeraldExecutable.Output {
        let r = try EmeraldExecutable.run(args, in: work, stdin: Array(stdin.utf8), timeout: timeout)
        XCTAssertEqual(r.reason, .exit, "emerald \(args.joined(separator: " ")) died by a signal")
        return r
    }

    private func ok(_ args: [String], stdin: String = "", file: StaticString = #filePath, line: UInt = #line) throws -> (out: String, err: String) {
        let r = try emerald(args, stdin: stdin)
        XCTAssertEqual(r.status, 0, "emerald \(args.joined(separator: " ")): \(r.stderr)", file: file, line: line)
        return (String(decoding: r.stdout, as: UTF8.self), r.stderr)
    }

    private func fails(_ args: [String], _ phrase: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try EmeraldExecutable.run(args, in: work)
        EmeraldExecutable.assertCleanFailure(r, "emerald " + args.joined(separator: " "), phrase, file: file, line: line)
    }

    private func jsonLines(_ path: String) throws -> [[String: Any]] {
        let text = String(decoding: try XCTUnwrap(FileManager.default.contents(atPath: work + "/" + path), path), as: UTF8.self)
        return try text.split(separator: "\n").map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
    }

    /// A small GPT on the shipped book: 1 layer, 32 wide, context 32.
    private let tiny = ["--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "32", "--progress", "none"]

    // MARK: - The shipped book and exact resume

    func testTrainsOnTheShippedBookWithNoDataAndResumesExactlyAfterSIGKILL() throws {
        let flags = tiny + ["--steps", "60", "--eval-interval", "20", "--eval-iters", "2", "--batch-size", "8",
                            "--lr", "2e-3", "--dropout", "0.1", "--seed", "5", "--warmup-steps", "5"]
        let whole = try ok(["train", "--out", "whole"] + flags)
        XCTAssertTrue(whole.out.contains("the shipped book (assets/wizard_of_oz.txt): 232308 characters, vocabulary 80"), whole.out)
        XCTAssertTrue(whole.out.contains("step 60/60 | train"), whole.out)
        let settings = try XCTUnwrap(JSONSerialization.jsonObject(with: try XCTUnwrap(FileManager.default.contents(atPath: work + "/whole/train.json"))) as? [String: Any])
        XCTAssertNil(settings["data"], "the shipped book is no path")

        // The same run, killed with SIGKILL once its first checkpoint is on disk.
        let child = try Child(EmeraldExecutable.path!, ["train", "--out", "killed"] + flags, in: work,
                              environment: ["HF_HUB_OFFLINE": "1"])
        let state = work + "/killed/checkpoint/train_state.json"
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: state) && child.isRunning && Date() < deadline { usleep(1000) }
        child.send(SIGKILL)
        child.wait(timeout: 10)
        let killedAt = try Checkpoint.load(from: work + "/killed/checkpoint").state?.step ?? -1
        XCTAssertLessThan(killedAt, 60, "killed before the end (else the resume below has nothing to do)")
        let resumed = try ok(["train", "--resume", "killed", "--progress", "none"])
        XCTAssertTrue(resumed.out.contains("resumed at step \(killedAt) of 60"), resumed.out)

        let a = try jsonLines("whole/metrics.jsonl"), b = try jsonLines("killed/metrics.jsonl")
        XCTAssertEqual(a.map { $0["step"] as? Int }, [0, 20, 40, 60])
        XCTAssertEqual(b.map { $0["step"] as? Int }, [0, 20, 40, 60])
        for (x, y) in zip(a, b) {
            for key in ["train_loss", "val_loss", "lr", "grad_norm"] {
                XCTAssertEqual(x[key] as? Double, y[key] as? Double, "\(key) at step \(x["step"]!)")
            }
        }
        let elapsed = b.compactMap { $0["elapsed_s"] as? Double }
        XCTAssertEqual(elapsed, elapsed.sorted(), "elapsed time continues across the resume")
        XCTAssertEqual(try jsonLines("whole/train_loss.jsonl").map { $0["loss"] as? Double },
                       try jsonLines("killed/train_loss.jsonl").map { $0["loss"] as? Double })
        XCTAssertEqual(FileManager.default.contents(atPath: work + "/whole/checkpoint/model.safetensors"),
                       FileManager.default.contents(atPath: work + "/killed/checkpoint/model.safetensors"), "the same weights, bit for bit")

        // Flags that contradict the run are refused by name; --steps may move its end.
        try fails(["train", "--resume", "whole", "--lr", "0.1"],
                  "these flags contradict them: --lr 0.1 (the run has 0.002); drop them")
        try fails(["train", "--resume", "whole", "--n-layer", "3", "--dropout", "0.2"],
                  "--n-layer 3 (the run has 1), --dropout 0.2 (the run has 0.1)")
        try fails(["train", "--resume", "whole", "--preset", "baby"], "(--preset baby)")
        try fails(["train", "--resume", "whole", "--model", "bigram"], "--model bigram contradicts the run")
        try fails(["train", "--resume", "whole", "--steps", "60"], "--steps 60 is not beyond the run's step 60")
        try fails(["train", "--resume", "whole", "--out", "elsewhere"], "writes into its own folder")
        try fails(["train", "--resume", "whole", "--data", "nope.txt"], "contradicts the run in whole, which trains on the shipped book")
        let longer = try ok(["train", "--resume", "whole", "--steps", "80", "--progress", "none"])
        XCTAssertTrue(longer.out.contains("resumed at step 60 of 80 (was 60)"), longer.out)
        XCTAssertEqual(try jsonLines("whole/metrics.jsonl").last?["step"] as? Int, 80)

        // `eval` with no --data scores the book's validation tenth: the run's own val loss, exactly
        // when a window holds what training windows held (context 32, stride 32 → disjoint windows
        // differ from the trainer's, so compare loosely).
        let r = try ok(["eval", "--checkpoint", "whole/best", "--json"])
        let o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        XCTAssertEqual(o["tokens"] as? Int, 23_230, "every validation token but the first, once")
        XCTAssertEqual(o["window"] as? Int, 32)
        XCTAssertEqual(o["stride"] as? Int, 16)
        let val = try XCTUnwrap(try jsonLines("whole/metrics.jsonl").compactMap { $0["val_loss"] as? Double }.min())
        XCTAssertEqual(try XCTUnwrap(o["loss"] as? Double), val, accuracy: 0.1)
    }

    func testShortRunsWarmUpBrieflyAndShowTheirProgress() throws {
        _ = try ok(["train", "--out", "short", "--steps", "20", "--eval-interval", "10", "--eval-iters", "1", "--batch-size", "2"] + tiny)
        let settings = try XCTUnwrap(JSONSerialization.jsonObject(with: try XCTUnwrap(FileManager.default.contents(atPath: work + "/short/train.json"))) as? [String: Any])
        let train = try XCTUnwrap(settings["train"] as? [String: Any])
        XCTAssertEqual(train["warmup_steps"] as? Int, 2, "10% of a 20-step run, not the recipe's 100")
        _ = try ok(["train", "--out", "given", "--steps", "20", "--warmup-steps", "15", "--eval-interval", "10", "--eval-iters", "1",
                    "--batch-size", "2"] + tiny)
        let given = try XCTUnwrap(JSONSerialization.jsonObject(with: try XCTUnwrap(FileManager.default.contents(atPath: work + "/given/train.json"))) as? [String: Any])
        XCTAssertEqual((given["train"] as? [String: Any])?["warmup_steps"] as? Int, 15, "a warmup the user gives is kept")

        // Not a terminal: plain, aligned progress lines on stderr; the results on stdout.
        let args = ["train", "--out", "lines", "--steps", "12", "--eval-interval", "6", "--eval-iters", "1", "--batch-size", "2"]
            + tiny.dropLast(2) + ["--progress-interval", "0"]
        let r = try ok(args)
        let progress = r.err.split(separator: "\n").filter { $0.hasPrefix("step ") }
        XCTAssertEqual(progress.count, 12, r.err)
        XCTAssertEqual(Set(progress.map { $0.firstRange(of: "| loss")!.lowerBound.utf16Offset(in: $0) }).count, 1, "aligned: \(progress)")
        XCTAssertFalse(progress.contains { $0.contains("0 tok/s") && $0.hasPrefix("step  0") })
        XCTAssertFalse(r.out.contains("| loss "), "progress stays off stdout")
        let evals = r.out.split(separator: "\n").filter { $0.hasPrefix("step ") }
        XCTAssertEqual(evals.count, 3, r.out)
        XCTAssertTrue(evals[0].contains("— tok/s") && evals[0].hasSuffix("ETA —"), "step 0 has no rate yet: \(evals[0])")
        XCTAssertTrue(r.out.contains("best val loss"))
        // A bar, redrawn in place, when asked for (the default on a terminal).
        let bar = try ok(["train", "--out", "bar", "--steps", "4", "--eval-interval", "4", "--eval-iters", "1", "--batch-size", "2"]
                         + tiny.dropLast(2) + ["--progress", "bar"])
        XCTAssertTrue(bar.err.contains("\r\u{1B}[2K["), bar.err.debugDescription)
        XCTAssertTrue(bar.err.contains("4/4"), bar.err.debugDescription)
        // The plot: round ticks, an axis label, the finer training loss.
        let svg = String(decoding: try XCTUnwrap(FileManager.default.contents(atPath: work + "/short/loss.svg")), as: UTF8.self)
        XCTAssertTrue(svg.contains("loss (nats per token)") && svg.contains(">20</text>"), svg)
        XCTAssertEqual(try jsonLines("short/train_loss.jsonl").map { $0["step"] as? Int }, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20])
    }

    // MARK: - Prompts, sampling, scoring

    /// A char model on a text without carriage returns or BOMs.
    private func trainSmall() throws {
        let text = String(repeating: "Dorothy met the Wizard of Oz, and the Scarecrow sang a song.\nThe lion roared; Toto barked!\n", count: 20)
        XCTAssertTrue(FileManager.default.createFile(atPath: work + "/small.txt", contents: Data(text.utf8)))
        _ = try ok(["train", "--data", "small.txt", "--out", "m", "--steps", "4", "--eval-interval", "4", "--eval-iters", "1",
                    "--batch-size", "2", "--dropout", "0.1"] + tiny)
    }

    func testPromptsAreCleanedLikeTrainingTextAndScored() throws {
        try trainSmall()
        func score(_ text: String) throws -> [String: Any] {
            let r = try ok(["score", "--checkpoint", "m", "--text", text, "--json"])
            return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
        }
        let plain = try score("The lion roared;\nToto")
        let windows = try score("\u{FEFF}The lion roared;\r\nToto")
        XCTAssertEqual(plain["ids"] as? [Int], windows["ids"] as? [Int], "BOM dropped, CRLF read as LF")
        let loss = try XCTUnwrap(plain["loss"] as? Double)
        XCTAssertEqual(try XCTUnwrap(plain["perplexity"] as? Double), Foundation.exp(loss), accuracy: 1e-4 * Foundation.exp(loss))
        try fails(["score", "--checkpoint", "m", "--text", "Oz\u{200B}"], "character U+200B ZERO WIDTH SPACE is not in the model's vocabulary")
        try fails(["sample", "--checkpoint", "m", "--prompt", "Oz\tToto"], "character U+0009 CHARACTER TABULATION is not")
        try fails(["score", "--checkpoint", "m", "--text", String(repeating: "Oz ", count: 20)], "`emerald eval --data FILE` scores longer texts")

        // eval over a text no longer than the window equals score's loss.
        let short = "The lion roared; Toto barked!"
        XCTAssertTrue(FileManager.default.createFile(atPath: work + "/short.txt", contents: Data(short.utf8)))
        let e = try ok(["eval", "--checkpoint", "m", "--data", "short.txt", "--json"])
        let eo = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(e.out.utf8)) as? [String: Any])
        let s = try score(short)
        XCTAssertEqual(try XCTUnwrap(eo["loss"] as? Double), try XCTUnwrap(s["loss"] as? Double), accuracy: 1e-5)
        XCTAssertEqual(eo["tokens"] as? Int, short.count - 1)
        XCTAssertEqual(eo["windows"] as? Int, 1)
        // A longer file, windows sliding by 8: every token once.
        let e2 = try ok(["eval", "--checkpoint", "m", "--data", "small.txt", "--stride", "8", "--json"])
        let e2o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(e2.out.utf8)) as? [String: Any])
        XCTAssertEqual(e2o["tokens"] as? Int, 1819, "1,820 characters: every one but the first")
        XCTAssertEqual(e2o["windows"] as? Int, 1 + (1820 - 32 + 7) / 8)
        XCTAssertTrue(try ok(["eval", "--checkpoint", "m", "--data", "small.txt"]).out.contains("perplexity"))
        try fails(["eval", "--checkpoint", "m", "--data", "small.txt", "--window", "64"], "--window 64 exceeds the model's context of 32")
        try fails(["eval", "--checkpoint", "m", "--data", "small.txt", "--stride", "0"], "the stride must be in 1...32")
    }

    func testSampleOptions() throws {
        try trainSmall()
        XCTAssertTrue(FileManager.default.createFile(atPath: work + "/prompt.txt", contents: Data("\u{FEFF}The lion\r\n".utf8)))
        let fromFile = try ok(["sample", "--checkpoint", "m", "--prompt-file", "prompt.txt", "--max-new-tokens", "5", "--seed", "2"])
        let inline = try ok(["sample", "--checkpoint", "m", "--prompt", "The lion\n", "--max-new-tokens", "5", "--seed", "2"])
        XCTAssertEqual(fromFile.out, inline.out)
        XCTAssertTrue(fromFile.out.hasPrefix("The lion\n"), fromFile.out.debugDescription)
        let three = try ok(["sample", "--checkpoint", "m", "--prompt", "Oz", "--max-new-tokens", "12", "--num-samples", "3", "--verbose"])
        XCTAssertEqual(three.out.components(separatedBy: "--- sample ").count, 4, three.out)
        XCTAssertTrue(three.out.contains("--- sample 3 of 3 (seed 1339)"), three.out)
        let samples = three.out.components(separatedBy: "\n").filter { $0.hasPrefix("Oz") }
        XCTAssertEqual(samples.count, 3)
        XCTAssertGreaterThan(Set(samples).count, 1, "each sample has its own seed")
        XCTAssertTrue(three.err.contains("36 new tokens in") && three.err.contains("tokens/s"), three.err)
        let ids = try ok(["sample", "--checkpoint", "m", "--prompt-ids", "5,6", "--max-new-tokens", "3", "--print-ids", "--num-samples", "2"])
        XCTAssertEqual(ids.out.split(separator: "\n").count, 2, ids.out)
        try fails(["sample", "--checkpoint", "m", "--num-samples", "0"], "--num-samples must be in 1...10000")
        try fails(["sample", "--checkpoint", "m", "--prompt", "a", "--prompt-file", "prompt.txt"], "pass one of --prompt, --prompt-file or --prompt-ids")
        try fails(["sample", "--checkpoint", "m", "--prompt-file", "missing.txt"], "no such file or folder: missing.txt")

        // The Hugging Face export writes the decimals given, not float noise.
        _ = try ok(["convert", "m", "--to-hf", "hf"])
        let config = String(decoding: try XCTUnwrap(FileManager.default.contents(atPath: work + "/hf/config.json")), as: UTF8.self)
        XCTAssertTrue(config.contains("\"attn_pdrop\" : 0.1,"), config)
        XCTAssertTrue(config.contains("\"layer_norm_epsilon\" : 1e-05"), config)
        XCTAssertFalse(config.contains("0.100000001"), config)
    }

    func testChatKeepsTheConversationAndCtrlCStopsAnAnswer() throws {
        try trainSmall()
        let chat = ["chat", "--checkpoint", "m", "--max-new-tokens", "8", "--temperature", "0", "--verbose"]
        let r = try ok(chat, stdin: "Dorothy\nDorothy\n")
        let prompts = r.err.split(separator: "\n").map(String.init).filter { $0.contains("new tokens in") }
        XCTAssertEqual(prompts.count, 2, r.err)
        XCTAssertTrue(prompts[0].hasSuffix("(prompt 7 tokens)"), prompts[0])
        XCTAssertTrue(prompts[1].hasSuffix("(prompt 23 tokens)"), "7 + 8 answered + newline + 7: \(prompts[1])")
        let alone = try ok(chat + ["--no-context"], stdin: "Dorothy\nDorothy\n")
        XCTAssertEqual(alone.err.split(separator: "\n").filter { $0.hasSuffix("(prompt 7 tokens)") }.count, 2, alone.err)
        let reset = try ok(chat, stdin: "Dorothy\n/reset\nDorothy\n")
        XCTAssertEqual(reset.err.split(separator: "\n").filter { $0.hasSuffix("(prompt 7 tokens)") }.count, 2, reset.err)
        // The context never outgrows the model's window (32).
        let long = try ok(chat, stdin: "Dorothy\nDorothy\nDorothy\nDorothy\n")
        XCTAssertTrue(long.err.contains("(prompt 32 tokens)"), long.err)
        // A chat line over the limit is refused, not buffered without end.
        let huge = String(repeating: "a", count: (1 << 20) + 10)
        let big = try emerald(["chat", "--checkpoint", "m", "--max-new-tokens", "2"], stdin: huge)
        XCTAssertEqual(big.status, 1)
        XCTAssertTrue(big.stderr.contains("an input line is longer than 1048576 bytes"), big.stderr)

        // SIGINT during an answer stops that answer; the chat reads the next prompt, then EOF ends it.
        let child = try Child(EmeraldExecutable.path!, ["chat", "--checkpoint", "m", "--max-new-tokens", "100000000", "--temperature", "1"],
                              in: work, stdin: Array("Dorothy\n".utf8))
        let deadline = Date().addingTimeInterval(30)
        while child.stdout.count < 200 && child.isRunning && Date() < deadline { usleep(5000) }
        child.send(SIGINT)
        XCTAssertTrue(child.wait(timeout: 30), "the chat goes on to the next prompt and ends at EOF")
        XCTAssertEqual(child.exitStatus, 0)
        XCTAssertFalse(child.signaled)
        let out = String(decoding: child.stdout, as: UTF8.self)
        XCTAssertTrue(out.contains(" [stopped]\n> "), String(out.suffix(300)).debugDescription)
    }

    /// On a terminal: the prompt line is edited in place, ↑ recalls the last line, Ctrl-D and
    /// Ctrl-C at an empty prompt quit.
    func testChatEditsLinesOnATerminal() throws {
        try trainSmall()
        let args = ["chat", "--checkpoint", "m", "--max-new-tokens", "8", "--temperature", "0", "--verbose"]
        let tty = try PseudoTerminal()
        let child = try Child(EmeraldExecutable.path!, args, in: work, terminal: tty.slave)
        XCTAssertTrue(tty.read(until: "> ").hasSuffix("> "))
        tty.type(Array("Dorothx".utf8) + [0x7F] + Array("y".utf8) + [0x1B, 0x5B, 0x44, 0x1B, 0x5B, 0x43, 0x0D])  // ⌫, ←, →, Enter
        let first = tty.read(until: "\n> ")
        XCTAssertTrue(first.contains("\r> Dorothy"), "the line is redrawn as edited: \(first.debugDescription)")
        tty.type([0x1B, 0x5B, 0x41])  // ↑
        XCTAssertTrue(tty.read(until: "Dorothy").contains("Dorothy"), "history recalls the last line")
        tty.type([0x0D])
        _ = tty.read(until: "\n> ")
        tty.type([0x04])  // Ctrl-D at an empty prompt
        XCTAssertTrue(child.wait(timeout: 30))
        XCTAssertEqual(child.exitStatus, 0)
        let speeds = child.stderr.split(separator: "\n").filter { $0.contains("new tokens in") }
        XCTAssertEqual(speeds.count, 2, child.stderr)
        XCTAssertTrue(speeds.first?.hasSuffix("(prompt 7 tokens)") == true && speeds.last?.hasSuffix("(prompt 23 tokens)") == true,
                      "the edited line was Dorothy, and ↑ sent it again: \(child.stderr)")

        let tty2 = try PseudoTerminal()
        let quit = try Child(EmeraldExecutable.path!, args, in: work, terminal: tty2.slave)
        _ = tty2.read(until: "> ")
        tty2.type(Array("Oz".utf8) + [0x03])  // Ctrl-C drops the line …
        XCTAssertTrue(tty2.read(until: "^C").contains("^C"))
        tty2.type([0x03])                      // … and at an empty prompt quits
        XCTAssertTrue(quit.wait(timeout: 30))
        XCTAssertEqual(quit.exitStatus, 0)
        XCTAssertFalse(quit.stderr.contains("new tokens"), "nothing was generated: \(quit.stderr)")
    }

    // MARK: - Help, version, mistakes

    func testHelpVersionAndMistakes() throws {
        // ArgumentParser wraps help at 80 columns: compare with the line breaks taken out.
        let help = try ok(["train", "--help"]).out.replacingOccurrences(of: #"\n\s+"#, with: " ", options: .regularExpression)
        for phrase in ["(default: GPT 2500, bigram 3000, finetune 300)", "(default: GPT 0.003, bigram 0.01, finetune 0.0003)",
                       "(default: GPT 250, bigram 300, finetune 50)", "(default: GPT 32, bigram 32, finetune 8)", "at most 10% of --steps"] {
            XCTAssertTrue(help.contains(phrase), "train --help lacks \(phrase)")
        }
        for args in [["bench", "gemm", "--help"], ["bench", "train", "--help"], ["--help"], ["prepare", "--help"], ["chat", "--help"]] {
            let text = try ok(args).out
            XCTAssertFalse(text.contains("issue") || text.contains("not built yet"), "\(args): \(text)")
        }
        XCTAssertTrue(try ok(["--version"]).out.range(of: #"^\d+\.\d+\.\d+\n$"#, options: .regularExpression) != nil)
        try fails(["trian"], "did you mean 'train'?")
        try fails(["smaple", "--prompt", "x"], "did you mean 'sample'?")
        try fails(["xyzzy"], "commands: train, finetune, prepare")
        try fails(["train", "--activation", "swish"], "'swish' is invalid for '--activation <activation>'")
        try fails(["train", "--threads", "-1"], "a negative value is written --threads=-1")
        let completion = try ok(["--generate-completion-script", "bash"]).out
        XCTAssertTrue(completion.contains("_emerald"), "bash completion script")
    }

    // MARK: - prepare

    func testPrepareWarnsOfEmptySplitsAndTakesGPT2AndBadLines() throws {
        XCTAssertTrue(FileManager.default.createFile(atPath: work + "/part00.txt", contents: Data("Dorothy lived in Kansas.\n".utf8)))
        XCTAssertTrue(FileManager.default.createFile(atPath: work + "/part01.txt", contents: Data("Toto was a small dog.\n".utf8)))
        let two = try ok(["prepare", "part00.txt", "part01.txt", "--out", "p1", "--quiet"])
        XCTAssertTrue(two.err.contains("warning: the validation split is empty") && two.err.contains("--val-split tail"), two.err)
        let tail = try ok(["prepare", "part00.txt", "part01.txt", "--out", "p2", "--val-split", "tail", "--quiet"])
        XCTAssertFalse(tail.err.contains("warning"), tail.err)
        let corpus = try PreparedCorpus(directory: work + "/p2")
        XCTAssertEqual(corpus.val.count, 8, "the last 10% of each document (2 + 2 characters) and its end-of-text")
        XCTAssertEqual(corpus.train.count, 22 + 19 + 2)
        try fails(["prepare", "part00.txt", "--out", "p3", "--val-split", "middle"], "'middle' is invalid for '--val-split")

        let jsonl = "{\"text\": \"Hello world\"}\nnot json\n{\"title\": 1}\n{\"text\": \"Goodbye\"}\n"
        XCTAssertTrue(FileManager.default.createFile(atPath: work + "/docs.jsonl", contents: Data(jsonl.utf8)))
        try fails(["prepare", "docs.jsonl", "--out", "j1", "--quiet"], "docs.jsonl line 2: expected a JSON object with a string \"text\" field")
        let skipped = try ok(["prepare", "docs.jsonl", "--out", "j2", "--bad-lines", "skip", "--tokenizer", "gpt2", "--val-split", "tail",
                              "--quiet"])
        XCTAssertTrue(skipped.err.contains("2 malformed JSON lines skipped"), skipped.err)
        let manifest = try XCTUnwrap(JSONSerialization.jsonObject(with: try XCTUnwrap(FileManager.default.contents(atPath: work + "/j2/manifest.json"))) as? [String: Any])
        let documents = try XCTUnwrap(manifest["documents"] as? [String: Any])
        XCTAssertEqual(documents["bad_lines"] as? Int, 2)
        XCTAssertEqual(documents["kept"] as? Int, 2)
        XCTAssertEqual(manifest["vocab_size"] as? Int, 50257, "--tokenizer gpt2: the shipped tokenizer, as in tokenize")
        XCTAssertEqual(manifest["bad_lines_policy"] as? String, "skip")
    }
}
