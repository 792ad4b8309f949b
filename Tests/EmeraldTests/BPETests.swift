import Emerald
import Foundation
import XCTest

/// Byte-level BPE: GPT-2's ids (against tiktoken / Hugging Face fixtures from
/// scripts/reference/bpe_fixtures.py), file formats, training, round trips and bad input.
final class BPETests: XCTestCase {
    // MARK: - Helpers

    static var gpt2Dir: String { TestSupport.gpt2Dir }

    private static let gpt2Loaded: Result<ByteLevelBPETokenizer, Error> = Result {
        try ByteLevelBPETokenizer.load(vocabularyPath: BPETests.gpt2Dir + "/encoder.json", mergesPath: BPETests.gpt2Dir + "/vocab.bpe")
    }

    /// GPT-2's tokenizer from the repository's assets/gpt2.
    func gpt2() throws -> ByteLevelBPETokenizer { try Self.gpt2Loaded.get() }

    static func fixtureURL(_ name: String, _ ext: String) throws -> URL {
        guard let url = Bundle.module.url(forResource: name, withExtension: ext, subdirectory: "Fixtures") else {
            throw EmeraldError.fileNotFound("fixture \(name).\(ext) (scripts/reference/bpe_fixtures.py writes it)")
        }
        return url
    }

    private static let fixtureLoaded: Result<[String: Any], Error> = Result {
        let data = try Data(contentsOf: try BPETests.fixtureURL("bpe_gpt2", "json"))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    func fixture() throws -> [String: Any] { try Self.fixtureLoaded.get() }

    func testShippedGPT2EqualsTheFiles() throws {
        XCTAssertEqual(ShippedAsset.gpt2Encoder.data, FileManager.default.contents(atPath: Self.gpt2Dir + "/encoder.json"))
        XCTAssertEqual(ShippedAsset.gpt2Merges.data, FileManager.default.contents(atPath: Self.gpt2Dir + "/vocab.bpe"))
        let shipped = try ByteLevelBPETokenizer.gpt2()
        XCTAssertEqual(shipped.vocabularySize, 50_257)
        XCTAssertEqual(shipped.tokenizerJSONData(), try gpt2().tokenizerJSONData())
        XCTAssertEqual(shipped.encode("Hello world"), [15496, 995])
    }

    func trained() throws -> ByteLevelBPETokenizer {
        try ByteLevelBPETokenizer.load(path: try Self.fixtureURL("bpe_trained_oz", "json").path)
    }

    static func bytes(hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var it = hex.utf8.makeIterator()
        func nibble(_ c: UInt8) -> UInt8 { c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x61 + 10 }
        while let hi = it.next(), let lo = it.next() { out.append(nibble(hi) << 4 | nibble(lo)) }
        return out
    }

    static func ids(_ any: Any?) -> [Int32]? { (any as? [Int])?.map { Int32($0) } }

    func assertThrowsTokenizerError(_ body: @autoclosure () throws -> Any, _ phrases: [String],
                                    file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { e in
            guard case EmeraldError.invalidTokenizer = e else { return XCTFail("expected invalidTokenizer, got \(e)", file: file, line: line) }
            for p in phrases { XCTAssertTrue("\(e)".contains(p), "\(e) should mention \(p)", file: file, line: line) }
        }
    }

    // MARK: - Byte-level alphabet and pre-tokenizer

    func testByteLevelAlphabet() {
        XCTAssertEqual(ByteLevel.bytesInIdOrder.count, 256)
        XCTAssertEqual(Set(ByteLevel.bytesInIdOrder).count, 256)
        XCTAssertEqual(ByteLevel.bytesInIdOrder.first, 0x21)   // "!" has id 0 in GPT-2
        XCTAssertEqual(ByteLevel.encode([0x20]), "Ġ")
        XCTAssertEqual(ByteLevel.encode([0x0A]), "Ċ")
        XCTAssertEqual(ByteLevel.encode(Array("hi".utf8)), "hi")
        let all = (0...255).map { UInt8($0) }
        XCTAssertEqual(ByteLevel.decode(ByteLevel.encode(all)), all)
        XCTAssertNil(ByteLevel.decode("€"))
    }

    func testPreTokenizerSplitsLikeGPT2() {
        let cases: [(String, [String])] = [
            ("Hello world", ["Hello", " world"]),
            ("  word", [" ", " word"]),
            ("a  \nb", ["a", "  ", "\n", "b"]),
            ("don't DON'T", ["don", "'t", " DON", "'", "T"]),
            ("we're 'll ''s", ["we", "'re", " '", "ll", " ''", "s"]),
            ("x   ", ["x", "   "]),
            ("e\u{301}", ["e", "\u{301}"]),
            ("123abc 4", ["123", "abc", " 4"]),
            (" !!?", [" !!?"]),
            ("\t\tx", ["\t", "\t", "x"]),
            ("a\u{A0}b", ["a", "\u{A0}", "b"]),
            ("a \u{3000}b", ["a", " ", "\u{3000}", "b"]),
            ("東京 🦁🦁", ["東京", " 🦁🦁"]),
            ("", []),
        ]
        for (text, expected) in cases {
            XCTAssertEqual(GPT2PreTokenizer.split(text), expected, text.debugDescription)
        }
    }

    // MARK: - GPT-2 against tiktoken / Hugging Face

    func testGPT2BasicsAndSpecialTokens() throws {
        let tok = try gpt2()
        XCTAssertEqual(tok.vocabularySize, 50257)
        XCTAssertEqual(tok.merges.count, 50000)
        XCTAssertEqual(tok.specialTokens, ["<|endoftext|>": 50256])
        XCTAssertEqual(tok.encode("Hello world"), [15496, 995])
        XCTAssertEqual(tok.encode(""), [])
        XCTAssertEqual(tok.tokenString(995), "Ġworld")
        XCTAssertEqual(tok.tokenBytes(995), Array(" world".utf8))
        // Ordinary by default; recognised only when allowed.
        XCTAssertNotEqual(tok.encodeOrdinary("<|endoftext|>"), [50256])
        XCTAssertEqual(tok.encode("<|endoftext|>", allowedSpecial: ["<|endoftext|>"]), [50256])
        XCTAssertEqual(tok.encode("<|endoftext|>", allowedSpecial: []), tok.encodeOrdinary("<|endoftext|>"))
        XCTAssertEqual(tok.decode([15496, 995, 50256]), "Hello world<|endoftext|>")
        XCTAssertEqual(tok.decode([15496, -1, 60000, 995]), "Hello world", "unknown ids are skipped")
    }

    func testGPT2FixtureIds() throws {
        let tok = try gpt2()
        let cases = try XCTUnwrap(try fixture()["gpt2"] as? [[String: Any]])
        XCTAssertGreaterThanOrEqual(cases.count, 30)
        for c in cases {
            let name = c["name"] as! String
            let bytes = Self.bytes(hex: c["utf8"] as! String)
            let text = String(decoding: bytes, as: UTF8.self)
            XCTAssertEqual(Array(text.utf8), bytes, name)
            let ordinary = try XCTUnwrap(Self.ids(c["ordinary"]), name)
            let all = Self.ids(c["all"]) ?? ordinary
            let hf = Self.ids(c["hf"]) ?? all
            XCTAssertEqual(tok.encodeOrdinary(text), ordinary, "\(name): tiktoken encode_ordinary")
            XCTAssertEqual(try tok.encode(utf8: bytes), ordinary, name)
            XCTAssertEqual(tok.encode(text, allowedSpecial: tok.allSpecialTokens), all, "\(name): tiktoken allowed_special=all")
            XCTAssertEqual(hf, all, "\(name): Hugging Face tokenizers agrees with tiktoken")
            XCTAssertEqual(tok.decodeBytes(ordinary), bytes, "\(name): decode bytes")
            XCTAssertEqual(Array(tok.decode(ordinary).utf8), bytes, "\(name): decode text")
            XCTAssertEqual(Array(tok.decode(all).utf8), bytes, "\(name): decode with special ids")
        }
        let problems = try fixture()["problems"] as? [String] ?? []
        XCTAssertEqual(problems, [], "the fixture script found disagreements")
    }

    func testDecodeOfCutSequencesMatchesHuggingFace() throws {
        let tok = try gpt2()
        let cases = try XCTUnwrap(try fixture()["decode"] as? [[String: Any]])
        XCTAssertGreaterThan(cases.count, 10)
        for c in cases {
            let ids = Self.ids(c["ids"])!
            XCTAssertEqual(Array(tok.decode(ids).utf8), Self.bytes(hex: c["hf"] as! String), "\(ids)")
        }
    }

    // MARK: - File forms

    func testHuggingFaceNamesTokenizerJSONAndCheckpointForms() throws {
        let tok = try gpt2()
        let dir = TestSupport.tempDir("bpeforms")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fm = FileManager.default
        try fm.copyItem(atPath: Self.gpt2Dir + "/encoder.json", toPath: dir + "/vocab.json")
        try fm.copyItem(atPath: Self.gpt2Dir + "/vocab.bpe", toPath: dir + "/merges.txt")
        let sample = "Dorothy's 🦁 roared — \"I'm off\", 1234 times.\r\n"
        let expected = tok.encodeOrdinary(sample)
        XCTAssertEqual(try ByteLevelBPETokenizer.load(path: dir).encodeOrdinary(sample), expected)
        XCTAssertEqual(try ByteLevelBPETokenizer.load(path: dir + "/vocab.json").encodeOrdinary(sample), expected)
        XCTAssertEqual(try ByteLevelBPETokenizer.load(path: Self.gpt2Dir + "/vocab.bpe").encodeOrdinary(sample), expected)

        // tokenizer.json, through real JSON bytes as a checkpoint stores it.
        let json = try tok.serialized()
        XCTAssertEqual((json["model"] as? [String: Any])?["type"] as? String, "BPE")
        try AtomicFile.writeJSON(json, to: dir + "/tokenizer.json")
        let any = try loadTokenizer(json: AtomicFile.readJSON(dir + "/tokenizer.json"), path: dir + "/tokenizer.json")
        let back = try XCTUnwrap(any as? ByteLevelBPETokenizer)
        XCTAssertEqual(back.vocabularySize, 50257)
        XCTAssertEqual(back.merges, tok.merges)
        XCTAssertEqual(back.specialTokens, tok.specialTokens)
        XCTAssertEqual(back.encodeOrdinary(sample), expected)
        XCTAssertEqual(try ByteLevelBPETokenizer.load(path: dir).encodeOrdinary(sample), expected, "a folder with tokenizer.json")
    }

    func testSavedTokenizerJSONEscapesAndRoundTrips() throws {
        let special = "<|a\"b\\c\n\u{1}é|>"
        let tok = try BPETrainer(vocabularySize: 300, specialTokens: ["<|endoftext|>", special]).train(texts: ["aaabdaaabac \"quoted\" \\ back"])
        let dir = TestSupport.tempDir("bpesave")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try tok.save(to: dir + "/tokenizer.json")
        let back = try ByteLevelBPETokenizer.load(path: dir + "/tokenizer.json")
        XCTAssertEqual(back.specialTokens, tok.specialTokens)
        XCTAssertEqual(back.merges, tok.merges)
        XCTAssertEqual(back.encode(special, allowedSpecial: [special]), [tok.specialTokens[special]!])
        XCTAssertEqual(tok.tokenizerJSONData(), back.tokenizerJSONData(), "deterministic bytes")
    }

    func testCheckpointCarriesTrainedTokenizer() throws {
        let tok = try trained()
        var rng = RandomGenerator(seed: 3)
        let model = BigramLanguageModel(BigramConfig(vocabSize: tok.vocabularySize), rng: &rng)
        let dir = TestSupport.tempDir("bpeckpt") + "/bigram"
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        try Checkpoint(model: model, tokenizer: tok).save(to: dir)
        let back = try Checkpoint.load(from: dir)
        let bpe = try XCTUnwrap(back.tokenizer as? ByteLevelBPETokenizer)
        let text = "Dorothy and the Wizard — ação 🦁"
        XCTAssertEqual(bpe.encode(text), tok.encode(text))
        XCTAssertEqual(bpe.merges, tok.merges)
        XCTAssertEqual(FileManager.default.contents(atPath: dir + "/tokenizer.json"), tok.tokenizerJSONData())
    }

    // MARK: - Training

    func testTrainedFixtureEncodesLikeHuggingFace() throws {
        let tok = try trained()
        let fx = try XCTUnwrap(try fixture()["trained"] as? [String: Any])
        XCTAssertEqual(tok.vocabularySize, fx["vocab_size"] as? Int)
        let cases = try XCTUnwrap(fx["cases"] as? [[String: Any]])
        var texts: [String: String] = [:]
        for c in try XCTUnwrap(try fixture()["gpt2"] as? [[String: Any]]) { texts[c["name"] as! String] = c["utf8"] as? String }
        XCTAssertEqual(cases.count, texts.count)
        for c in cases {
            let name = c["name"] as! String
            let bytes = Self.bytes(hex: try XCTUnwrap(texts[name], name))
            let text = String(decoding: bytes, as: UTF8.self)
            let ids = tok.encode(text, allowedSpecial: tok.allSpecialTokens)
            XCTAssertEqual(ids, Self.ids(c["hf"]), "\(name): HF tokenizers on Emerald's tokenizer.json")
            XCTAssertEqual(tok.decodeBytes(ids), bytes, name)
            XCTAssertEqual(tok.decodeBytes(tok.encodeOrdinary(text)), bytes, name)
        }
    }

    func testTrainingReproducesFixtureAndIsThreadIndependent() throws {
        let fixtureTok = try trained()
        let texts = try BPETrainer.readCorpus(path: TestSupport.bookPath)
        let two = try BPETrainer(vocabularySize: fixtureTok.vocabularySize, threads: 2).train(texts: texts)
        let one = try BPETrainer(vocabularySize: fixtureTok.vocabularySize, threads: 1).train(texts: texts)
        XCTAssertEqual(two.merges, fixtureTok.merges, "training is deterministic and matches the committed fixture")
        XCTAssertEqual(one.merges, two.merges)
        XCTAssertEqual(BPETrainer.countPreTokens(texts, threads: 1).map { $0.bytes }, BPETrainer.countPreTokens(texts, threads: 2).map { $0.bytes })
        XCTAssertEqual(BPETrainer.countPreTokens(texts, threads: 1).map { $0.count }, BPETrainer.countPreTokens(texts, threads: 2).map { $0.count })
        XCTAssertEqual(two.vocabularySize, fixtureTok.vocabularySize)
    }

    func testTrainerOnTinyCorpus() throws {
        // "aaabdaaabac": (a,a) occurs 4 times; then (a,b) and (aa,a) tie at 2 and the smaller ids win.
        let tok = try BPETrainer(vocabularySize: 300, minFrequency: 2).train(texts: ["aaabdaaabac"])
        XCTAssertEqual(tok.merges.map { "\(tok.tokenString($0.left)!) \(tok.tokenString($0.right)!)" }, ["a a", "a b", "aa ab"])
        XCTAssertEqual(tok.vocabularySize, 260, "256 bytes + 3 merges + <|endoftext|>")
        XCTAssertEqual(tok.specialTokens, ["<|endoftext|>": 259])
        XCTAssertEqual(tok.encode("aaab"), [258])
        XCTAssertEqual(tok.decode(tok.encode("aaabdaaabac")), "aaabdaaabac")
        XCTAssertThrowsError(try BPETrainer(vocabularySize: 100).train(texts: ["x"])) { e in
            XCTAssertTrue("\(e)".contains("vocab_size must be in 257...1000000"), "\(e)")
        }
        XCTAssertThrowsError(try BPETrainer(vocabularySize: 300, minFrequency: 0).train(texts: ["x"])) { e in
            XCTAssertTrue("\(e)".contains("min_frequency must be at least 1"), "\(e)")
        }
    }

    /// The incremental trainer against a from-scratch recount at every step.
    func testIncrementalTrainerMatchesNaiveRecount() throws {
        var rng = RandomGenerator(seed: 11)
        let words = ["the", "then", "there", "hat", "that", "aaaa", "abab", "banana", "ananas", "nan", "tea", "eat"]
        for round in 0..<4 {
            var text = ""
            for _ in 0..<300 {
                text += words[rng.nextInt(below: words.count)]
                text += [" ", " ", "  ", "\n", ", "][rng.nextInt(below: 5)]
            }
            let vocab = 256 + 1 + 20 + 10 * round
            let fast = try BPETrainer(vocabularySize: vocab, minFrequency: 1 + round % 2).train(texts: [text])
            let slow = naiveTrain(BPETrainer.countPreTokens([text]), merges: vocab - 257, minFrequency: 1 + round % 2)
            XCTAssertEqual(fast.merges, slow, "round \(round)")
        }
    }

    private func naiveTrain(_ counted: [(bytes: [UInt8], count: Int)], merges limit: Int, minFrequency: Int) -> [BPEMerge] {
        var byteId = [Int32](repeating: 0, count: 256)
        for (i, b) in ByteLevel.bytesInIdOrder.enumerated() { byteId[Int(b)] = Int32(i) }
        var tokens: [[UInt8]] = ByteLevel.bytesInIdOrder.map { [$0] }
        var words = counted.map { $0.bytes.map { byteId[Int($0)] } }
        var merges: [BPEMerge] = []
        while tokens.count < 256 + limit {
            var counts: [UInt64: Int] = [:]
            for (w, word) in words.enumerated() where word.count > 1 {
                for k in 0..<(word.count - 1) {
                    counts[UInt64(UInt32(word[k])) << 32 | UInt64(UInt32(word[k + 1])), default: 0] += counted[w].count
                }
            }
            guard let best = counts.max(by: { $0.value != $1.value ? $0.value < $1.value : $0.key > $1.key }),
                  best.value >= minFrequency else { break }
            let a = Int32(best.key >> 32), b = Int32(best.key & 0xFFFF_FFFF)
            let joined = tokens[Int(a)] + tokens[Int(b)]
            let id = Int32(tokens.firstIndex(of: joined) ?? tokens.count)
            if Int(id) == tokens.count { tokens.append(joined) }
            merges.append(BPEMerge(a, b))
            for w in words.indices {
                var out: [Int32] = [], k = 0
                let word = words[w]
                while k < word.count {
                    if k + 1 < word.count && word[k] == a && word[k + 1] == b { out.append(id); k += 2 } else { out.append(word[k]); k += 1 }
                }
                words[w] = out
            }
        }
        return merges
    }

    // MARK: - Round trips

    /// Random valid UTF-8 (seeded): decode(encode(s)) gives back the exact bytes, and the
    /// pre-tokens tile the text.
    func testRandomUTF8RoundTrips() throws {
        var tokenizers = [try trained()]
        if let g = try? gpt2() { tokenizers.append(g) }
        var rng = RandomGenerator(seed: 2024)
        func r(_ lo: UInt32, _ hi: UInt32) -> [UInt32] { Array(lo...hi) }
        let whitespace: [UInt32] = [0x20, 0x20, 0x09, 0x0A, 0x0D, 0xA0, 0x3000, 0x2028, 0x85, 0x0B, 0x0C, 0x1C]
        let joiners: [UInt32] = [0x200D, 0xFE0F, 0x1F1E7, 0x1F1F7]
        let numbers: [UInt32] = r(0x30, 0x39) + [0x663, 0xBD, 0x216B]
        let apostrophes: [UInt32] = [0x27, 0x27, 0x73, 0x74, 0x6C, 0x2019]
        var pools: [[UInt32]] = [r(0x20, 0x7E), whitespace, r(0xC0, 0xFF), r(0x300, 0x36F), r(0x4E00, 0x4E80)]
        pools += [r(0x1F300, 0x1F64F), joiners, numbers, apostrophes, r(0x400, 0x44F), r(0x00, 0x1F)]
        for _ in 0..<400 {
            var s = String.UnicodeScalarView()
            for _ in 0..<rng.nextInt(below: 60) {
                if rng.nextInt(below: 10) == 0 {
                    var v = UInt32(rng.nextInt(below: 0x110000))
                    if (0xD800...0xDFFF).contains(v) { v = 0xFFFD }
                    s.append(Unicode.Scalar(v)!)
                } else {
                    let pool = pools[rng.nextInt(below: pools.count)]
                    s.append(Unicode.Scalar(pool[rng.nextInt(below: pool.count)])!)
                }
            }
            let text = String(s)
            let bytes = Array(text.utf8)
            XCTAssertEqual(Array(GPT2PreTokenizer.split(text).joined().utf8), bytes)
            for tok in tokenizers {
                let ids = tok.encodeOrdinary(text)
                XCTAssertEqual(tok.decodeBytes(ids), bytes, text.debugDescription)
                XCTAssertEqual(Array(tok.decode(ids).utf8), bytes, text.debugDescription)
                XCTAssertEqual(try tok.encode(utf8: bytes), ids)
                XCTAssertTrue(ids.allSatisfy { $0 >= 0 && Int($0) < tok.vocabularySize })
            }
        }
    }

    func testStreamDecoderHoldsSplitCharacters() throws {
        let tok = try trained()
        let text = "Dorothy 🦁 東京 ação e\u{301}!"
        var stream = BPEStreamDecoder(tok)
        var out = "", pieces: [String] = []
        for id in tok.encode(text) {
            let piece = stream.push(id)
            XCTAssertFalse(piece.unicodeScalars.contains("\u{FFFD}"), "a cut character leaked: \(piece.debugDescription)")
            pieces.append(piece)
            out += piece
        }
        out += stream.finish()
        XCTAssertEqual(Array(out.utf8), Array(text.utf8))
        XCTAssertTrue(pieces.contains(""), "the lion's 4 bytes span several ids of a 600-token vocabulary")
        // A stream that ends inside a character flushes it as U+FFFD.
        var cut = BPEStreamDecoder(tok)
        let lion = tok.encode("🦁")
        XCTAssertEqual(cut.push(lion[0]), "")
        XCTAssertEqual(cut.finish(), "\u{FFFD}")
    }

    // MARK: - Bad input

    func testInvalidUTF8IsAnError() throws {
        let tok = try trained()
        for (bytes, offset) in [([0x61, 0xFF], 1), ([0x61, 0x62, 0xE6, 0x9D], 2), ([0xC0, 0xAF], 0), ([0xED, 0xA0, 0x80], 0),
                                ([0xF4, 0x90, 0x80, 0x80], 0), ([0x80], 0), ([0x61, 0xC3], 1)] as [([UInt8], Int)] {
            XCTAssertThrowsError(try tok.encode(utf8: bytes)) { e in
                XCTAssertEqual(e as? EmeraldError, .invalidUTF8(path: "text to encode", byteOffset: offset), "\(bytes)")
                XCTAssertTrue("\(e)".contains("is not valid UTF-8"), "\(e)")
            }
        }
        XCTAssertEqual(try tok.encode(utf8: Array("ok é 🦁".utf8)), tok.encode("ok é 🦁"))
    }

    /// A tiny vocabulary folder: the 256 byte tokens plus `extra`, and a merges file.
    private func writeVocab(_ dir: String, extra: [String] = [], merges: String, dropByte: UInt8? = nil) throws {
        var vocab: [String: Int] = [:]
        for (i, b) in ByteLevel.bytesInIdOrder.enumerated() where b != dropByte { vocab[ByteLevel.encode([b])] = i }
        for (i, e) in extra.enumerated() { vocab[e] = 256 + i }
        try JSONSerialization.data(withJSONObject: vocab).write(to: URL(fileURLWithPath: dir + "/vocab.json"))
        try Data(merges.utf8).write(to: URL(fileURLWithPath: dir + "/merges.txt"))
    }

    func testBadVocabularyFiles() throws {
        let dir = TestSupport.tempDir("bpebad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        XCTAssertThrowsError(try ByteLevelBPETokenizer.load(path: dir + "/missing.json")) { e in
            XCTAssertEqual(e as? EmeraldError, .fileNotFound(dir + "/missing.json"))
        }
        XCTAssertThrowsError(try ByteLevelBPETokenizer.load(vocabularyPath: dir + "/nope.json", mergesPath: dir + "/nope.txt")) { e in
            XCTAssertEqual(e as? EmeraldError, .fileNotFound(dir + "/nope.json"))
        }
        assertThrowsTokenizerError(try ByteLevelBPETokenizer.load(path: dir), ["no tokenizer.json"])

        // A good tiny vocabulary loads and merges.
        try writeVocab(dir, extra: ["ab", "abc"], merges: "#version: 0.2\na b\nab c\n")
        let ok = try ByteLevelBPETokenizer.load(path: dir)
        XCTAssertEqual(ok.encode("abc abd"), [257, ok.encode(" ")[0], 256, ok.encode("d")[0]])

        // Corrupt JSON, wrong value types.
        try Data("{\"a\": 1, ".utf8).write(to: URL(fileURLWithPath: dir + "/vocab.json"))
        assertThrowsTokenizerError(try ByteLevelBPETokenizer.load(path: dir), ["vocab.json", "not a JSON object"])
        try Data("{\"a\": \"x\"}".utf8).write(to: URL(fileURLWithPath: dir + "/vocab.json"))
        assertThrowsTokenizerError(try ByteLevelBPETokenizer.load(path: dir), ["not an integer id"])

        // Merges that reference unknown tokens, are malformed, or make tokens outside the vocabulary.
        try writeVocab(dir, extra: ["ab"], merges: "#version: 0.2\na b\nab zz\n")
        assertThrowsTokenizerError(try ByteLevelBPETokenizer.load(path: dir), ["line 3", "unknown token \"zz\""])
        try writeVocab(dir, extra: ["ab"], merges: "a b c\n")
        assertThrowsTokenizerError(try ByteLevelBPETokenizer.load(path: dir), ["line 1", "not two tokens"])
        try writeVocab(dir, merges: "a b\n")
        assertThrowsTokenizerError(try ByteLevelBPETokenizer.load(path: dir), ["merge rule 1", "\"ab\"", "not in the vocabulary"])
        try writeVocab(dir, merges: "", dropByte: 0x0A)
        assertThrowsTokenizerError(try ByteLevelBPETokenizer.load(path: dir), ["no token for byte 0x0A"])
        try Data([0xFF, 0x20]).write(to: URL(fileURLWithPath: dir + "/merges.txt"))
        assertThrowsTokenizerError(try ByteLevelBPETokenizer.load(path: dir), ["not UTF-8"])
    }

    static func writeTemp(_ json: [String: Any]) throws -> String {
        let path = TestSupport.tempDir() + "/tokenizer.json"
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
        return path
    }

    func testNonBPETokenizerJSONIsRejected() throws {
        let wordPiece: [String: Any] = ["model": ["type": "WordPiece", "vocab": ["[UNK]": 0], "unk_token": "[UNK]"] as [String: Any],
                                        "pre_tokenizer": ["type": "BertPreTokenizer"]]
        assertThrowsTokenizerError(try ByteLevelBPETokenizer(tokenizerJSON: wordPiece, path: "wp.json"), ["wp.json", "WordPiece", "byte-level BPE"])
        assertThrowsTokenizerError(try loadTokenizer(json: wordPiece, path: "wp.json"), ["WordPiece"])
        let unigram: [String: Any] = ["model": ["type": "Unigram", "vocab": [["a", -1.0] as [Any]]] as [String: Any]]
        assertThrowsTokenizerError(try loadTokenizer(json: unigram, path: "u.json"), ["Unigram"])

        // Forms beyond GPT-2's go to HuggingFaceBPETokenizer (LlamaTokenizerTests); unsupported sections are named.
        var bpe = try trained().tokenizerJSON()
        bpe["normalizer"] = ["type": "NFC"]
        XCTAssertTrue(try loadTokenizer(json: bpe, path: "n.json") is HuggingFaceBPETokenizer)
        assertThrowsTokenizerError(try ByteLevelBPETokenizer.load(path: try Self.writeTemp(bpe)), ["not GPT-2's byte-level form"])
        bpe["normalizer"] = ["type": "Lowercase"]
        assertThrowsTokenizerError(try loadTokenizer(json: bpe, path: "n.json"), ["normalizer Lowercase is not supported"])
        bpe = try trained().tokenizerJSON()
        bpe["pre_tokenizer"] = ["type": "ByteLevel", "add_prefix_space": true] as [String: Any]
        XCTAssertEqual(try loadTokenizer(json: bpe, path: "p.json").encode("Hello"), try trained().encode(" Hello"))
        bpe = try trained().tokenizerJSON()
        var model = bpe["model"] as! [String: Any]
        model["merges"] = ["Ġ t", "Ġ nope"]
        bpe["model"] = model
        assertThrowsTokenizerError(try loadTokenizer(json: bpe, path: "x.json"), ["merge rule 2", "unknown token \"nope\""])
    }
}
