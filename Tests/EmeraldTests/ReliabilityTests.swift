import Emerald
import Foundation
import XCTest

/// People's files are sacred: what each writing command refuses, what SIGKILL leaves, one writer
/// per folder. Each case is one `error:` line, exit 1, no signal, and the user's files untouched.
final class ReliabilityTests: XCTestCase {
    private var work = ""
    private let fm = FileManager.default

    override func setUpWithError() throws {
        XCTAssertNotNil(EmeraldExecutable.path, "build with --build-tests")
        work = TestSupport.tempDir("reliability")
    }

    override func tearDown() {
        if !work.isEmpty { try? fm.removeItem(atPath: work) }
    }

    private func ok(_ args: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try EmeraldExecutable.run(args, in: work, timeout: 120)
        XCTAssertEqual(r.status, 0, "emerald \(args.joined(separator: " ")): \(r.stderr)", file: file, line: line)
    }

    private func fails(_ args: [String], _ phrase: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try EmeraldExecutable.run(args, in: work)
        EmeraldExecutable.assertCleanFailure(r, "emerald " + args.joined(separator: " "), phrase, file: file, line: line)
    }

    private func write(_ rel: String, _ text: String) {
        try? fm.createDirectory(atPath: (work + "/" + rel as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        XCTAssertTrue(fm.createFile(atPath: work + "/" + rel, contents: Data(text.utf8)))
    }

    private func read(_ rel: String) -> String? { fm.contents(atPath: work + "/" + rel).map { String(decoding: $0, as: UTF8.self) } }

    /// A tiny GPT checkpoint trained on a few lines, in `run/`.
    private func tinyRun() throws {
        write("small.txt", String(repeating: "Dorothy met the Wizard of Oz.\nThe lion roared!\n", count: 30))
        try ok(["train", "--data", "small.txt", "--out", "run", "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16",
                "--steps", "2", "--eval-interval", "2", "--eval-iters", "1", "--batch-size", "2", "--progress", "none"])
    }

    func testConvertNeverTouchesWhatEmeraldDidNotWrite() throws {
        let hf = try HFTests.folder("tiny-gpt2")
        write("d/thesis.txt", "years of work")
        try fails(["convert", hf, "--out", "d"], "d holds files Emerald did not write (thesis.txt)")
        try fails(["convert", hf, "--to-hf", "d"], "d holds files Emerald did not write (thesis.txt)")
        XCTAssertEqual(read("d/thesis.txt"), "years of work")
        write("notes.txt", "my notes")
        try fails(["convert", hf, "--out", "notes.txt"], "notes.txt exists and is not a folder")
        try fails(["convert", hf, "--to-hf", "notes.txt"], "notes.txt exists and is not a folder")
        XCTAssertEqual(read("notes.txt"), "my notes")

        try tinyRun()
        let optimizer = fm.contents(atPath: work + "/run/checkpoint/optimizer.safetensors")
        XCTAssertNotNil(optimizer)
        try fails(["convert", "run/checkpoint", "--to-hf", "run/checkpoint"], "is the source")
        try fails(["convert", "run/checkpoint", "--out", "run/checkpoint/"], "is the source")
        try fails(["convert", "run/checkpoint", "--out", "run"], "holds the source")
        try fails(["convert", "run/checkpoint", "--to-hf", "run/best"], "holds Emerald output of another kind (checkpoint)")
        XCTAssertEqual(fm.contents(atPath: work + "/run/checkpoint/optimizer.safetensors"), optimizer, "the optimizer state is kept")

        // Emerald's own outputs are replaced, atomically, by the same kind.
        try ok(["convert", "run/best", "--to-hf", "export"])
        try ok(["convert", "run/checkpoint", "--to-hf", "export"])
        try ok(["convert", hf, "--out", "ckpt"])
        try ok(["convert", "run/best", "--out", "ckpt"])
        XCTAssertNoThrow(try Checkpoint.load(from: work + "/export"))
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: work).filter { $0.contains(".tmp") || $0.contains(".old") }, [])
        // A user's Hugging Face download (no marker) is not Emerald's to replace.
        try fm.copyItem(atPath: hf, toPath: work + "/downloaded")
        try fails(["convert", "run/best", "--to-hf", "downloaded"], "downloaded holds files Emerald did not write")
    }

    func testPrepareRefusesForeignFoldersAndAFailedRerunKeepsTheCorpus() throws {
        write("in/a.txt", "Dorothy lived in Kansas with Uncle Henry.\n")
        write("in/b.txt", "Toto was a little black dog.\n")
        write("tok/tokenizer.json", "{\"mine\": true}")
        try fails(["prepare", "in", "--out", "tok"], "tok holds files Emerald did not write (tokenizer.json)")
        XCTAssertEqual(read("tok/tokenizer.json"), "{\"mine\": true}")
        write("other/manifest.json", "{\"format\": \"another tool\"}")
        try fails(["prepare", "in", "--out", "other"], "other holds files Emerald did not write (manifest.json)")
        XCTAssertEqual(read("other/manifest.json"), "{\"format\": \"another tool\"}")

        try ok(["prepare", "in", "--out", "corpus", "--val-split", "tail", "--quiet"])
        let manifest = read("corpus/manifest.json")
        // A re-run that fails half-way (a malformed JSON line after the text files) keeps the old corpus.
        write("in/c.jsonl", "{\"text\": \"fine\"}\nbroken\n")
        try fails(["prepare", "in", "--out", "corpus", "--quiet"], "c.jsonl line 2")
        XCTAssertEqual(read("corpus/manifest.json"), manifest)
        XCTAssertNoThrow(try PreparedCorpus(directory: work + "/corpus"))
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: work).filter { $0.hasPrefix("corpus.") }, [], "no temporary sibling left")
        try fails(["prepare", "/dev/zero", "--out", "z"], "/dev/zero is not a regular file")
        XCTAssertTrue(mkfifo(work + "/in/pipe.txt", 0o644) == 0)
        try ok(["prepare", "in", "--out", "corpus", "--bad-lines", "skip", "--quiet"])  // the FIFO is skipped, not read
    }

    func testTrainOutRefusesToReplaceARunAndOneWriterPerFolder() throws {
        try tinyRun()
        let metrics = read("run/metrics.jsonl")
        try fails(["train", "--data", "small.txt", "--out", "run", "--n-layer", "1", "--n-head", "2", "--n-embd", "16",
                   "--block-size", "16", "--steps", "2"], "run holds a training run (at step 2); continue it with --resume run, or pass --overwrite")
        XCTAssertEqual(read("run/metrics.jsonl"), metrics)
        write("mine/data.csv", "1,2,3")
        try fails(["train", "--data", "small.txt", "--out", "mine", "--steps", "2"], "mine holds files Emerald did not write (data.csv)")
        // --overwrite replaces it, through a temporary sibling swapped in at the first checkpoint.
        try ok(["train", "--data", "small.txt", "--out", "run", "--overwrite", "--n-layer", "1", "--n-head", "2", "--n-embd", "16",
                "--block-size", "16", "--steps", "4", "--eval-interval", "2", "--eval-iters", "1", "--batch-size", "2", "--progress", "none"])
        XCTAssertEqual(read("run/metrics.jsonl")?.split(separator: "\n").count, 3)
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: work).filter { $0.hasPrefix("run.") }, [])

        // A second writer is refused at once, naming the first one's pid.
        let long = try Child(EmeraldExecutable.path!, ["train", "--resume", "run", "--steps", "100000", "--progress", "none"], in: work,
                             environment: ["HF_HUB_OFFLINE": "1"])
        let deadline = Date().addingTimeInterval(30)
        while !(read("run/train.json")?.contains("100000") ?? false) && Date() < deadline { usleep(5000) }
        try fails(["train", "--resume", "run", "--steps", "200000"], "run is being written by another Emerald process (pid \(long.pid))")
        long.send(SIGKILL)
        long.wait(timeout: 10)
        // The killed writer's litter goes with the next writer; the lock went with the process.
        let step = try XCTUnwrap(try Checkpoint.load(from: work + "/run/checkpoint").state?.step)
        try ok(["train", "--resume", "run", "--steps", "\(step + 2)", "--progress", "none"])
        let litter = try fm.contentsOfDirectory(atPath: work + "/run").filter { $0.contains(".tmp") || $0.contains(".old") }
        XCTAssertEqual(litter, [])
    }

    func testSIGKILLDuringAnExportLeavesALoadableModel() throws {
        // A model big enough (≈ 25 MB of weights) that an export takes a while to write.
        write("small.txt", String(repeating: "Dorothy met the Wizard of Oz.\nThe lion roared!\n", count: 30))
        try ok(["train", "--data", "small.txt", "--out", "big", "--n-layer", "4", "--n-head", "4", "--n-embd", "256", "--block-size", "16",
                "--steps", "1", "--eval-interval", "1", "--eval-iters", "1", "--batch-size", "1", "--progress", "none"])
        try ok(["convert", "big/best", "--to-hf", "hf"])
        let t0 = Date()
        try ok(["convert", "big/checkpoint", "--to-hf", "hf"])
        let duration = Date().timeIntervalSince(t0)
        for fraction in [0.1, 0.3, 0.5, 0.7, 0.9, 1.0] {
            let child = try Child(EmeraldExecutable.path!, ["convert", "big/best", "--to-hf", "hf"], in: work)
            usleep(useconds_t(duration * fraction * 1e6))
            child.send(SIGKILL)
            child.wait(timeout: 10)
            XCTAssertNoThrow(try Checkpoint.load(from: work + "/hf"), "killed at \(fraction) of an export")
        }
        try ok(["convert", "big/best", "--to-hf", "hf"])
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: work).filter { $0.hasPrefix("hf.") || $0.hasPrefix(".hf") && !$0.hasSuffix(".lock") }, [],
                       "dead writers' siblings are removed by the next one")
    }
}
