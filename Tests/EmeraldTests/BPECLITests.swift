import Emerald
import Foundation
import XCTest

/// `emerald tokenize` and `emerald tokenizer train|convert`, through the built executable.
final class BPECLITests: XCTestCase {
    struct Result {
        var status: Int32
        var stdout: [UInt8]
        var stderr: String
        var text: String { String(decoding: stdout, as: UTF8.self) }
    }

    private var work = ""

    override func setUpWithError() throws {
        guard EmeraldExecutable.path != nil else { throw XCTSkip("no emerald executable next to the test bundle; build with --build-tests") }
        work = TestSupport.tempDir("bpecli")
    }

    override func tearDown() {
        if !work.isEmpty { try? FileManager.default.removeItem(atPath: work) }
    }

    private func emerald(_ args: [String], stdin: [UInt8] = [], timeout: TimeInterval = 60) throws -> Result {
        let r = try EmeraldExecutable.run(args, in: work, stdin: stdin, timeout: timeout)
        return Result(status: r.status, stdout: r.stdout, stderr: r.stderr)
    }

    private func expectFailure(_ args: [String], stdin: [UInt8] = [], _ phrase: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try EmeraldExecutable.run(args, in: work, stdin: stdin)
        EmeraldExecutable.assertCleanFailure(r, "emerald " + args.joined(separator: " "), phrase, file: file, line: line)
    }

    private func gpt2Dir() throws -> String {
        TestSupport.gpt2Dir
    }

    func testTokenizeAndDecodeGPT2() throws {
        let g = try gpt2Dir()
        var r = try emerald(["tokenize", "--tokenizer", g, "Hello world"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.text, "[15496, 995]\n")
        r = try emerald(["tokenize", "--tokenizer", g], stdin: Array("Hello world".utf8))
        XCTAssertEqual(r.text, "[15496, 995]\n")
        r = try emerald(["tokenize", "--tokenizer", g, "--allow-special", "<|endoftext|>"])
        XCTAssertEqual(r.text, "[50256]\n")
        r = try emerald(["tokenize", "--tokenizer", g, "<|endoftext|>"])
        XCTAssertNotEqual(r.text, "[50256]\n")
        r = try emerald(["tokenize", "--tokenizer", g, ""])
        XCTAssertEqual(r.text, "[]\n")
        r = try emerald(["tokenize", "--tokenizer", g, "--decode", "[15496, 995]"])
        XCTAssertEqual(r.text, "Hello world")
        r = try emerald(["tokenize", "--tokenizer", g, "--decode"], stdin: Array("15496,995, 50256".utf8))
        XCTAssertEqual(r.text, "Hello world<|endoftext|>")
        // "gpt2" is the tokenizer compiled into the binary: no files, no download.
        r = try emerald(["tokenize", "--tokenizer", "gpt2", "Hello world"])
        XCTAssertEqual(r.text, "[15496, 995]\n", r.stderr)
    }

    func testTokenizeBadInput() throws {
        let g = try gpt2Dir()
        try expectFailure(["tokenize", "--tokenizer", "missing.json", "x"], "no such file or folder: missing.json")
        try expectFailure(["tokenize", "--tokenizer", g, "--decode", "[1, x]"], "\"x\" is not an integer id")
        try expectFailure(["tokenize", "--tokenizer", g, "--decode", "[99999]"], "outside the vocabulary")
        try expectFailure(["tokenize", "--tokenizer", g], stdin: [0x61, 0xFF], "stdin is not valid UTF-8 (first bad byte at offset 1)")
        _ = FileManager.default.createFile(atPath: work + "/wp.json", contents: Data("{\"model\": {\"type\": \"WordPiece\"}}".utf8))
        try expectFailure(["tokenize", "--tokenizer", "wp.json", "x"], "WordPiece")
    }

    func testTrainThenTokenizeRoundTrip() throws {
        let corpus = String(repeating: "Dorothy met the Wizard of Oz, and the Scarecrow sang a song.\nThe lion roared; Toto barked!\n", count: 30)
        _ = FileManager.default.createFile(atPath: work + "/small.txt", contents: Data(corpus.utf8))
        var r = try emerald(["tokenizer", "train", "--data", "small.txt", "--vocab-size", "300", "--out", "tok.json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let tok = try ByteLevelBPETokenizer.load(path: work + "/tok.json")
        XCTAssertEqual(tok.vocabularySize, 300)
        XCTAssertEqual(tok.specialTokens, ["<|endoftext|>": 299])
        let text = "The Wizard sang — ação 🦁"
        r = try emerald(["tokenize", "--tokenizer", "tok.json", text])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.text, "[" + tok.encode(text).map { String($0) }.joined(separator: ", ") + "]\n")
        r = try emerald(["tokenize", "--tokenizer", "tok.json", "--decode", String(r.text.dropLast())])
        XCTAssertEqual(r.text, text)
        // A folder corpus trains the same as the file.
        try FileManager.default.createDirectory(atPath: work + "/corpus/sub", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: work + "/corpus/sub/a.txt", contents: Data(corpus.utf8))
        r = try emerald(["tokenizer", "train", "--data", "corpus", "--vocab-size", "300", "--out", "tok2.json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try ByteLevelBPETokenizer.load(path: work + "/tok2.json").merges, tok.merges)

        try expectFailure(["tokenizer", "train", "--data", "small.txt", "--vocab-size", "10", "--out", "x.json"], "--vocab-size must be in 257...1000000")
        try expectFailure(["tokenizer", "train", "--data", "nope.txt", "--vocab-size", "300", "--out", "x.json"], "no such file or folder: nope.txt")
        XCTAssertFalse(FileManager.default.fileExists(atPath: work + "/x.json"))
    }

    func testConvertGPT2ToTokenizerJSON() throws {
        let g = try gpt2Dir()
        let r = try emerald(["tokenizer", "convert", "--tokenizer", g, "--out", "gpt2.json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let tok = try ByteLevelBPETokenizer.load(path: work + "/gpt2.json")
        XCTAssertEqual(tok.encode("Hello world"), [15496, 995])
        XCTAssertEqual(tok.specialTokens, ["<|endoftext|>": 50256])
    }
}
