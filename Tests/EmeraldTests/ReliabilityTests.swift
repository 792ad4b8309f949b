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
        try ok(["prepare", "in", "--out", "c", "--val-split", "tail", "--quiet"])  // a one-letter name (Foundation's path functions trap on it)
        try fails(["tokenize", "--tokenizer", "t", "x"], "no such file or folder: t")
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
        // The same for an Emerald checkpoint (convert --out) and a tokenizer file (tokenizer train).
        try ok(["convert", "big/best", "--out", "ckpt"])
        write("text.txt", String(repeating: "Dorothy met the Wizard of Oz, and the Scarecrow sang. The lion roared!\n", count: 400))
        try ok(["tokenizer", "train", "--data", "text.txt", "--vocab-size", "600", "--out", "tok.json"])
        for fraction in [0.1, 0.3, 0.5, 0.7, 0.9] {
            for args in [["convert", "big/checkpoint", "--out", "ckpt"], ["tokenizer", "train", "--data", "text.txt", "--vocab-size", "700", "--out", "tok.json"]] {
                let child = try Child(EmeraldExecutable.path!, args, in: work)
                usleep(useconds_t(duration * fraction * 1e6))
                child.send(SIGKILL)
                child.wait(timeout: 10)
            }
            XCTAssertNoThrow(try Checkpoint.load(from: work + "/ckpt"), "killed at \(fraction) of a convert --out")
            XCTAssertNoThrow(try ByteLevelBPETokenizer.load(path: work + "/tok.json"), "killed at \(fraction) of a tokenizer train")
        }
    }

    // MARK: - Malformed input: one error line, bounded memory

    /// Runs emerald and asserts a clean failure mentioning `phrase` within 512 MB of peak RSS.
    private func refuses(_ args: [String], _ phrase: String, stdinPath: String? = nil, closeStdin: Bool = false,
                         file: StaticString = #filePath, line: UInt = #line) throws {
        let child = try Child(EmeraldExecutable.path!, args, in: work, environment: ["HF_HUB_OFFLINE": "1"],
                              stdinPath: stdinPath, closeStdin: closeStdin)
        XCTAssertTrue(child.wait(timeout: 60), "emerald \(args.joined(separator: " ")) hung", file: file, line: line)
        EmeraldExecutable.assertCleanFailure(child.output, "emerald " + args.joined(separator: " "), phrase, file: file, line: line)
        XCTAssertLessThanOrEqual(child.peakKilobytes, 512 * 1024, "peak RSS of \(args.joined(separator: " "))", file: file, line: line)
    }

    func testTokenIdsOutsideTheVocabularyAreRefusedWhenAShardIsMapped() throws {
        write("in/a.txt", String(repeating: "Dorothy lived in Kansas with Uncle Henry.\n", count: 50))
        try ok(["prepare", "in", "--out", "corpus", "--val-split", "tail", "--quiet"])
        let shard = work + "/corpus/train-000000.bin"
        var bytes = try XCTUnwrap(fm.contents(atPath: shard))
        let header = 64
        let vocab = try PreparedCorpus(directory: work + "/corpus").vocabularySize
        // One id equal to the vocabulary size (an off-by-one read), then every id 0xFFFF.
        bytes[header + 10] = UInt8(vocab & 0xFF); bytes[header + 11] = UInt8(vocab >> 8)
        try bytes.write(to: URL(fileURLWithPath: shard))
        let args = ["train", "--model", "bigram", "--data", "corpus", "--steps", "2", "--block-size", "4", "--batch-size", "2", "--out", "r"]
        try refuses(args, "holds token id \(vocab), outside the vocabulary of \(vocab)")
        for i in header..<bytes.count { bytes[i] = 0xFF }
        try bytes.write(to: URL(fileURLWithPath: shard))
        try refuses(args, "holds token id 65535, outside the vocabulary")
        try refuses(["eval", "--checkpoint", "nowhere", "--data", "corpus"], "no such file or folder: nowhere")
        // A tokenizer.json that disagrees with the manifest.
        try ok(["prepare", "in", "--out", "c2", "--val-split", "tail", "--quiet"])
        try fm.removeItem(atPath: work + "/c2/tokenizer.json")
        try fm.copyItem(atPath: TestSupport.repoRoot.appendingPathComponent("Tests/EmeraldTests/Fixtures/hf/tiny-gpt2/tokenizer.json").path,
                        toPath: work + "/c2/tokenizer.json")
        try refuses(["train", "--data", "c2", "--steps", "1", "--out", "r2"], "ids but the manifest's vocabulary is")
    }

    func testDamagedModelFoldersAreRefusedBeforeAllocating() throws {
        let hf = try HFTests.folder("tiny-gpt2")
        func copy(_ name: String, _ edit: (String) throws -> Void) throws -> String {
            try fm.copyItem(atPath: hf, toPath: work + "/" + name)
            try edit(work + "/" + name)
            return name
        }
        func editConfig(_ dir: String, _ change: (inout [String: Any]) -> Void) throws {
            var json = try AtomicFile.readJSON(dir + "/config.json")
            change(&json)
            try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: dir + "/config.json"))
        }
        var d = try copy("vocab") { try editConfig($0) { $0["vocab_size"] = 1 << 40 } }
        try refuses(["sample", "--model", d, "--prompt-ids", "1"], "config.json is unusable: vocab_size must be in 1...16777216")
        d = try copy("layers") { try editConfig($0) { $0["n_layer"] = 1_000_000 } }
        try refuses(["sample", "--model", d, "--prompt-ids", "1"], "config.json is unusable: n_layer must be in 1...4096")
        d = try copy("layers4000") { try editConfig($0) { $0["n_layer"] = 4000 } }
        try refuses(["sample", "--model", d, "--prompt-ids", "1"], "config.json has n_layer 4000 but the weights hold 2 blocks")
        d = try copy("emptymap") { dir in
            try fm.removeItem(atPath: dir + "/model.safetensors")
            try Data("{\"weight_map\": {}}".utf8).write(to: URL(fileURLWithPath: dir + "/model.safetensors.index.json"))
        }
        try refuses(["sample", "--model", d, "--prompt-ids", "1"], "an empty one")
        d = try copy("trailing") { dir in
            let h = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/model.safetensors"))
            try h.seekToEnd(); try h.write(contentsOf: Data(count: 16)); try h.close()
        }
        try refuses(["sample", "--model", d, "--prompt-ids", "1"], "16 bytes after the last tensor")
        // A header claiming 150 MB in a sparse 200 MB file: refused by the size limit, never read.
        d = try copy("hugeheader") { dir in
            let path = dir + "/model.safetensors"
            var header = Data(count: 8)
            header.withUnsafeMutableBytes { $0.storeBytes(of: UInt64(150_000_000).littleEndian, as: UInt64.self) }
            try header.write(to: URL(fileURLWithPath: path))
            XCTAssertEqual(truncate(path, 200_000_000), 0)
        }
        try refuses(["sample", "--model", d, "--prompt-ids", "1"], "exceeds the 100000000-byte limit")
        // A FIFO named model.safetensors, and /dev/zero as a config: refused, not read.
        d = try copy("fifo") { dir in
            try fm.removeItem(atPath: dir + "/model.safetensors")
            XCTAssertEqual(mkfifo(dir + "/model.safetensors", 0o644), 0)
        }
        try refuses(["sample", "--model", d, "--prompt-ids", "1"], "not a regular file")
        d = try copy("zero") { dir in
            try fm.removeItem(atPath: dir + "/config.json")
            try fm.createSymbolicLink(atPath: dir + "/config.json", withDestinationPath: "/dev/zero")
        }
        try refuses(["sample", "--model", d, "--prompt-ids", "1"], "is not a regular file")
    }

    func testAbsurdSizesAndEndlessInputsAreRefused() throws {
        try refuses(["train", "--batch-size", "1000000000000"], "--batch-size must be in 1...1073741824")
        try refuses(["train", "--block-size", "1000000000000"], "--block-size must be in 1...1048576")
        try refuses(["train", "--n-embd", "1000000000000", "--n-head", "1"], "--n-embd must be in 1...131072")
        try refuses(["train", "--batch-size", "1000000"], "needs about")
        try refuses(["finetune", "--from", try HFTests.folder("tiny-gpt2"), "--out", "ft", "--batch-size", "1000000000000"],
                    "--batch-size must be in 1...1073741824")
        try refuses(["bench", "train", "--vocab-size", "1000000000000"], "--vocab-size must be in 1...16777216")
        try refuses(["bench", "gemm", "--shapes", "1000000,1000000,1000"], "needs about")
        try refuses(["bench", "generate", "--n-embd", "131072", "--n-layer", "4096", "--n-head", "1", "--block-size", "1024"], "needs about")
        try refuses(["tokenize", "--tokenizer", "gpt2"], "cannot read standard input: it is closed", closeStdin: true)
        // A 20 MB tokenizer.json (a million-entry vocabulary) is refused by size, not parsed into gigabytes.
        var big = "{\"model\": {\"type\": \"BPE\", \"merges\": [], \"vocab\": {"
        for i in 0..<1_000_000 { big += "\"t\(i)\": \(i), " }
        write("big.json", big + "\"end\": -1}}}")
        try refuses(["tokenize", "--tokenizer", "big.json", "x"], "more than the 16777216 this file may hold")
        try refuses(["tokenize", "--tokenizer", "gpt2"], "standard input holds more than 67108864 bytes", stdinPath: "/dev/zero")
        try tinyRun()
        try refuses(["chat", "--checkpoint", "run"], "an input line is longer than 1048576 bytes", stdinPath: "/dev/zero")
        try refuses(["sample", "--checkpoint", "run", "--prompt-file", "/dev/zero"], "/dev/zero is not a regular file")
        try refuses(["train", "--data", "/dev/zero"], "/dev/zero is not a regular file")
        try refuses(["train", "--threads", "-1"], "a negative value is written --threads=-1")
    }

    // MARK: - Silent wrong results

    func testNaNWeightsAreReportedNotScored() throws {
        try tinyRun()
        for dir in ["run/checkpoint", "run/best"] {
            let path = work + "/" + dir + "/model.safetensors"
            let tensors = try SafeTensors.read(path: path).tensors
            let key = try XCTUnwrap(tensors.keys.first { $0.hasSuffix("ln_f.weight") })
            tensors[key]!.data[1] = .nan
            try SafeTensors.write(tensors.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, to: path)
        }
        try fails(["score", "--checkpoint", "run", "--ids", "1,2,3"], "the loss is nan")
        try fails(["score", "--checkpoint", "run", "--ids", "1,2,3", "--json"], "the loss is nan")
        try fails(["eval", "--checkpoint", "run", "--data", "small.txt"], "the model's loss at token 1 is nan")
        try fails(["train", "--resume", "run", "--steps", "4", "--progress", "none"], "training diverged at step 2")
    }

    // MARK: - A full disk

    /// Mounts a small tmpfs at `work/disk`, runs `body` with it, unmounts. Needs root (CI and
    /// the project's machines run as root); skipped with the reason elsewhere.
    private func withSmallDisk(megabytes: Int, _ body: (String) throws -> Void) throws {
        guard getuid() == 0 else { throw XCTSkip("mounting a small tmpfs needs root") }
        let disk = work + "/disk"
        try fm.createDirectory(atPath: disk, withIntermediateDirectories: true)
        let m = try Child("/bin/mount", ["-t", "tmpfs", "-o", "size=\(megabytes)m", "tmpfs", disk], in: work)
        m.wait(timeout: 30)
        guard m.exitStatus == 0 else { throw XCTSkip("cannot mount a tmpfs here: \(m.stderr)") }
        defer { let u = try? Child("/bin/umount", ["-l", disk], in: work); u?.wait(timeout: 30) }
        try body(disk)
    }

    /// Fills the file system holding `dir` to the last byte.
    private func fill(_ dir: String) {
        let fd = open(dir + "/filler", O_WRONLY | O_CREAT, 0o644)
        let block = [UInt8](repeating: 7, count: 1 << 16)
        var size = block.count
        while size >= 1 {
            if block.withUnsafeBytes({ Glibc.write(fd, $0.baseAddress, size) }) < 0 { size /= 2 }
        }
        close(fd)
    }

    func testAFullDiskFailsCleanlyAndKeepsThePreviousOutput() throws {
        try tinyRun()
        write("in/a.txt", String(repeating: "Dorothy lived in Kansas with Uncle Henry.\n", count: 400))
        try withSmallDisk(megabytes: 8) { disk in
            let rel = String(disk.dropFirst(work.count + 1))
            try fm.copyItem(atPath: work + "/run", toPath: disk + "/run")
            try ok(["prepare", "in", "--out", rel + "/corpus", "--val-split", "tail", "--quiet"])
            try ok(["convert", "run/best", "--to-hf", rel + "/hf"])
            let corpusManifest = read(rel + "/corpus/manifest.json")
            fill(disk)
            try fails(["train", "--resume", rel + "/run", "--steps", "4", "--progress", "none"], "No space left on device")
            XCTAssertEqual(try Checkpoint.load(from: disk + "/run/checkpoint").state?.step, 2, "the previous checkpoint is whole")
            try fails(["prepare", "in", "--out", rel + "/corpus", "--quiet"], "No space left on device")
            XCTAssertEqual(read(rel + "/corpus/manifest.json"), corpusManifest)
            XCTAssertNoThrow(try PreparedCorpus(directory: disk + "/corpus"))
            try fails(["convert", "run/checkpoint", "--to-hf", rel + "/hf"], "No space left on device")
            XCTAssertNoThrow(try Checkpoint.load(from: disk + "/hf"))
            try fails(["tokenizer", "train", "--data", "in/a.txt", "--vocab-size", "300", "--out", rel + "/tok.json"], "No space left on device")
            XCTAssertFalse(fm.fileExists(atPath: disk + "/tok.json"))
            // Space again: the next writers finish, and no temporary file or folder is left.
            try fm.removeItem(atPath: disk + "/filler")
            try ok(["train", "--resume", rel + "/run", "--steps", "4", "--progress", "none"])
            try ok(["prepare", "in", "--out", rel + "/corpus", "--quiet"])
            try ok(["convert", "run/checkpoint", "--to-hf", rel + "/hf"])
            let litter = try fm.subpathsOfDirectory(atPath: disk).filter { $0.contains(".tmp") || $0.contains(".old") }
            XCTAssertEqual(litter, [])
        }
    }
}
