import Emerald
import Foundation
import XCTest

/// `emerald prepare --tokenizer char` in one pass: the output must equal the
/// sorted-vocabulary reference whatever the guess (`charGuessTokens`), the
/// thread count or the order in which characters first appear.
extension PrepareTests {
    /// Writes `docs` as JSON lines, one file per group; returns every document in input order.
    private func charCorpus(_ folder: String, _ groups: [[String]]) throws -> [String] {
        for (i, g) in groups.enumerated() {
            let lines = try g.map { String(decoding: try JSONSerialization.data(withJSONObject: ["text": $0]), as: UTF8.self) }
            file("\(folder)/part\(i).jsonl", lines.joined(separator: "\n") + "\n")
        }
        return groups.flatMap { $0 }
    }

    /// Checks `out` against `CharTokenizer(training:)` over every document (sampled out or not).
    private func assertMatchesReference(_ out: String, all: [String], seed: UInt64, fraction: Double, rate: Double = 1,
                                        line: UInt = #line) throws {
        let reference = CharTokenizer(training: all.joined() + "\u{3}")
        let c = try PreparedCorpus(directory: work + "/" + out)
        XCTAssertEqual((c.tokenizer as? CharTokenizer)?.vocabulary, reference.vocabulary, "sorted scalars + U+0003", line: line)
        let eot = try XCTUnwrap(reference.endOfTextID)
        XCTAssertEqual(c.eotID, eot, line: line)
        var train: [Int32] = [], val: [Int32] = []
        for (i, d) in all.enumerated() where DocumentSplit.isSampled(index: i, seed: seed, rate: rate) {
            let ids = try reference.encode(d.replacingOccurrences(of: "\u{3}", with: "")) + [eot]
            if DocumentSplit.isValidation(index: i, seed: seed, fraction: fraction) { val += ids } else { train += ids }
        }
        XCTAssertEqual(c.train.allTokens(), train, "train ids", line: line)
        XCTAssertEqual(c.val.allTokens(), val, "val ids", line: line)
        XCTAssertEqual(c.train.width, reference.vocabularySize <= 65536 ? 2 : 4, line: line)
    }

    /// The shard files and manifest (timing aside) of two outputs are identical.
    private func assertSameFiles(_ a: String, _ b: String, line: UInt = #line) throws {
        let fm = FileManager.default
        let names = try fm.contentsOfDirectory(atPath: work + "/" + a).sorted()
        XCTAssertEqual(names, try fm.contentsOfDirectory(atPath: work + "/" + b).sorted(), line: line)
        for n in names where n != "manifest.json" {
            XCTAssertEqual(fm.contents(atPath: work + "/\(a)/\(n)"), fm.contents(atPath: work + "/\(b)/\(n)"), n, line: line)
        }
        var ma = try manifest(a), mb = try manifest(b)
        for k in ["seconds", "sources"] { ma[k] = nil; mb[k] = nil }
        XCTAssertEqual(NSDictionary(dictionary: ma), NSDictionary(dictionary: mb), line: line)
    }

    func testCharOnePassEqualsTheSortedReference() throws {
        // Later files bring characters that sort before, between and after the first ones, so guesses fail.
        let all = try charCorpus("c", [
            ["plain words here", "more words, and punctuation!", "zebra"],
            ["Ünïcödé — dash “quoted”", "tab\there, ~tilde and \u{3} end-of-text inside"],
            ["漢字 and 🙂 emoji", "A capital, \u{1} a control", "über Straße"],
            ["{braces} [brackets] 0123456789", "\u{10FFFD} the last plane", "back to words"],
        ])
        let runs: [(threads: Int, guess: Int)] = [(2, 1 << 22), (1, 0), (2, 0), (2, 5), (2, 40), (3, 90)]
        final class Lines: @unchecked Sendable { var all: [String] = [] }
        for (k, r) in runs.enumerated() {
            let lines = Lines()
            try prepare(["c"], "o\(k)") {
                $0.threads = r.threads; $0.charGuessTokens = r.guess; $0.seed = 3; $0.valFraction = 0.3; $0.shardTokens = 16
                $0.log = { lines.all.append($0) }
            }
            try assertMatchesReference("o\(k)", all: all, seed: 3, fraction: 0.3)
            let finish = lines.all.first { $0.hasPrefix("prepare ids:") } ?? ""
            XCTAssertTrue(finish.contains(r.guess > 1000 ? "no shard needed new ids" : "rewrote"), finish)
            if k > 0 { try assertSameFiles("o0", "o\(k)") }
        }
        // Sampled-out documents still contribute their characters.
        try prepare(["c"], "s") { $0.sampleRate = 0.5; $0.seed = 3; $0.valFraction = 0.3; $0.charGuessTokens = 0; $0.shardTokens = 16 }
        try assertMatchesReference("s", all: all, seed: 3, fraction: 0.3, rate: 0.5)
        XCTAssertTrue(try FileManager.default.contentsOfDirectory(atPath: work + "/s").allSatisfy { !$0.hasSuffix(".tmp") })
    }

    func testCharOnePassWidensWhenTheVocabularyOutgrowsUInt16() throws {
        func run(_ from: UInt32, _ n: UInt32) -> String {
            var v = String.UnicodeScalarView()
            for c in from..<(from + n) { v.append(Unicode.Scalar(c)!) }
            return String(v)
        }
        // 70,000 characters arrive after the guess; the tab at the end moves every id.
        let all = try charCorpus("w", [["early text", run(0x4E00, 1000)], [run(0x4E00 + 1000, 19_000)],
                                       [run(0x20000, 50_000), "short"], ["a\tb"]])
        try prepare(["w"], "held") { $0.valFraction = 0; $0.shardTokens = 7000 }  // everything fits the guess
        try prepare(["w"], "wide") { $0.valFraction = 0; $0.shardTokens = 7000; $0.charGuessTokens = 5 }
        try prepare(["w"], "one") { $0.valFraction = 0; $0.shardTokens = 7000; $0.charGuessTokens = 5; $0.threads = 1 }
        try assertMatchesReference("wide", all: all, seed: 1337, fraction: 0)
        XCTAssertEqual(try manifest("wide")["dtype"] as? String, "uint32")
        try assertSameFiles("held", "wide")
        try assertSameFiles("held", "one")
    }

    func testDecoderMatchesSwiftUTF8DecodingOnRandomBytes() {
        func reference(_ b: [UInt8]) -> [UInt32] {
            let body = b.starts(with: [0xEF, 0xBB, 0xBF]) ? Array(b.dropFirst(3)) : b
            var out: [UInt32] = [], lastCR = false
            for u in String(decoding: body, as: UTF8.self).unicodeScalars {
                if u.value == 0x0D { out.append(0x0A); lastCR = true; continue }
                if u.value == 0x0A && lastCR { lastCR = false; continue }
                lastCR = false
                out.append(u.value)
            }
            return out
        }
        // ASCII runs (the fast path), CR/LF mixes, multi-byte scalars, a BOM and stray bytes.
        let pieces: [[UInt8]] = [Array("plain ascii text".utf8), [0x0D], [0x0A], [0x0D, 0x0A], Array("ü—🙂漢".utf8), [0xEF, 0xBB, 0xBF],
                                 [0xFF], [0xE2, 0x82], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], Array("12345678".utf8)]
        var rng = SystemRandomNumberGenerator()
        var decoder = DocumentDecoder()
        for _ in 0..<3000 {
            var bytes: [UInt8] = []
            for _ in 0..<Int.random(in: 0...12, using: &rng) { bytes += pieces.randomElement(using: &rng)! }
            bytes.withUnsafeBufferPointer { decoder.decode($0) }
            XCTAssertEqual(decoder.scalars, reference(bytes), "\(bytes)")
            XCTAssertEqual(decoder.invalidCount > 0, String(validating: bytes, as: UTF8.self) == nil, "\(bytes)")
        }
    }

    func testFailedCharRunLeavesNoCompleteLookingOutput() throws {
        for i in 0..<20 { file("f/a\(i).txt", "document \(i) with some text, ü and 🙂 " + String(repeating: "x", count: i * 10)) }
        var text = ""
        for i in 0..<3000 { text += "line \(i) of a compressible but not trivial text \(i * 7919 % 1000)\n" }
        file("f/z.txt", text)
        try sh("xz", ["-z", "f/z.txt"])
        let data = try XCTUnwrap(FileManager.default.contents(atPath: work + "/f/z.txt.xz"))
        file("f/z.txt.xz", Array(data.prefix(data.count / 2)))  // the last input fails after shards were written
        expectError(try prepare(["f"], "out") { $0.shardTokens = 50; $0.charGuessTokens = 0 }, "truncated")
        let names = try FileManager.default.contentsOfDirectory(atPath: work).filter { $0.hasPrefix("out") }
        XCTAssertEqual(names, [], "no output folder and no temporary sibling: the run wrote into one, removed on failure")
        XCTAssertFalse(PreparedCorpus.isPrepared(work + "/out"))
    }

    func testKilledCharRunNeverLeavesAnIncompleteShardUnderAFinalName() throws {
        guard let exe = EmeraldExecutable.path else { throw XCTSkip("no emerald executable next to the test bundle") }
        var line = ""
        for i in 0..<400 { line += "word\(i % 37) ü — “\(i)” " }
        for f in 0..<8 { file("k/part\(f).txt", String(repeating: line + "\n", count: 300 + f)) }
        func start(_ out: String) throws -> Child {
            try Child(exe, ["prepare", "k", "--out", out, "--shard-tokens", "500000", "--threads", "2", "--quiet"], in: work)
        }
        let t0 = Date()
        let clean = try start("clean")
        clean.wait(timeout: 120)
        XCTAssertEqual(clean.exitStatus, 0)
        let duration = Date().timeIntervalSince(t0)
        let fm = FileManager.default
        // Kills at several points of the run (the invariants hold at any of them).
        for (k, delay) in [0.15, 0.3, 0.45, 0.6, 0.75, 0.9].map({ $0 * duration }).enumerated() {
            let p = try start("killed\(k)")
            usleep(useconds_t(delay * 1e6))
            p.send(SIGKILL)
            p.wait(timeout: 30)
            // The final name appears only complete; a killed run's work is in its temporary sibling.
            if fm.fileExists(atPath: work + "/killed\(k)") { try assertSameFiles("clean", "killed\(k)"); continue }
            // Killed before it created anything (still starting up): nothing to check but the next run.
            let sibling = try fm.contentsOfDirectory(atPath: work).first { $0.hasPrefix("killed\(k).tmp-") }
            let dir = work + "/" + (sibling ?? "killed\(k).tmp-none")
            let names = (try? fm.contentsOfDirectory(atPath: dir)) ?? []
            XCTAssertFalse(names.contains("manifest.json") && names.contains { $0.hasSuffix(".tmp") })
            for n in names where n.hasSuffix(".bin") {
                XCTAssertEqual(fm.contents(atPath: dir + "/" + n), fm.contents(atPath: work + "/clean/" + n), "\(n) after \(delay) s")
            }
            for n in names where n.hasSuffix(".tmp") {
                // The header goes in last, after the tokens are final and just before the rename, so
                // a kill can land between the two: a `.tmp` that carries the magic must then already
                // hold exactly the finished shard; one without it is still being written.
                let bytes = fm.contents(atPath: dir + "/" + n) ?? Data()
                if Array(bytes.prefix(8)) == TokenShard.magic {
                    XCTAssertEqual(bytes, fm.contents(atPath: work + "/clean/" + n.dropLast(4)), "\(n) after \(delay) s has a header but not the finished tokens")
                }
            }
            // The next run into the same folder clears the dead run's sibling and completes.
            let again = try start("killed\(k)")
            again.wait(timeout: 120)
            XCTAssertEqual(again.exitStatus, 0)
            try assertSameFiles("clean", "killed\(k)")
            XCTAssertFalse(fm.fileExists(atPath: dir), "litter of the dead run removed")
        }
    }
}
