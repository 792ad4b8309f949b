import Emerald
import Foundation
import XCTest

/// Damaged or unsupported Hugging Face folders: one clear error, never a crash.
final class HFBadInputTests: XCTestCase {
    private var work = ""
    private let fm = FileManager.default

    override func setUpWithError() throws { work = TestSupport.tempDir() }
    override func tearDown() { try? fm.removeItem(atPath: work) }

    /// A writable copy of a fixture folder.
    private func copy(_ name: String = "tiny-gpt2") throws -> String {
        let dst = work + "/" + UUID().uuidString
        try fm.copyItem(atPath: try HFTests.folder(name), toPath: dst)
        return dst
    }

    private func expectError(_ dir: String, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Checkpoint.load(from: dir), file: file, line: line) { e in
            XCTAssertTrue(e is EmeraldError, "not an EmeraldError: \(e)", file: file, line: line)
            XCTAssertTrue("\(e)".contains(fragment), "\"\(e)\" lacks \"\(fragment)\"", file: file, line: line)
        }
    }

    private func editJSON(_ path: String, _ edit: (inout [String: Any]) -> Void) throws {
        var j = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        edit(&j)
        try JSONSerialization.data(withJSONObject: j).write(to: URL(fileURLWithPath: path))
    }

    /// Rewrites model.safetensors with an edited header (data bytes kept).
    private func editHeader(_ dir: String, _ edit: (inout [String: Any]) -> Void) throws {
        let path = dir + "/model.safetensors"
        let d = try Data(contentsOf: URL(fileURLWithPath: path))
        let n = d.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        var h = try XCTUnwrap(try JSONSerialization.jsonObject(with: d.subdata(in: 8..<(8 + n))) as? [String: Any])
        edit(&h)
        let json = try JSONSerialization.data(withJSONObject: h)
        var out = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        out.append(d.subdata(in: (8 + n)..<d.count))
        try out.write(to: URL(fileURLWithPath: path))
    }

    /// Sets one field of one tensor's header entry.
    private func editEntry(_ dir: String, _ tensor: String, _ field: String, _ value: Any) throws {
        try editHeader(dir) { h in
            var e = h[tensor] as! [String: Any]
            e[field] = value
            h[tensor] = e
        }
    }

    func testDamagedWeights() throws {
        var dir = try copy()
        let w = try Data(contentsOf: URL(fileURLWithPath: dir + "/model.safetensors"))
        try w.prefix(w.count - 1000).write(to: URL(fileURLWithPath: dir + "/model.safetensors"))
        expectError(dir, "truncated file?")

        dir = try copy()
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: dir + "/model.safetensors"))
        expectError(dir, "too short for a safetensors header")

        dir = try copy()
        try editEntry(dir, "transformer.wpe.weight", "data_offsets", [0, 1 << 40])
        expectError(dir, "lie outside")

        dir = try copy()
        try editEntry(dir, "transformer.ln_f.weight", "dtype", "I64")
        expectError(dir, "unsupported dtype I64")

        dir = try copy()
        try editEntry(dir, "transformer.ln_f.weight", "dtype", "F16")
        expectError(dir, "bytes but shape [32] of F16 needs 64")

        dir = try copy()
        // Headers must tile the data section exactly, as the reference implementation requires:
        // a tensor dropped from the header leaves a hole, an added name aliases bytes.
        dir = try copy()
        try editHeader(dir) { $0["transformer.h.1.ln_2.bias"] = nil }
        expectError(dir, "unused bytes before tensor")

        dir = try copy()
        try editHeader(dir) { h in h["transformer.h.7.extra"] = h["transformer.ln_f.bias"] }
        expectError(dir, "overlaps the bytes of another tensor")
    }

    func testConfigMismatchesAndUnsupportedOptions() throws {
        var dir = try copy()
        try editJSON(dir + "/config.json") { $0["n_embd"] = 64 }
        expectError(dir, "has shape [300, 32] but config.json (n_embd 64")

        dir = try copy()
        try editJSON(dir + "/config.json") { $0["vocab_size"] = 50257 }
        expectError(dir, "needs [50257, 32]")

        dir = try copy()
        try editJSON(dir + "/config.json") { $0["model_type"] = "falcon" }
        expectError(dir, "model_type \"falcon\" is not supported")

        dir = try copy()
        try editJSON(dir + "/config.json") { $0["activation_function"] = "gelu" }
        expectError(dir, "activation_function \"gelu\"")

        dir = try copy()
        try editJSON(dir + "/config.json") { $0["n_inner"] = 100 }
        expectError(dir, "n_inner 100")

        dir = try copy()
        try editJSON(dir + "/config.json") { $0["scale_attn_by_inverse_layer_idx"] = true }
        expectError(dir, "scale_attn_by_inverse_layer_idx")

        dir = try copy()
        try editJSON(dir + "/config.json") { $0["n_head"] = 5 }
        expectError(dir, "not divisible")

        dir = try copy()
        try editJSON(dir + "/config.json") { $0["n_layer"] = nil }
        expectError(dir, "needs an integer \"n_layer\"")
    }

    func testMissingFilesAndPickles() throws {
        var dir = try copy()
        try fm.removeItem(atPath: dir + "/model.safetensors")
        try Data("not really a pickle".utf8).write(to: URL(fileURLWithPath: dir + "/pytorch_model.bin"))
        expectError(dir, "pytorch_model.bin")
        try fm.removeItem(atPath: dir + "/config.json")
        expectError(dir, "pytorch_model.bin")

        dir = try copy("tiny-gpt2-sharded")
        try fm.removeItem(atPath: dir + "/model-00003-of-00004.safetensors")
        expectError(dir, "model-00003-of-00004.safetensors")

        dir = try copy("tiny-gpt2-sharded")
        try editJSON(dir + "/model.safetensors.index.json") { j in
            var map = j["weight_map"] as! [String: String]
            map["transformer.ln_f.weight"] = "../../etc/passwd"
            j["weight_map"] = map
        }
        expectError(dir, "outside the folder")

        dir = try copy("tiny-gpt2-sharded")
        try editJSON(dir + "/model.safetensors.index.json") { j in
            var map = j["weight_map"] as! [String: String]
            map["transformer.ln_f.weight"] = "model-00001-of-00004.safetensors"
            j["weight_map"] = map
        }
        expectError(dir, "missing tensor transformer.ln_f.weight")

        dir = try copy("tiny-gpt2-hub")
        try Data("{\"a\": 1}".utf8).write(to: URL(fileURLWithPath: dir + "/vocab.json"))
        expectError(dir, "merges")
    }

    /// transformers 5 writes a TemplateProcessing that adds nothing: accepted; one adding tokens is not.
    func testTokenizerPostProcessors() throws {
        let dir = try copy()
        try editJSON(dir + "/tokenizer.json") {
            $0["post_processor"] = ["type": "TemplateProcessing", "single": [["Sequence": ["id": "A", "type_id": 0]]],
                                    "pair": [["Sequence": ["id": "A", "type_id": 0]], ["Sequence": ["id": "B", "type_id": 1]]],
                                    "special_tokens": [String: Any]()]
        }
        XCTAssertNotNil(try Checkpoint.load(from: dir).tokenizer)
        try editJSON(dir + "/tokenizer.json") {
            $0["post_processor"] = ["type": "TemplateProcessing",
                                    "single": [["SpecialToken": ["id": "<|endoftext|>", "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]]],
                                    "special_tokens": ["<|endoftext|>": ["id": "<|endoftext|>", "ids": [0], "tokens": ["<|endoftext|>"]]]]
        }
        // A template that adds a BOS is read now (HuggingFaceBPETokenizer); an unknown processor is not.
        let bos = try XCTUnwrap(try Checkpoint.load(from: dir).tokenizer as? HuggingFaceBPETokenizer)
        XCTAssertEqual(bos.prefixIds, [0])
        try editJSON(dir + "/tokenizer.json") { $0["post_processor"] = ["type": "Mystery"] }
        expectError(dir, "post_processor Mystery is not supported")
    }

    /// Random mutations of a real GPT-2 file's header and truncations: an error or a load, never a crash.
    func testFuzzedFoldersNeverCrash() throws {
        let dir = try copy()
        let path = dir + "/model.safetensors"
        let valid = try Data(contentsOf: URL(fileURLWithPath: path))
        let headerLength = valid.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        var rng = RandomGenerator(seed: 77)
        let specials = Array("{}[]\",:-019eE .".utf8)
        var rejected = 0, loaded = 0
        for i in 0..<250 {
            var d = valid
            if i < 200 {
                for _ in 0..<(1 + rng.nextInt(below: 3)) {
                    // Mostly the header; every tenth file a weight byte (which must still load).
                    let at = i % 10 == 9 ? 8 + headerLength + rng.nextInt(below: valid.count - 8 - headerLength)
                        : i % 4 == 0 ? rng.nextInt(below: 8) : 8 + rng.nextInt(below: headerLength)
                    d[at] = i % 2 == 0 ? specials[rng.nextInt(below: specials.count)] : UInt8(truncatingIfNeeded: rng.next())
                }
            } else {
                d = valid.prefix(rng.nextInt(below: valid.count))
            }
            try d.write(to: URL(fileURLWithPath: path))
            do { _ = try Checkpoint.load(from: dir); loaded += 1 } catch is EmeraldError { rejected += 1 } catch {
                XCTFail("non-Emerald error \(error)")
            }
        }
        XCTAssertGreaterThan(rejected, 150)
        XCTAssertGreaterThan(loaded, 0, "mutated weight bytes leave a loadable file")
    }
}
