import Emerald
import Foundation
import XCTest

/// `score`, `sample --prompt-ids/--print-ids`, `convert` and `finetune` through the executable.
final class HFCLITests: XCTestCase {
    private var work = ""

    override func setUpWithError() throws {
        guard EmeraldExecutable.path != nil else { throw XCTSkip("no emerald executable; build with --build-tests") }
        work = TestSupport.tempDir()
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: work) }

    private func run(_ args: [String]) throws -> (out: String, err: String, status: Int32) {
        let r = try EmeraldExecutable.run(args, in: work, timeout: 120)
        return (String(decoding: r.stdout, as: UTF8.self), r.stderr, r.status)
    }

    private func fails(_ args: [String], _ phrase: String, line: UInt = #line) throws {
        let r = try EmeraldExecutable.run(args, in: work)
        EmeraldExecutable.assertCleanFailure(r, "emerald " + args.joined(separator: " "), phrase, line: line)
    }

    private func expected(_ name: String) throws -> [String: Tensor] {
        let url = try XCTUnwrap(Bundle.module.url(forResource: name + ".expected", withExtension: "safetensors", subdirectory: "Fixtures/hf"))
        return try SafeTensors.read(path: url.path).tensors
    }

    /// `score --json` reports transformers' loss and per-token losses; `--logits` its logits.
    func testScoreMatchesTransformers() throws {
        for name in HFTests.models {
            let ref = try expected(name)
            let ids = try XCTUnwrap(ref["ids"]).scalars.prefix(16).map { String(Int($0)) }.joined(separator: ",")
            let r = try run(["score", "--model", try HFTests.folder(name), "--ids", ids, "--logits", "--json"])
            XCTAssertEqual(r.status, 0, r.err)
            let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])
            let perToken = try XCTUnwrap(json["per_token_loss"] as? [Double]).map(Float.init)
            let want = Array(try XCTUnwrap(ref["per_token_loss"]).scalars.prefix(15))
            XCTAssertLessThanOrEqual(TestSupport.maxAbsDiff(perToken, want), 1e-5, name)
            let loss = Float(try XCTUnwrap(json["loss"] as? Double))
            XCTAssertEqual(loss, want.reduce(0, +) / 15, accuracy: 1e-5)
            let logits = try XCTUnwrap(json["logits"] as? [[Double]]).flatMap { $0.map(Float.init) }
            XCTAssertLessThanOrEqual(TestSupport.maxAbsDiff(logits, Array(try XCTUnwrap(ref["logits"]).scalars.prefix(16 * 300))), 1e-4)
        }
    }

    /// `sample --prompt-ids … --temperature 0 --print-ids` prints transformers' greedy ids.
    func testGreedySampleIDs() throws {
        let ref = try expected("tiny-gpt2-hub")
        let prompt = try XCTUnwrap(ref["generate_prompt"]).scalars.map { String(Int($0)) }.joined(separator: ",")
        let want = try XCTUnwrap(ref["generate_ids"]).scalars.map { Int($0) }
        let r = try run(["sample", "--model", try HFTests.folder("tiny-gpt2-hub"), "--prompt-ids", prompt,
                         "--temperature", "0", "--max-new-tokens", String(want.count), "--print-ids"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertEqual(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [Int], want)
    }

    /// convert HF → Emerald → HF keeps scores identical; text sampling works from either.
    func testConvertBothWays() throws {
        let src = try HFTests.folder("tiny-gpt2")
        XCTAssertEqual(try run(["convert", src, "--out", work + "/ckpt"]).status, 0)
        XCTAssertEqual(try run(["convert", work + "/ckpt", "--to-hf", work + "/hf"]).status, 0)
        let a = try run(["score", "--model", src, "--ids", "5,6,7,8,9", "--json"]).out
        let b = try run(["score", "--checkpoint", work + "/ckpt", "--ids", "5,6,7,8,9", "--json"]).out
        let c = try run(["score", "--model", work + "/hf", "--ids", "5,6,7,8,9", "--json"]).out
        XCTAssertEqual(a, b)
        XCTAssertEqual(a, c)
        let s = try run(["sample", "--model", work + "/hf", "--prompt", "Dorothy", "--max-new-tokens", "5", "--seed", "3"])
        XCTAssertEqual(s.status, 0, s.err)
        XCTAssertTrue(s.out.hasPrefix("Dorothy"))
    }

    /// Fine-tuning runs the training loop, reports before → after, freezes what it is told,
    /// and resumes to the same result as an uninterrupted run.
    func testFinetuneFreezeAndResume() throws {
        let data = work + "/new.txt"
        let text = String(repeating: "The Emerald City is bright. Dorothy walks on the yellow road to Oz.\n", count: 60)
        try Data(text.utf8).write(to: URL(fileURLWithPath: data))
        let src = try HFTests.folder("tiny-gpt2")
        let common = ["--data", data, "--steps", "20", "--eval-interval", "10", "--eval-iters", "2", "--batch-size", "4",
                      "--train-block-size", "16", "--lr", "3e-3", "--freeze-layers", "1", "--freeze-embeddings"]
        let r = try run(["finetune", "--from", src, "--out", work + "/ft"] + common)
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.contains("val loss on"), r.out)
        let metrics = try String(contentsOfFile: work + "/ft/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(metrics.count, 3)

        let before = try XCTUnwrap(try Checkpoint.load(from: src).model as? GPT)
        let after = try XCTUnwrap(try Checkpoint.load(from: work + "/ft/checkpoint").model as? GPT)
        let old = Dictionary(uniqueKeysWithValues: before.namedParameters().map { ($0.name, $0.tensor.scalars) })
        for (name, p) in after.namedParameters() {
            let frozen = name.hasPrefix("transformer.h.0.") || name == "transformer.wte.weight" || name == "transformer.wpe.weight"
            if frozen { XCTAssertEqual(p.scalars, old[name], "\(name) should be frozen") }
            else { XCTAssertNotEqual(p.scalars, old[name], "\(name) should have been trained") }
        }
        // Interrupted after 10 steps, then resumed: the uninterrupted run's weights exactly.
        let part = try run(["finetune", "--from", src, "--out", work + "/ft2", "--stop-after", "10"] + common)
        XCTAssertEqual(part.status, 0, part.err)
        // The corpus comes from finetune.json when --data is left out.
        let resumed = try run(["finetune", "--resume", work + "/ft2"] + Array(common.dropFirst(2)))
        XCTAssertEqual(resumed.status, 0, resumed.err)
        let full = try XCTUnwrap(try Checkpoint.load(from: work + "/ft2/checkpoint").model as? GPT)
        for (x, y) in zip(full.namedParameters(), after.namedParameters()) {
            XCTAssertEqual(x.tensor.scalars, y.tensor.scalars, "\(x.name) after resume")
        }
        XCTAssertEqual(try String(contentsOfFile: work + "/ft2/metrics.jsonl", encoding: .utf8).split(separator: "\n").count, 3)
        try fails(["finetune", "--resume", work + "/ft2", "--data", data, "--freeze-layers", "2"], "finetune.json")
    }

    func testBadInput() throws {
        let tiny = try HFTests.folder("tiny-gpt2")
        try fails(["score", "--model", tiny, "--ids", "1,2,x"], "\"x\" is not an integer id")
        try fails(["score", "--model", tiny, "--ids", "1,300"], "token id 300 is outside the vocabulary (0..<300)")
        try fails(["score", "--model", tiny, "--ids", "1"], "at least 2 tokens")
        try fails(["score", "--model", tiny, "--ids", (0..<33).map(String.init).joined(separator: ",")], "context is 32")
        try fails(["score", "--model", tiny], "exactly one of --ids or --text")
        try fails(["score", "--ids", "1,2"], "pass --model")
        try fails(["score", "--model", "gpt2", "--ids", "1,2"], "offline")
        try fails(["score", "--model", work + "/nothing/here", "--ids", "1,2"], "no such file")
        try fails(["sample", "--model", tiny, "--prompt", "a", "--prompt-ids", "1"], "pass one of --prompt, --prompt-file or --prompt-ids")
        try fails(["convert", tiny], "exactly one of --to-hf")
        try fails(["finetune", "--from", tiny, "--data", work + "/missing.txt", "--out", work + "/o"], "missing.txt")
        try fails(["finetune", "--from", tiny, "--data", tiny + "/config.json", "--out", work + "/o", "--freeze-layers", "3"], "--freeze-layers must be in 0...2")
        let noTok = work + "/notok"
        try FileManager.default.copyItem(atPath: tiny, toPath: noTok)
        try FileManager.default.removeItem(atPath: noTok + "/tokenizer.json")
        try fails(["sample", "--model", noTok, "--prompt", "hi"], "pass --prompt-ids")
        try fails(["sample", "--model", noTok, "--prompt-ids", "1,2"], "--print-ids")
        // A NaN among the weights (a valid file): one error line instead of garbage ids.
        let poisoned = work + "/nan"
        try FileManager.default.copyItem(atPath: tiny, toPath: poisoned)
        let tensors = try SafeTensors.read(path: poisoned + "/model.safetensors").tensors
        let lnf = try XCTUnwrap(tensors.keys.first { $0.hasSuffix("ln_f.weight") })
        tensors[lnf]!.data[3] = .nan
        try SafeTensors.write(tensors.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, to: poisoned + "/model.safetensors")
        for temperature in ["0", "1"] {
            try fails(["sample", "--model", poisoned, "--prompt-ids", "1,2", "--temperature", temperature, "--print-ids"],
                      "logits for new token 1 hold NaN or infinity")
        }
    }
}
