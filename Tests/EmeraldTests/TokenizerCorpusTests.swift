import Emerald
import Foundation
import XCTest

/// CharTokenizer, TextCorpus and the batching helpers, through the public API.
final class TokenizerCorpusTests: XCTestCase {
    // MARK: - CharTokenizer

    func testVocabularyIsSortedUniqueScalars() {
        let tok = CharTokenizer(training: "hello, world")
        XCTAssertEqual(String(String.UnicodeScalarView(tok.vocabulary)), " ,dehlorw")
        XCTAssertEqual(tok.vocabularySize, 9)
        XCTAssertEqual(tok.vocabulary.map(\.value), tok.vocabulary.map(\.value).sorted())
        XCTAssertEqual(try tok.encode(" "), [0])
        XCTAssertEqual(try tok.encode("w"), [8])
        XCTAssertEqual(try tok.encode("hello"), [4, 3, 5, 5, 6])
    }

    func testRoundTripIncludingNonASCII() throws {
        let text = "Façade café — naïve 🦁 lion\nДоротея 🌪️ e\u{301}"
        let tok = CharTokenizer(training: text)
        let ids = try tok.encode(text)
        XCTAssertEqual(ids.count, text.unicodeScalars.count, "one id per Unicode scalar")
        XCTAssertEqual(tok.decode(ids), text)
        // "é" precomposed and "e" + combining acute are different scalars.
        XCTAssertTrue(tok.vocabulary.contains("\u{E9}"))
        XCTAssertTrue(tok.vocabulary.contains("\u{301}"))
        XCTAssertTrue(tok.vocabulary.contains("ç"))
        XCTAssertTrue(tok.vocabulary.contains("\u{1F981}"))
        XCTAssertEqual(try tok.encode("🦁").count, 1)
        // 🌪️ is U+1F32A followed by the variation selector U+FE0F.
        XCTAssertEqual(try tok.encode("🌪️").count, 2)
        // Every id decodes to its scalar.
        for (i, s) in tok.vocabulary.enumerated() {
            XCTAssertEqual(tok.decode([Int32(i)]), String(s))
        }
    }

    func testCRLFIsTwoScalarsWhenNotNormalised() throws {
        let tok = CharTokenizer(training: "a\r\nb")
        XCTAssertEqual(tok.vocabularySize, 4)
        XCTAssertEqual(tok.vocabulary, ["\n", "\r", "a", "b"])
        let ids = try tok.encode("a\r\nb")
        XCTAssertEqual(ids, [2, 1, 0, 3])
        XCTAssertEqual(tok.decode(ids), "a\r\nb")
    }

    func testDecodeSkipsOutOfRangeIds() {
        let tok = CharTokenizer(training: "ab")
        XCTAssertEqual(tok.decode([0, -1, 7, 1, Int32.max, Int32.min]), "ab")
        XCTAssertEqual(tok.decode([]), "")
    }

    func testUnknownCharacterIsNamed() {
        let tok = CharTokenizer(training: "abc")
        XCTAssertThrowsError(try tok.encode("abz")) { e in
            guard case EmeraldError.unknownCharacter(let msg) = e else { return XCTFail("got \(e)") }
            XCTAssertTrue(msg.contains("character U+007A 'z' is not"), msg)
            XCTAssertTrue(msg.contains("3"), "mentions the vocabulary size: \(msg)")
        }
        XCTAssertThrowsError(try tok.encode("a\tb")) { e in
            guard case EmeraldError.unknownCharacter(let msg) = e else { return XCTFail("got \(e)") }
            XCTAssertTrue(msg.contains("U+0009 CHARACTER TABULATION"), "control/whitespace characters are shown as code points: \(msg)")
        }
        // Invisible characters are named, never printed: a BOM, a carriage return, a zero-width space.
        for (text, shown) in [("\u{FEFF}a", "U+FEFF ZERO WIDTH NO-BREAK SPACE"), ("a\r", "U+000D CARRIAGE RETURN"),
                              ("\u{200B}", "U+200B ZERO WIDTH SPACE"), ("🦁", "U+1F981 '🦁'")] {
            XCTAssertThrowsError(try tok.encode(text)) { e in XCTAssertTrue("\(e)".contains("character \(shown) is not"), "\(e)") }
        }
        XCTAssertThrowsError(try tok.encode("ç")) { e in
            guard case EmeraldError.unknownCharacter(let msg) = e else { return XCTFail("got \(e)") }
            XCTAssertTrue(msg.contains("ç"), msg)
        }
        // The first unknown character is the one named.
        XCTAssertThrowsError(try tok.encode("axy")) { e in
            XCTAssertTrue("\(e)".contains("'x'"), "\(e)")
        }
        XCTAssertEqual(try tok.encode(""), [])
    }

    func testSerializedRoundTrip() throws {
        let tok = CharTokenizer(training: "Dorothy & Eureka — ç é 🦁\n")
        let json = try tok.serialized()
        XCTAssertEqual(json["type"] as? String, "char")
        // Through real JSON bytes, as a checkpoint stores it.
        let bytes = try JSONSerialization.data(withJSONObject: json)
        let back = try JSONSerialization.jsonObject(with: bytes) as! [String: Any]
        let tok2 = try CharTokenizer(json: back, path: "tokenizer.json")
        XCTAssertEqual(tok2, tok)
        XCTAssertEqual(tok2.vocabulary, tok.vocabulary)
        let loaded = try loadTokenizer(json: back, path: "tokenizer.json")
        XCTAssertEqual(loaded as? CharTokenizer, tok)
        XCTAssertEqual(try loaded.encode("ç🦁"), try tok.encode("ç🦁"))
    }

    func testCorruptTokenizerJSON() {
        func expectCorrupt(_ json: [String: Any], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try CharTokenizer(json: json, path: "t.json"), what, file: file, line: line) { e in
                guard case EmeraldError.corruptCheckpoint(let p, _) = e else {
                    return XCTFail("\(what): got \(e)", file: file, line: line)
                }
                XCTAssertEqual(p, "t.json", file: file, line: line)
            }
        }
        expectCorrupt([:], "no vocab")
        expectCorrupt(["type": "char", "vocab": "abc"], "vocab is a string")
        expectCorrupt(["type": "char", "vocab": [Int]()], "empty vocab")
        expectCorrupt(["type": "char", "vocab": [97, 98, 97]], "duplicates")
        expectCorrupt(["type": "char", "vocab": [0xD800]], "surrogate")
        expectCorrupt(["type": "char", "vocab": [0x110000]], "beyond Unicode")
        expectCorrupt(["type": "char", "vocab": [-1]], "negative")
        expectCorrupt(["type": "char", "vocab": [0x1_0000_0061]], "wraps to 'a' when truncated to 32 bits")
        XCTAssertThrowsError(try loadTokenizer(json: ["type": "bpe", "vocab": [97]], path: "t.json")) { e in
            guard case EmeraldError.corruptCheckpoint(_, let r) = e else { return XCTFail("got \(e)") }
            XCTAssertTrue(r.contains("bpe"), r)
        }
        XCTAssertThrowsError(try loadTokenizer(json: ["vocab": [97]], path: "t.json"))
    }

    // MARK: - TextCorpus

    private func write(_ bytes: [UInt8], name: String = "f.txt") -> String {
        let path = TestSupport.tempDir("corpus") + "/" + name
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        return path
    }

    func testBOMStrippedAndNewlinesNormalised() throws {
        let path = write([0xEF, 0xBB, 0xBF] + Array("one\r\ntwo\rthree\n\r\nfour\r".utf8))
        let text = try TextCorpus.load(path: path)
        XCTAssertEqual(text, "one\ntwo\nthree\n\nfour\n")
        // A BOM later in the text is text, not a marker; only the leading one goes.
        XCTAssertEqual(try TextCorpus.decode(Data("a\u{FEFF}b".utf8), path: "x"), "a\u{FEFF}b")
        XCTAssertEqual(try TextCorpus.decode(Data("\u{FEFF}\u{FEFF}x".utf8), path: "x"), "\u{FEFF}x")
        // Non-ASCII survives untouched.
        XCTAssertEqual(try TextCorpus.decode(Data("ç é 🦁\r\n".utf8), path: "x"), "ç é 🦁\n")
    }

    func testInvalidUTF8ReportsFirstBadByte() {
        func offset(_ bytes: [UInt8]) -> Int? {
            do { _ = try TextCorpus.decode(Data(bytes), path: "p.txt"); return nil } catch EmeraldError.invalidUTF8(let p, let o) {
                XCTAssertEqual(p, "p.txt")
                return o
            } catch { XCTFail("unexpected \(error)"); return nil }
        }
        XCTAssertEqual(offset(Array("ab".utf8) + [0xFF] + Array("cd".utf8)), 2)
        XCTAssertEqual(offset([0xFF]), 0)
        XCTAssertEqual(offset([0x80, 0x41]), 0, "lone continuation byte")
        XCTAssertEqual(offset(Array("ça".utf8) + [0xC3]), 3, "truncated 2-byte sequence at the end")
        XCTAssertEqual(offset(Array("x🦁".utf8) + [0xF0, 0x9F, 0xA6]), 5, "truncated 4-byte sequence at the end")
        XCTAssertEqual(offset(Array("abc".utf8) + [0xE2, 0x41]), 3, "3-byte lead followed by ASCII")
        XCTAssertEqual(offset([0x41, 0xC0, 0xAF]), 1, "overlong encoding")
        XCTAssertEqual(offset([0x41, 0xED, 0xA0, 0x80]), 1, "encoded surrogate")
        XCTAssertEqual(offset([0xEF, 0xBB, 0xBF, 0x41, 0xFE]), 4, "offsets count the BOM")
        XCTAssertNil(TextCorpus.firstInvalidUTF8(Array("ç é 🦁 ok".utf8)))
        XCTAssertNil(TextCorpus.firstInvalidUTF8([]))
        XCTAssertEqual(TextCorpus.firstInvalidUTF8(Array("ab".utf8) + [0xFF]), 2)

        let path = write(Array("hello ".utf8) + [0xC3, 0x28])
        XCTAssertThrowsError(try TextCorpus.load(path: path)) { e in
            XCTAssertEqual(e as? EmeraldError, .invalidUTF8(path: path, byteOffset: 6))
            XCTAssertTrue("\(e)".contains("offset 6"), "\(e)")
        }
    }

    func testEmptyMissingAndFolder() {
        let empty = write([])
        XCTAssertThrowsError(try TextCorpus.load(path: empty)) { e in
            XCTAssertEqual(e as? EmeraldError, .emptyInput(empty))
        }
        let onlyBOM = write([0xEF, 0xBB, 0xBF], name: "bom.txt")
        XCTAssertThrowsError(try TextCorpus.load(path: onlyBOM)) { e in
            XCTAssertEqual(e as? EmeraldError, .emptyInput(onlyBOM))
        }
        let missing = TestSupport.tempDir("corpus") + "/nope.txt"
        XCTAssertThrowsError(try TextCorpus.load(path: missing)) { e in
            XCTAssertEqual(e as? EmeraldError, .fileNotFound(missing))
        }
        let dir = TestSupport.tempDir("corpus")
        XCTAssertThrowsError(try TextCorpus.load(path: dir)) { e in
            guard let ee = e as? EmeraldError else { return XCTFail("got \(e)") }
            XCTAssertTrue(ee.description.contains("folder"), ee.description)
        }
    }

    func testTheBook() throws {
        let path = TestSupport.bookPath
        let raw = try XCTUnwrap(FileManager.default.contents(atPath: path))
        XCTAssertEqual(Array(raw.prefix(3)), [0xEF, 0xBB, 0xBF], "the Gutenberg file starts with a BOM")
        XCTAssertNotNil(raw.firstRange(of: Data([0x0D, 0x0A])), "and has CRLF line ends")
        let text = try TextCorpus.load(path: path)
        XCTAssertFalse(text.unicodeScalars.contains("\u{FEFF}"))
        XCTAssertFalse(text.unicodeScalars.contains("\r"))
        XCTAssertTrue(text.hasPrefix("  DOROTHY AND THE WIZARD IN OZ"), String(text.prefix(40)))
        XCTAssertEqual(text.unicodeScalars.count, 232_308)
        let tok = CharTokenizer(training: text)
        XCTAssertEqual(tok.vocabularySize, 80)
        XCTAssertEqual(tok.vocabulary.first, "\n")
        XCTAssertTrue(tok.vocabulary.allSatisfy { $0.isASCII })
        let ids = try tok.encode(text)
        XCTAssertEqual(ids.count, 232_308)
        XCTAssertEqual(tok.decode(ids), text)
        // The binary's copy is the repository's file, read the same way.
        XCTAssertEqual(ShippedAsset.book.data, raw)
        XCTAssertEqual(try Book.text(), text)
        let (train, val) = trainValSplit(ids)
        XCTAssertEqual(train.count, 209_077)
        XCTAssertEqual(val.count, 23_231)
    }

    // MARK: - Split and batches

    func testTrainValSplit() {
        let ids = (0..<1000).map(Int32.init)
        let (train, val) = trainValSplit(ids)
        XCTAssertEqual(train.count, 900)
        XCTAssertEqual(val.count, 100)
        XCTAssertEqual(train.tokens, Array(ids[..<900]))
        XCTAssertEqual(val.tokens, Array(ids[900...]))
        let (t2, v2) = trainValSplit(Array(ids[..<10]), valFraction: 0.2)
        XCTAssertEqual([t2.count, v2.count], [8, 2])
        let (t3, v3) = trainValSplit([], valFraction: 0.1)
        XCTAssertEqual([t3.count, v3.count], [0, 0])
    }

    func testBatcherTargetsAreShiftedInputs() throws {
        let source = TokenArray((0..<200).map(Int32.init))  // token value == its position
        var b = try Batcher(source: source, batchSize: 4, blockSize: 8, seed: 1)
        for _ in 0..<20 {
            let batch = b.next()
            XCTAssertEqual(batch.inputs.count, 32)
            XCTAssertEqual(batch.targets.count, 32)
            XCTAssertEqual(batch.batchSize, 4)
            XCTAssertEqual(batch.blockSize, 8)
            for row in 0..<4 {
                let x = Array(batch.inputs[row * 8..<(row + 1) * 8])
                let y = Array(batch.targets[row * 8..<(row + 1) * 8])
                XCTAssertEqual(y, x.map { $0 + 1 })
                XCTAssertEqual(x, Array(x[0]..<x[0] + 8), "a contiguous window")
                XCTAssertGreaterThanOrEqual(x[0], 0)
                XCTAssertLessThanOrEqual(y[7], 199)
            }
        }
    }

    func testBatcherIsSeeded() throws {
        let source = TokenArray(TestSupport.ids(500, vocab: 13))
        var a = try Batcher(source: source, batchSize: 3, blockSize: 5, seed: 42)
        var b = try Batcher(source: source, batchSize: 3, blockSize: 5, seed: 42)
        var c = try Batcher(source: source, batchSize: 3, blockSize: 5, seed: 43)
        var differs = false
        for _ in 0..<10 {
            let (x, y, z) = (a.next(), b.next(), c.next())
            XCTAssertEqual(x.inputs, y.inputs)
            XCTAssertEqual(x.targets, y.targets)
            if x.inputs != z.inputs { differs = true }
        }
        XCTAssertTrue(differs, "another seed gives other batches")
        // The generator state is the whole story: copying it replays the stream.
        var d = try Batcher(source: source, batchSize: 3, blockSize: 5, seed: 0)
        d.rng = a.rng
        XCTAssertEqual(d.next().inputs, a.next().inputs)
    }

    func testBatcherRejectsBadShapes() throws {
        let source = TokenArray((0..<10).map(Int32.init))
        for (b, t) in [(1, 10), (1, 11), (1, 100_000), (0, 2), (-1, 2), (2, 0), (2, -3)] {
            XCTAssertThrowsError(try Batcher(source: source, batchSize: b, blockSize: t, seed: 0), "B \(b) T \(t)") { e in
                guard case EmeraldError.invalidArgument = e else { return XCTFail("got \(e)") }
            }
        }
        XCTAssertThrowsError(try Batcher(source: source, batchSize: 1, blockSize: 10, seed: 0, name: "the validation split")) { e in
            XCTAssertTrue("\(e)".contains("the validation split"), "\(e)")
        }
        // The largest block that fits: every window is the whole stream.
        var ok = try Batcher(source: source, batchSize: 2, blockSize: 9, seed: 0)
        let batch = ok.next()
        XCTAssertEqual(Array(batch.inputs[..<9]), (0..<9).map(Int32.init))
        XCTAssertEqual(Array(batch.targets[..<9]), (1..<10).map(Int32.init))
    }

    func testSweepCoversEveryTargetOnce() {
        let source = TokenArray((0..<203).map(Int32.init))  // token value == its position
        let batches = Batcher.sweep(source, batchSize: 4, blockSize: 10)
        // 20 whole windows (202 targets, the last 2 left out): batches of 4, 4, 4, 4, 4.
        XCTAssertEqual(batches.map(\.batchSize), [4, 4, 4, 4, 4])
        let targets = batches.flatMap(\.targets), inputs = batches.flatMap(\.inputs)
        XCTAssertEqual(targets, (1...200).map(Int32.init), "each target once, in order")
        XCTAssertEqual(inputs, (0..<200).map(Int32.init))
        let short = Batcher.sweep(source, batchSize: 3, blockSize: 25)  // 8 windows: 3, 3, 2
        XCTAssertEqual(short.map(\.batchSize), [3, 3, 2])
        XCTAssertEqual(short.last?.inputs.count, 50)
    }
}
