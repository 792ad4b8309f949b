import Emerald
import Foundation
import XCTest

/// `emerald` with Llama-family models: train --arch llama, resume, fine-tune with frozen layers,
/// convert both ways, score a Hugging Face Llama folder; bad flags fail in one line.
final class LlamaCLITests: XCTestCase {
    private var work = ""

    override func setUpWithError() throws {
        guard EmeraldExecutable.path != nil else {
            throw XCTSkip("no emerald executable next to the test bundle; build with --build-tests")
        }
        work = TestSupport.tempDir("llamacli")
    }

    override func tearDown() {
        if !work.isEmpty { try? FileManager.default.removeItem(atPath: work) }
    }

    @discardableResult
    private func emerald(_ args: [String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try EmeraldExecutable.run(args, in: work, timeout: 120)
        XCTAssertEqual(r.status, 0, "emerald \(args.joined(separator: " ")): \(r.stderr)", file: file, line: line)
        return String(decoding: r.stdout, as: UTF8.self) + r.stderr
    }

    private func expectFailure(_ args: [String], _ phrase: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try EmeraldExecutable.run(args, in: work)
        EmeraldExecutable.assertCleanFailure(r, "emerald " + args.joined(separator: " "), phrase, file: file, line: line)
    }

    func testTrainResumeFinetuneConvertAndScore() throws {
        let tiny = ["--n-layer", "2", "--n-head", "4", "--n-kv-head", "2", "--n-embd", "32", "--block-size", "16",
                    "--batch-size", "4", "--eval-interval", "3", "--eval-iters", "1"]
        let out = try emerald(["train", "--arch", "llama", "--steps", "3", "--out", "run"] + tiny)
        XCTAssertTrue(out.contains("model llama:"), out)
        XCTAssertTrue(out.contains("4 heads (2 key/value), 32 wide, MLP 88"), out)
        let run = try XCTUnwrap(try TrainRun.read(from: work + "/run"))
        XCTAssertEqual(run.model, "llama")
        try emerald(["train", "--resume", "run", "--steps", "4"])
        let resumed = try Checkpoint.load(from: work + "/run/checkpoint")
        XCTAssertEqual(resumed.state?.step, 4)
        XCTAssertEqual(resumed.model.config.modelType, "llama")
        try expectFailure(["train", "--resume", "run", "--steps", "5", "--arch", "gpt"], "--arch gpt contradicts the run")
        try expectFailure(["train", "--resume", "run", "--steps", "5", "--n-kv-head", "1"], "--n-kv-head 1 (the run has 2)")

        // Fine-tuning a Llama with frozen embeddings and first layer: those weights do not move.
        try emerald(["finetune", "--from", "run/best", "--steps", "2", "--eval-interval", "2", "--eval-iters", "1",
                     "--batch-size", "2", "--freeze-embeddings", "--freeze-layers", "1", "--dropout", "0", "--out", "ft"])
        let before = Dictionary(uniqueKeysWithValues: try Checkpoint.load(from: work + "/run/best").model.namedParameters().map { ($0.name, $0.tensor.scalars) })
        let after = try Checkpoint.load(from: work + "/ft/checkpoint").model.namedParameters()
        for (name, p) in after {
            let frozen = name == "model.embed_tokens.weight" || name.hasPrefix("model.layers.0.")
            XCTAssertEqual(p.scalars == before[name], frozen, "\(name) \(frozen ? "moved while frozen" : "did not train")")
        }

        // Export to a transformers folder and back; a Hugging Face Llama folder scores.
        try emerald(["convert", "run/best", "--to-hf", "hf"])
        let config = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: work + "/hf/config.json"))) as? [String: Any])
        XCTAssertEqual(config["architectures"] as? [String], ["LlamaForCausalLM"])
        try emerald(["convert", "hf", "--out", "back"])
        let a = try Checkpoint.load(from: work + "/run/best").model, b = try Checkpoint.load(from: work + "/back").model
        // Residual dropout (training only) has no transformers field: everything else comes back.
        var shape = try XCTUnwrap(a.config.as(LlamaConfig.self))
        shape.residualDropout = 0
        XCTAssertEqual(b.config, .llama(shape))
        for (x, y) in zip(a.namedParameters(), b.namedParameters()) { XCTAssertEqual(x.tensor.scalars, y.tensor.scalars, x.name) }
        let score = try emerald(["score", "--model", try HFTests.folder("tiny-qwen2"), "--ids", "1,2,3,4", "--json"])
        XCTAssertTrue(score.contains("\"loss\""), score)
        try emerald(["score", "--model", try HFTests.folder("tiny-llama-bf16"), "--ids", "1,2,3,4", "--dtype", "int8"])

        try expectFailure(["train", "--arch", "llama", "--n-head", "4", "--n-kv-head", "3", "--out", "bad"] ,
                          "--n-kv-head 3 does not divide --n-head 4")
        try expectFailure(["train", "--arch", "llama", "--norm", "post", "--out", "bad"], "--arch llama has SwiGLU, RMSNorm")
        try expectFailure(["train", "--n-kv-head", "2", "--out", "bad"], "--n-kv-head applies to --arch llama")
        try expectFailure(["train", "--model", "bigram", "--arch", "llama", "--out", "bad"], "--arch applies to --model gpt")
    }
}
