import Emerald
import Foundation
import XCTest

/// `emerald prepare`: formats, streaming readers, the seeded split, shards, mmap training sources and bad input.
final class PrepareTests: XCTestCase {
    var work = ""

    override func setUp() { work = TestSupport.tempDir("prepare") }
    override func tearDown() { if !work.isEmpty { try? FileManager.default.removeItem(atPath: work) } }

    // MARK: - Helpers

    @discardableResult
    func file(_ rel: String, _ bytes: [UInt8]) -> String {
        let path = work + "/" + rel
        try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        return path
    }

    @discardableResult
    func file(_ rel: String, _ text: String) -> String { file(rel, Array(text.utf8)) }

    /// Runs a tool (xz, gzip, tar) in the work folder.
    func sh(_ tool: String, _ args: [String]) throws {
        let p = try Child("/usr/bin/env", [tool] + args, in: work)
        p.wait(timeout: 120)
        XCTAssertEqual(p.exitStatus, 0, "\(tool) \(args.joined(separator: " ")) failed (scripts/setup installs xz-utils): \(p.stderr)")
    }

    @discardableResult
    func prepare(_ inputs: [String], _ out: String, _ configure: (inout PrepareOptions) -> Void = { _ in }) throws -> PrepareSummary {
        var o = PrepareOptions(inputs: inputs.map { $0.hasPrefix("/") ? $0 : work + "/" + $0 }, output: work + "/" + out)
        o.threads = 2
        configure(&o)
        return try CorpusPreparer.run(o)
    }

    /// The documents of each split, decoded and cut at end-of-text.
    func documents(_ out: String) throws -> (train: [String], val: [String]) {
        let c = try PreparedCorpus(directory: work + "/" + out)
        func docs(_ s: ShardedTokens) -> [String] {
            let ids = s.allTokens()
            if !ids.isEmpty { XCTAssertEqual(ids.last, c.eotID, "every document ends with end-of-text") }
            return ids.split(separator: c.eotID, omittingEmptySubsequences: false).dropLast().map { c.tokenizer.decode(Array($0)) }
        }
        return (docs(c.train), docs(c.val))
    }

    func manifest(_ out: String) throws -> [String: Any] { try AtomicFile.readJSON(work + "/" + out + "/manifest.json") }

    func expectError(_ body: @autoclosure () throws -> Any, _ phrase: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { e in
            guard let ee = e as? EmeraldError else { return XCTFail("not an EmeraldError: \(e)", file: file, line: line) }
            XCTAssertTrue(ee.description.contains(phrase), "\(ee.description.debugDescription) should mention \(phrase.debugDescription)",
                          file: file, line: line)
            XCTAssertFalse(ee.description.contains("\n"), "one line", file: file, line: line)
        }
    }

    // MARK: - Text, round trips, end-of-text

    func testTextFolderRoundTripWithEndOfTextAndSmallShards() throws {
        file("in/a.txt", "Hello\r\nworld\rend")
        file("in/b.txt", [0xEF, 0xBB, 0xBF] + Array("Ünïcödé 🙂 \u{3}x".utf8))
        file("in/sub/c.md", "third")
        file("in/.hidden.txt", "ignored")
        file("in/notes.bin", "ignored too")
        file("in/empty.txt", "")
        let s = try prepare(["in"], "out") { $0.valFraction = 0; $0.shardTokens = 7 }
        let docs = try documents("out")
        XCTAssertEqual(docs.train, ["Hello\nworld\nend", "Ünïcödé 🙂 x", "third"], "BOM dropped, CR/CRLF → LF, U+0003 removed")
        XCTAssertEqual(docs.val, [])
        XCTAssertEqual(s.trainDocuments, 3)
        XCTAssertEqual(s.trainTokens, 15 + 11 + 5 + 3)
        let m = try manifest("out")
        let train = (m["splits"] as! [String: Any])["train"] as! [String: Any]
        let shards = train["shards"] as! [[String: Any]]
        XCTAssertEqual(shards.count, (s.trainTokens + 6) / 7)
        XCTAssertEqual(shards.map { $0["tokens"] as! Int }.reduce(0, +), s.trainTokens)
        XCTAssertEqual(m["dtype"] as? String, "uint16")
        XCTAssertEqual((m["documents"] as! [String: Any])["read"] as? Int, 3)
        XCTAssertEqual((m["sources"] as! [[String: Any]]).count, 4, "a.txt, b.txt, empty.txt, sub/c.md")
        let files = try FileManager.default.contentsOfDirectory(atPath: work + "/out")
        XCTAssertFalse(files.contains { $0.hasSuffix(".tmp") }, "\(files)")
        // The char vocabulary holds U+0003 as end-of-text.
        let c = try PreparedCorpus(directory: work + "/out")
        let tok = try XCTUnwrap(c.tokenizer as? CharTokenizer)
        XCTAssertEqual(c.eotID, Int32(tok.vocabulary.firstIndex(of: "\u{3}")!))
        XCTAssertEqual(c.vocabularySize, tok.vocabularySize)
        XCTAssertEqual(c.train.count, s.trainTokens)
    }

    func testXZGzipTarJSONLinesAndOpenWebTextLayout() throws {
        let docs = ["first document\n", "second — ü\n", "third one", "fourth 🙂", "fifth"]
        for (i, d) in docs.enumerated() { file("docs/\(i)-doc.txt", d) }
        // Two OpenWebText subsets: xz-compressed tars of .txt documents, named .xz.
        try sh("tar", ["-cf", "s1.tar", "-C", "docs", "0-doc.txt", "1-doc.txt", "2-doc.txt"])
        try sh("tar", ["-cf", "s2.tar", "-C", "docs", "3-doc.txt", "4-doc.txt"])
        try sh("xz", ["-z", "s1.tar"]); try sh("xz", ["-z", "s2.tar"])
        try FileManager.default.createDirectory(atPath: work + "/owt/openwebtext", withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: work + "/s1.tar.xz", toPath: work + "/owt/openwebtext/urlsf_subset00-1_data.xz")
        try FileManager.default.moveItem(atPath: work + "/s2.tar.xz", toPath: work + "/owt/openwebtext/urlsf_subset00-2_data.xz")
        try prepare(["owt"], "p1") { $0.valFraction = 0 }
        XCTAssertEqual(try documents("p1").train, docs, "the folder layout")
        // openwebtext.tar.xz itself: a tar of the subsets.
        try sh("tar", ["-cJf", "openwebtext.tar.xz", "-C", "owt", "openwebtext/urlsf_subset00-1_data.xz",
                       "openwebtext/urlsf_subset00-2_data.xz"])
        try prepare(["openwebtext.tar.xz"], "p2") { $0.valFraction = 0 }
        XCTAssertEqual(try documents("p2").train, docs, "the distributed archive")
        // .gz text, .tar.gz, .jsonl (and gzip-compressed .jsonl.gz).
        file("g/book.txt", "a gzipped book\n")
        try sh("gzip", ["g/book.txt"])
        try sh("tar", ["-czf", "t.tar.gz", "-C", "docs", "3-doc.txt", "0-doc.txt"])
        file("j/x.jsonl", "{\"text\": \"json one\", \"id\": 1}\n\n{\"text\": \"json\\r\\ntwo\"}\n")
        try prepare(["g/book.txt.gz", "t.tar.gz", "j/x.jsonl"], "p3") { $0.valFraction = 0 }
        XCTAssertEqual(try documents("p3").train, ["a gzipped book\n", docs[3], docs[0], "json one", "json\ntwo"])
        try sh("gzip", ["j/x.jsonl"])
        try prepare(["j"], "p4") { $0.valFraction = 0 }
        XCTAssertEqual(try documents("p4").train, ["json one", "json\ntwo"])
    }

    func testTarReaderHandlesLongNamesAndSkipsDirectories() throws {
        let long = String(repeating: "d", count: 120)
        file("docs/\(long)/\(String(repeating: "n", count: 110)).txt", "deep")
        file("docs/short.txt", "short")
        try sh("tar", ["--format=gnu", "-cf", "gnu.tar", "-C", "docs", "."])
        try sh("tar", ["--format=pax", "-cf", "pax.tar", "-C", "docs", "."])
        for name in ["gnu.tar", "pax.tar"] {
            var paths: [String] = []
            let reader = BufferedReader(try FileStream(path: work + "/" + name))
            try TarReader(reader, name: name).forEachFile { m, s in
                paths.append(m.path)
                var body = [UInt8](repeating: 0, count: m.size + 1)
                var n = 0
                while true {
                    let k = try body.withUnsafeMutableBytes { try s.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[n...])) }
                    if k == 0 { break }
                    n += k
                }
                XCTAssertEqual(n, m.size)
            }
            XCTAssertEqual(Set(paths.map { ($0 as NSString).lastPathComponent }), ["short.txt", String(repeating: "n", count: 110) + ".txt"], name)
            XCTAssertTrue(paths.contains { $0.contains(long) }, "\(name): \(paths)")
        }
    }

    // MARK: - Split, sample, threads

    private func manyDocuments(files: Int = 6, perFile: Int = 50) -> [String] {
        var all: [String] = []
        for f in 0..<files {
            var lines = ""
            for d in 0..<perFile {
                let text = "document \(f * perFile + d) " + String(repeating: "lorem ipsum ", count: (f * 7 + d) % 13)
                all.append(text)
                lines += "{\"text\": \"\(text)\"}\n"
            }
            file("many/part\(f).jsonl", lines)
        }
        return all
    }

    func testSplitIsSeededByDocumentAndIndependentOfThreads() throws {
        let all = manyDocuments()
        try prepare(["many"], "one") { $0.threads = 1; $0.seed = 5; $0.valFraction = 0.2; $0.shardTokens = 500 }
        try prepare(["many"], "two") { $0.threads = 2; $0.seed = 5; $0.valFraction = 0.2; $0.shardTokens = 500 }
        let d1 = try documents("one"), d2 = try documents("two")
        XCTAssertEqual(d1.train, d2.train)
        XCTAssertEqual(d1.val, d2.val)
        let names = try FileManager.default.contentsOfDirectory(atPath: work + "/one").filter { $0.hasSuffix(".bin") }.sorted()
        XCTAssertEqual(names, try FileManager.default.contentsOfDirectory(atPath: work + "/two").filter { $0.hasSuffix(".bin") }.sorted())
        for n in names {
            XCTAssertEqual(FileManager.default.contents(atPath: work + "/one/" + n), FileManager.default.contents(atPath: work + "/two/" + n), n)
        }
        let expectedVal = all.indices.filter { DocumentSplit.isValidation(index: $0, seed: 5, fraction: 0.2) }.map { all[$0] }
        XCTAssertEqual(d1.val, expectedVal)
        XCTAssertEqual(d1.train, all.indices.filter { !DocumentSplit.isValidation(index: $0, seed: 5, fraction: 0.2) }.map { all[$0] })
        XCTAssertTrue((30...90).contains(d1.val.count), "\(d1.val.count) of 300 for 0.2")
        try prepare(["many"], "other") { $0.seed = 6; $0.valFraction = 0.2 }
        XCTAssertNotEqual(try documents("other").val, d1.val, "another seed, another split")
    }

    func testSampleRateKeepsASeededFraction() throws {
        let all = manyDocuments(files: 4, perFile: 100)
        let s = try prepare(["many"], "s") { $0.sampleRate = 0.25; $0.valFraction = 0.1; $0.seed = 9 }
        let kept = all.indices.filter { DocumentSplit.isSampled(index: $0, seed: 9, rate: 0.25) }
        XCTAssertEqual(s.trainDocuments + s.valDocuments, kept.count)
        XCTAssertEqual(s.sampledOut, 400 - kept.count)
        XCTAssertTrue((60...140).contains(kept.count), "\(kept.count) of 400 for 0.25")
        let d = try documents("s")
        XCTAssertEqual(Set(d.train + d.val), Set(kept.map { all[$0] }))
        let m = try manifest("s")
        XCTAssertEqual((m["documents"] as! [String: Any])["sampled_out"] as? Int, 400 - kept.count)
    }

    // MARK: - Token widths and the mmap source

    func testLargeVocabularyUsesUInt32() throws {
        var scalars = String.UnicodeScalarView()
        for v in 0x4E00..<(0x4E00 + 20_000) { scalars.append(Unicode.Scalar(UInt32(v))!) }
        for v in 0x20000..<(0x20000 + 50_000) { scalars.append(Unicode.Scalar(UInt32(v))!) }
        let text = String(scalars)
        file("big/cjk.txt", text)
        let s = try prepare(["big"], "out") { $0.valFraction = 0 }
        XCTAssertEqual(s.tokenWidth, 4)
        XCTAssertEqual(try manifest("out")["dtype"] as? String, "uint32")
        XCTAssertEqual(try documents("out").train, [text])
        let c = try PreparedCorpus(directory: work + "/out")
        XCTAssertEqual(c.train.width, 4)
        XCTAssertGreaterThan(c.vocabularySize, 65536)
    }

    func testShardedTokensWindowsCrossShards() throws {
        let ids = (0..<35).map { UInt32($0 * 3 % 50) }
        try FileManager.default.createDirectory(atPath: work + "/sh", withIntermediateDirectories: true)
        let w = ShardWriter(directory: work + "/sh", split: "train", width: 2, shardTokens: 10, vocabularySize: 50)
        try ids.withUnsafeBufferPointer { try w.append(UnsafeBufferPointer(rebasing: $0[0..<13])) }
        try ids.withUnsafeBufferPointer { try w.append(UnsafeBufferPointer(rebasing: $0[13...])) }
        try w.finish()
        XCTAssertEqual(w.shards.map { $0.tokens }, [10, 10, 10, 5])
        let src = try ShardedTokens(paths: w.shards.map { work + "/sh/" + $0.file }, expected: [10, 10, 10, 5])
        src.releaseInterval = 3  // exercise MADV_DONTNEED
        XCTAssertEqual(src.count, 35)
        XCTAssertEqual(src.allTokens(), ids.map { Int32($0) })
        for start in [0, 5, 9, 10, 18, 20, 25] {
            var out = [Int32](repeating: -1, count: 10)
            out.withUnsafeMutableBufferPointer { src.copy(from: start, count: 10, into: $0.baseAddress!) }
            XCTAssertEqual(out, ids[start..<(start + 10)].map { Int32($0) }, "window at \(start)")
        }
        var b = try Batcher(source: src, batchSize: 4, blockSize: 8, seed: 1)
        let batch = b.next()
        for r in 0..<4 { XCTAssertEqual(Array(batch.inputs[(r * 8 + 1)..<(r * 8 + 8)]), Array(batch.targets[(r * 8)..<(r * 8 + 7)])) }
        // A shard whose size disagrees with its header, or with the manifest, is refused.
        expectError(try ShardedTokens(paths: [work + "/sh/" + w.shards[0].file], expected: [11]), "manifest says 11")
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: work + "/sh/" + w.shards[3].file))
        try h.truncate(atOffset: 64 + 4); try h.close()
        expectError(try ShardedTokens(paths: [work + "/sh/" + w.shards[3].file]), "header says 5 tokens")
    }

    // MARK: - Output folder life cycle

    func testRerunStartsCleanAndRefusesForeignFolders() throws {
        _ = manyDocuments(files: 2, perFile: 40)
        try prepare(["many"], "out") { $0.shardTokens = 50 }
        let before = try FileManager.default.contentsOfDirectory(atPath: work + "/out").filter { $0.hasSuffix(".bin") }.count
        XCTAssertGreaterThan(before, 4)
        file("out/train-000099.bin.tmp", "leftover of an interrupted run")
        try prepare(["many"], "out") { $0.shardTokens = 1_000_000 }
        let after = try FileManager.default.contentsOfDirectory(atPath: work + "/out").sorted()
        XCTAssertEqual(after, [".emerald", "manifest.json", "tokenizer.json", "train-000000.bin", "val-000000.bin"])
        // Without the manifest (an interrupted run), the folder is not a corpus.
        try FileManager.default.removeItem(atPath: work + "/out/manifest.json")
        XCTAssertFalse(PreparedCorpus.isPrepared(work + "/out"))
        expectError(try PreparedCorpus(directory: work + "/out"), "manifest.json")
        file("mine/keep.txt", "precious")
        expectError(try prepare(["many"], "mine"), "mine holds files Emerald did not write (keep.txt); choose an empty or new folder")
        XCTAssertTrue(FileManager.default.fileExists(atPath: work + "/mine/keep.txt"))
    }

    // MARK: - Bad input

    func testTruncatedXZIsAnError() throws {
        var text = ""
        for i in 0..<3000 { text += "line \(i) of a compressible but not trivial text \(i * 7919 % 1000)\n" }
        file("t/doc.txt", text)
        try sh("xz", ["-z", "t/doc.txt"])
        let data = try XCTUnwrap(FileManager.default.contents(atPath: work + "/t/doc.txt.xz"))
        file("t/doc.txt.xz", Array(data.prefix(data.count / 2)))
        expectError(try prepare(["t"], "out"), "xz data is truncated")
        file("t/doc.txt.xz", Array(data.prefix(data.count / 2)) + [UInt8](repeating: 0x55, count: 100) + Array(data.suffix(data.count / 2 - 100)))
        expectError(try prepare(["t"], "out"), "doc.txt.xz")
    }

    func testCorruptTarIsAnError() throws {
        file("docs/a.txt", String(repeating: "a", count: 700))
        file("docs/b.txt", "bee")
        try sh("tar", ["-cf", "x.tar", "-C", "docs", "a.txt", "b.txt"])
        var bytes = [UInt8](try XCTUnwrap(FileManager.default.contents(atPath: work + "/x.tar")))
        bytes[512 + 1024 + 3] ^= 0x20  // the second header's name: checksum no longer matches
        file("bad/x.tar", bytes)
        expectError(try prepare(["bad"], "out"), "corrupt tar header at offset 1536")
        file("bad/x.tar", Array(bytes.prefix(512 + 300)))
        expectError(try prepare(["bad/x.tar"], "out"), "truncated")
        file("bad2/y.tar", "this is not a tar archive at all, although it is named like one")
        expectError(try prepare(["bad2"], "out"), "y.tar")
    }

    func testInvalidUTF8PolicyIsCounted() throws {
        file("u/good.txt", "fine")
        file("u/bad.txt", Array("ab".utf8) + [0xFF, 0xE2, 0x82] + Array("cd".utf8))
        let s = try prepare(["u"], "skip") { $0.valFraction = 0 }
        XCTAssertEqual(s.invalidUTF8Documents, 1)
        XCTAssertEqual(try documents("skip").train, ["fine"])
        let m = try manifest("skip")
        XCTAssertEqual((m["documents"] as! [String: Any])["invalid_utf8"] as? Int, 1)
        XCTAssertEqual(m["invalid_utf8_policy"] as? String, "skip")
        try prepare(["u"], "replace") { $0.valFraction = 0; $0.invalidUTF8 = .replace }
        XCTAssertEqual(try documents("replace").train, ["ab\u{FFFD}\u{FFFD}cd", "fine"], "one U+FFFD per maximal invalid subsequence")
        XCTAssertThrowsError(try prepare(["u"], "error") { $0.invalidUTF8 = .error }) { e in
            XCTAssertEqual(e as? EmeraldError, .invalidUTF8(path: work + "/u/bad.txt", byteOffset: 2))
        }
    }

    func testBadArgumentsAndFolders() throws {
        try FileManager.default.createDirectory(atPath: work + "/empty", withIntermediateDirectories: true)
        expectError(try prepare(["empty"], "out"), "no .txt, .jsonl, .xz, .gz or .tar files")
        expectError(try prepare(["missing"], "out"), "no such file or folder")
        file("in/a.txt", "abcd")
        file("blocker", "a file")
        expectError(try prepare(["in"], "blocker/sub"), "blocker/sub: Not a directory")
        expectError(try prepare(["in"], "blocker"), "blocker exists and is not a folder")
        expectError(try prepare(["in"], "out") { $0.valFraction = 1 }, "val_fraction must be in [0, 1)")
        expectError(try prepare(["in"], "out") { $0.sampleRate = 0 }, "sample_rate must be in (0, 1]")
        // A vocabulary that does not cover the text.
        file("tok.json", "{\"type\": \"char\", \"vocab\": [3, 97, 98, 99]}")
        expectError(try prepare(["in"], "out") { $0.tokenizer = self.work + "/tok.json" }, "character U+0064 'd' is not in the vocabulary")
        // A char tokenizer without U+0003 gets it appended; existing ids keep their meaning.
        file("tok2.json", "{\"type\": \"char\", \"vocab\": [97, 98, 99, 100]}")
        try prepare(["in"], "out2") { $0.tokenizer = self.work + "/tok2.json"; $0.valFraction = 0 }
        let c = try PreparedCorpus(directory: work + "/out2")
        XCTAssertEqual(c.eotID, 4)
        XCTAssertEqual(c.train.allTokens(), [0, 1, 2, 3, 4])
        expectError(try prepare(["in"], "out3") { $0.tokenizer = self.work + "/nope.json" }, "nope.json")
    }

    // MARK: - The command line

    func testPrepareThenTrainFromTheFolder() throws {
        guard let exe = EmeraldExecutable.path else { throw XCTSkip("no emerald executable next to the test bundle") }
        var text = ""
        for i in 0..<200 { text += "Dorothy and Toto walked \(i) miles to the Emerald City.\n" }
        file("corpus/book1.txt", text)
        file("corpus/book2.txt", text.uppercased())
        func run(_ args: [String]) throws -> (Int32, String) {
            let p = try Child(exe, args, in: work, stderrToStdout: true)
            XCTAssertTrue(p.wait(timeout: 120), "emerald \(args) ran past 120 s")
            return (p.exitStatus, String(decoding: p.stdout, as: UTF8.self))
        }
        // Two documents: pick a seed that sends the first to train and the second to val.
        let seed = try XCTUnwrap((UInt64(0)..<1000).first {
            !DocumentSplit.isValidation(index: 0, seed: $0, fraction: 0.5) && DocumentSplit.isValidation(index: 1, seed: $0, fraction: 0.5)
        })
        let (st, err) = try run(["prepare", "corpus", "--out", "prep", "--val-fraction", "0.5", "--seed", "\(seed)",
                                 "--shard-tokens", "4000", "--threads", "2"])
        XCTAssertEqual(st, 0, err)
        XCTAssertTrue(err.contains("wrote prep"), err)
        let m = try manifest("prep")
        let splits = m["splits"] as! [String: [String: Any]]
        XCTAssertEqual(splits["train"]!["documents"] as? Int, 1)
        XCTAssertEqual(splits["val"]!["documents"] as? Int, 1)
        XCTAssertEqual((splits["train"]!["shards"] as! [Any]).count, 3, "about 11,000 tokens in 4,000-token shards")
        let (st2, err2) = try run(["train", "--model", "bigram", "--data", "prep", "--steps", "4", "--eval-interval", "2",
                                   "--eval-iters", "1", "--batch-size", "4", "--block-size", "8", "--threads", "1", "--out", "runs"])
        XCTAssertEqual(st2, 0, err2)
        XCTAssertTrue(err2.contains("prepared corpus"), err2)
        let ck = try Checkpoint.load(from: work + "/runs/checkpoint")
        XCTAssertEqual(ck.tokenizer?.vocabularySize, try PreparedCorpus(directory: work + "/prep").vocabularySize)
        let (st3, err3) = try run(["prepare", "missing-folder", "--out", "x"])
        XCTAssertEqual(st3, 1)
        XCTAssertEqual(err3, "error: no such file or folder: missing-folder\n")
    }
}
