import Emerald
import Foundation
import XCTest

/// Llama-style tokenizer.json files (Llama 3, Qwen2, SmolLM2 byte-level BPE; Llama 2 / TinyLlama
/// SentencePiece-style BPE with byte fallback): ids and decodes identical to Hugging Face
/// `tokenizers` on hard strings (fixtures from scripts/reference/tokenizer_fixtures.py: stand-in
/// vocabularies trained on the Oz book with the real files' configurations), special tokens,
/// streaming, speed and errors on unsupported sections.
final class LlamaTokenizerTests: XCTestCase {
    static func fixture(_ name: String) throws -> [String: Any] {
        guard let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures/llama_tokenizers") else {
            throw EmeraldError.fileNotFound("fixture llama_tokenizers/\(name).json (scripts/reference/tokenizer_fixtures.py writes it)")
        }
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    private static let casesLoaded = Result { try LlamaTokenizerTests.fixture("cases") }

    /// The fixture's tokenizers: (name, tokenizer.json content after its patch, cases).
    func tokenizers() throws -> [(name: String, json: [String: Any], entry: [String: Any])] {
        let all = try XCTUnwrap(try Self.casesLoaded.get()["tokenizers"] as? [[String: Any]])
        return try all.map { e in
            let file = try XCTUnwrap(e["file"] as? String)
            return (e["name"] as! String, Self.apply(try Self.fixture(String(file.dropLast(5))), e["patch"] as? [String: Any] ?? [:]), e)
        }
    }

    /// The patch of scripts/reference/tokenizer_fixtures.py's apply_patch.
    static func apply(_ json: [String: Any], _ patch: [String: Any]) -> [String: Any] {
        var j = json
        for (k, v) in patch["set"] as? [String: Any] ?? [:] { j[k] = v }
        var model = j["model"] as! [String: Any]
        for (k, v) in patch["model"] as? [String: Any] ?? [:] { model[k] = v }
        if patch["merges_as_pairs"] as? Bool == true {
            model["merges"] = (model["merges"] as! [Any]).map { m -> Any in
                (m as? String).map { $0.split(separator: " ", maxSplits: 1).map(String.init) } ?? m
            }
        }
        var added = j["added_tokens"] as? [[String: Any]] ?? []
        var next = ((model["vocab"] as! [String: Int]).values.max() ?? -1) + 1
        for t in added { next = max(next, (t["id"] as! Int) + 1) }
        for t in patch["added"] as? [[String: Any]] ?? [] {
            let known = (model["vocab"] as! [String: Int])[t["content"] as! String]
            added.append(["id": known ?? next, "content": t["content"]!, "single_word": t["single_word"] ?? false, "lstrip": t["lstrip"] ?? false,
                          "rstrip": t["rstrip"] ?? false, "normalized": t["normalized"] ?? false, "special": t["special"] ?? true])
            if known == nil { next += 1 }
        }
        j["model"] = model
        j["added_tokens"] = added
        return j
    }

    static func text(_ hex: Any?) -> String { String(decoding: BPETests.bytes(hex: hex as! String), as: UTF8.self) }
    static func ids(_ any: Any?) -> [Int32] { (any as! [Int]).map { Int32($0) } }

    func load(_ json: [String: Any], _ name: String) throws -> HuggingFaceBPETokenizer {
        try XCTUnwrap(try loadTokenizer(json: json, path: name + ".json") as? HuggingFaceBPETokenizer, "\(name) is not a HuggingFaceBPETokenizer")
    }

    // MARK: - Ids and decodes identical to tokenizers

    func testIdsAndDecodesMatchTokenizers() throws {
        var checked = 0
        for (name, json, entry) in try tokenizers() {
            let tok = try load(json, name)
            XCTAssertEqual(tok.kind, name.hasPrefix("tinyllama") || name.hasPrefix("metaspace") ? .sentencePiece : .byteLevel, name)
            for c in entry["cases"] as! [[String: Any]] {
                let label = "\(name)/\(c["name"]!)"
                let s = Self.text(c["utf8"]), ids = Self.ids(c["ids"])
                XCTAssertEqual(tok.encode(s), ids, label)
                XCTAssertEqual(tok.encode(s, addSpecialTokens: true), c["with_special"].map(Self.ids) ?? ids, label)
                let decoded = Self.text(c["decode"])
                XCTAssertEqual(Array(tok.decode(ids).utf8), Array(decoded.utf8), label)
                XCTAssertEqual(Array(tok.decode(ids, skipSpecialTokens: true).utf8), Array((c["decode_skip"].map(Self.text) ?? decoded).utf8), label)
                // Where tokenizers round-trips, so does Emerald (the fixture's decode is tokenizers').
                if decoded.utf8.elementsEqual(s.utf8) { XCTAssertTrue(tok.decode(tok.encode(s)).utf8.elementsEqual(s.utf8), label) }
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 300)
    }

    func testRoundTripsOnHardStrings() throws {
        // Byte-level tokenizers without a normalizer and SentencePiece ones with byte fallback are lossless
        // (but for the latter's ▁ in text, and the ▁ the normalizer puts after a special token).
        let lossy: Set<String> = ["special_tokens", "special_like", "invalid_looking"]
        for (name, json, entry) in try tokenizers() where ["llama3", "smollm2", "tinyllama"].contains(name) {
            let tok = try load(json, name)
            for c in entry["cases"] as! [[String: Any]] where name != "tinyllama" || !lossy.contains(c["name"] as! String) {
                let s = Self.text(c["utf8"])
                XCTAssertTrue(tok.decode(tok.encode(s)).utf8.elementsEqual(s.utf8), "\(name)/\(c["name"]!)")
            }
        }
    }

    // MARK: - Special tokens

    func testSpecialTokensAndTemplates() throws {
        let all = try tokenizers()
        let llama3 = try load(all.first { $0.name == "llama3" }!.json, "llama3")
        let bos = try XCTUnwrap(llama3.tokenId("<|begin_of_text|>"))
        XCTAssertEqual(llama3.prefixIds, [bos])
        XCTAssertEqual(llama3.encode("", addSpecialTokens: true), [bos])
        XCTAssertEqual(llama3.encode(""), [])
        let eot = try XCTUnwrap(llama3.tokenId("<|eot_id|>"))
        let chat = llama3.encode("<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>")
        XCTAssertEqual(chat.first, llama3.tokenId("<|start_header_id|>"))
        XCTAssertEqual(chat.last, eot)
        XCTAssertEqual(llama3.decode(chat, skipSpecialTokens: true), "user\n\nHi")
        // The protocol-level form: existing callers' encode(_:) is unchanged, addSpecialTokens adds BOS.
        let anyTok: any Tokenizer = llama3
        XCTAssertEqual(try anyTok.encode("Hi", addSpecialTokens: true), [bos] + llama3.encode("Hi"))
        XCTAssertEqual(try ByteLevelBPETokenizer.gpt2().encode("Hi", addSpecialTokens: true), try ByteLevelBPETokenizer.gpt2().encode("Hi"))

        let tiny = try load(all.first { $0.name == "tinyllama" }!.json, "tinyllama")
        XCTAssertEqual(tiny.prefixIds, [1])
        XCTAssertEqual(Array(tiny.encode("<s>Hi</s>").prefix(1)), [1])
        XCTAssertEqual(tiny.encode("<s>Hi</s>").last, 2)
        // A character outside the vocabulary: its UTF-8 bytes as <0xNN> tokens.
        let lion = tiny.encode("🦁")
        XCTAssertEqual(lion.suffix(4).map { tiny.tokenString($0)! }, ["<0xF0>", "<0x9F>", "<0xA6>", "<0x81>"])
        XCTAssertEqual(tiny.decode(lion), "🦁")
    }

    // MARK: - Streaming

    func testStreamHoldsBytesOfACharacterUntilComplete() throws {
        for (name, json, entry) in try tokenizers() where ["llama3", "qwen2", "tinyllama"].contains(name) {
            let tok = try load(json, name)
            for c in entry["cases"] as! [[String: Any]] where !(c["name"] as! String).hasPrefix("special") {
                let ids = Self.ids(c["ids"])
                var stream = TextStream(tok)
                var pieces = ids.map { stream.push($0) }
                pieces.append(stream.finish())
                XCTAssertFalse(pieces.contains { $0.unicodeScalars.contains("\u{FFFD}") } && !Self.text(c["utf8"]).contains("\u{FFFD}"), "\(name)/\(c["name"]!)")
                var joined = pieces.joined()
                // The SentencePiece decoder strips the ▁ the normalizer put before the text; a stream continues a prompt, so keeps it.
                if tok.kind == .sentencePiece && joined.hasPrefix(" ") { joined.removeFirst() }
                XCTAssertEqual(Array(joined.utf8), Array(Self.text(c["decode"]).utf8), "\(name)/\(c["name"]!)")
            }
            var stream = TextStream(tok)
            let lion = tok.encode("🦁🦁")
            let early = lion.dropLast().map { stream.push($0) }.joined()
            XCTAssertFalse(early.unicodeScalars.contains("\u{FFFD}"), name)
            XCTAssertEqual((early + stream.push(lion.last!)).trimmingCharacters(in: .whitespaces), "🦁🦁", name)
        }
    }

    // MARK: - Serialization, loading by path

    func testSerializedKeepsTheFileAndLoadsBack() throws {
        for (name, json, _) in try tokenizers() where ["qwen2", "tinyllama_metaspace"].contains(name) {
            // A raw U+FEFF at the start of a JSON string survives (Foundation's parser drops it).
            XCTAssertEqual(HuggingFaceBPETokenizer.escapingByteOrderMarks(Data([0xEF, 0xBB, 0xBF] + Array("{\"\u{FEFF}\": 1}".utf8))),
                           Data(Array("{\"\\ufeff\": 1}".utf8)))
            let tok = try load(json, name)
            let path = TestSupport.tempDir() + "/tokenizer.json"
            try tok.tokenizerJSONData().write(to: URL(fileURLWithPath: path))
            let back = try XCTUnwrap(try loadTokenizer(spec: path) as? HuggingFaceBPETokenizer)
            let s = "Hello <|im_start|> wörld 🦁 12345\n"
            XCTAssertEqual(back.encode(s), tok.encode(s))
            XCTAssertTrue(tok.isSame(as: back))
            let again = try JSONSerialization.jsonObject(with: try tok.tokenizerJSONData()) as! [String: Any]
            XCTAssertEqual(try load(again, name).encode(s), tok.encode(s))
        }
    }

    // MARK: - Speed

    func testEncodingTheBookIsFast() throws {
        // (String(contentsOfFile:) would drop the book's byte order mark, which tokenizers encodes.)
        let book = String(decoding: try Data(contentsOf: URL(fileURLWithPath: TestSupport.bookPath)), as: UTF8.self)
        for (name, json, entry) in try tokenizers() where ["llama3", "qwen2", "smollm2", "tinyllama"].contains(name) {
            let tok = try load(json, name)
            let t0 = Date()
            let ids = tok.encode(book)
            let dt = Date().timeIntervalSince(t0)
            print("LlamaTokenizerTests: \(name) encodes the book (\(book.utf8.count) bytes) to \(ids.count) tokens in \(Int(dt * 1000)) ms")
            XCTAssertEqual(ids.count, entry["book_tokens"] as? Int, name)
            XCTAssertLessThan(dt, 1.0, name)
        }
    }

    // MARK: - Errors

    func testUnsupportedSectionsAreNamed() throws {
        let base = try tokenizers().first { $0.name == "llama3" }!.json
        func expect(_ edit: (inout [String: Any]) -> Void, _ phrases: [String], line: UInt = #line) {
            var j = base
            edit(&j)
            XCTAssertThrowsError(try loadTokenizer(json: j, path: "bad.json"), line: line) { e in
                guard case EmeraldError.invalidTokenizer = e else { return XCTFail("expected invalidTokenizer, got \(e)", line: line) }
                let text = "\(e)"
                XCTAssertFalse(text.contains("\n"), line: line)
                for p in phrases + ["bad.json"] { XCTAssertTrue(text.contains(p), "\(text) should mention \(p)", line: line) }
            }
        }
        expect({ $0["normalizer"] = ["type": "Lowercase"] }, ["normalizer Lowercase is not supported"])
        expect({ $0["normalizer"] = ["type": "Replace", "pattern": ["Regex": "\\s+"], "content": " "] }, ["normalizer Replace", "regex"])
        expect({ $0["pre_tokenizer"] = ["type": "Whitespace"] }, ["pre_tokenizer Whitespace is not supported"])
        expect({ $0["pre_tokenizer"] = ["type": "Sequence", "pretokenizers": [
            ["type": "Split", "pattern": ["Regex": "\\w+"], "behavior": "Isolated", "invert": false], ["type": "ByteLevel"]]] },
               ["pre_tokenizer Split", "not supported"])
        expect({ $0["decoder"] = ["type": "WordPiece"] }, ["decoder WordPiece is not supported"])
        expect({ $0["post_processor"] = ["type": "Mystery"] }, ["post_processor Mystery is not supported"])
        expect({ var m = $0["model"] as! [String: Any]; m["type"] = "Unigram"; $0["model"] = m }, ["Unigram"])
        expect({ var m = $0["model"] as! [String: Any]; m["merges"] = ["Ġ nope"]; $0["model"] = m }, ["merge rule 1", "not in the vocabulary"])
        expect({ $0["added_tokens"] = [["content": "", "id": 1]] }, ["added_tokens"])
    }

    // MARK: - Pre-tokenizer scanner

    func testSplitPatternPieces() {
        XCTAssertEqual(SplitPattern.llama3.split("12345 a"), ["123", "45", " a"])
        XCTAssertEqual(SplitPattern.qwen2.split("123"), ["1", "2", "3"])
        XCTAssertEqual(SplitPattern.llama3.split("a  \n  x"), ["a", "  \n", " ", " x"])
        XCTAssertEqual(SplitPattern.llama3.split("...hello (x)\n\n"), ["...", "hello", " (", "x", ")\n\n"])
        XCTAssertEqual(SplitPattern.llama3.split("x\u{2028}\u{2028}y"), ["x", "\u{2028}", "\u{2028}y"])
        XCTAssertEqual(SplitPattern.llama3.split(" 1"), [" ", "1"])
        XCTAssertEqual(SplitPattern.llama3.split("'ſ"), ["'ſ"])
    }
}
