import Emerald
import XCTest

/// Small pieces behind the first-hour fixes: prompt normalisation, JSON decimals, loss-plot ticks,
/// recipes, run settings.
final class FirstHourUnitTests: XCTestCase {
    func testPromptsAreReadLikeTrainingText() {
        XCTAssertEqual(TextCorpus.normalize("\u{FEFF}a\r\nb\rc\n\r\nd"), "a\nb\nc\n\nd")
        XCTAssertEqual(TextCorpus.normalize("plain"), "plain")
        XCTAssertEqual(TextCorpus.normalize("x\u{FEFF}"), "x\u{FEFF}", "only a leading BOM is a marker")
        XCTAssertEqual(TextCorpus.normalize("\r"), "\n")
        let book = try! Book.text()
        XCTAssertEqual(TextCorpus.normalize(String(decoding: ShippedAsset.book.data, as: UTF8.self)), book,
                       "the same policy as files")
    }

    func testFloatsAreWrittenAsTyped() throws {
        let json = try JSONSerialization.data(withJSONObject: ["p": Float(0.1).decimalDouble, "e": Float(1e-5).decimalDouble])
        let text = String(decoding: json, as: UTF8.self)
        XCTAssertFalse(text.contains("0.1000000"), text)
        XCTAssertFalse(text.contains("9.99999"), text)
        XCTAssertEqual(Float(Float(0.1).decimalDouble), 0.1)
        let cfg = GPTConfig(vocabSize: 5, blockSize: 4, nLayer: 1, nHead: 1, nEmbd: 4, dropout: 0.1)
        let written = String(decoding: try cfg.huggingFaceConfig(endOfTextID: nil).jsonData(), as: UTF8.self)
        XCTAssertTrue(written.contains("\"attn_pdrop\" : 0.1,"), written)
        XCTAssertTrue(written.contains("\"layer_norm_epsilon\" : 1e-05,"), written)
    }

    func testLossPlotTicksAreRound() {
        XCTAssertEqual(LossPlot.niceTicks(0, 60, count: 6), [0, 20, 40, 60])
        XCTAssertEqual(LossPlot.niceTicks(0, 2500, count: 6), [0, 500, 1000, 1500, 2000, 2500])
        XCTAssertEqual(LossPlot.niceTicks(1.32, 4.52, count: 5), [1, 2, 3, 4, 5])
        XCTAssertEqual(LossPlot.niceTicks(0, 7, count: 6), [0, 2, 4, 6, 8])
        for t in LossPlot.niceTicks(1.381, 1.437, count: 5) {
            XCTAssertEqual(LossPlot.label(t).count <= 5, true, LossPlot.label(t))
        }
        XCTAssertEqual(LossPlot.logTicks(0.8, 40), [0.5, 1, 2, 5, 10, 20, 50])
        XCTAssertEqual(LossPlot.label(0.30000000000000004), "0.3")
        XCTAssertEqual(LossPlot.label(2500), "2500")
    }

    func testLossPlotAxesAndLegend() {
        func record(_ step: Int, _ train: Float, _ val: Float) -> EvalRecord {
            EvalRecord(step: step, train_loss: train, val_loss: val, tokens_per_s: 0, lr: 0, grad_norm: 0, elapsed_s: 0)
        }
        let steps = [StepLoss(step: 5, loss: 4.2), StepLoss(step: 10, loss: 3.1)]
        let linear = LossPlot.svg([record(0, 4.4, 4.4), record(10, 2.9, 3.0), record(20, 2.6, 2.7)], stepLosses: steps)
        XCTAssertTrue(linear.contains("loss (nats per token)"))
        XCTAssertTrue(linear.contains("stroke-opacity=\"0.35\""), "the per-step training loss, lighter")
        XCTAssertFalse(linear.contains("log scale"))
        XCTAssertFalse(linear.contains(">-"), "no negative tick")
        // A diverging run spans more than 10×: log scale, automatically.
        let diverging = LossPlot.svg([record(0, 4.4, 4.4), record(10, 90, 120)])
        XCTAssertTrue(diverging.contains("log scale"))
        XCTAssertTrue(LossPlot.svg([record(0, 4.4, 4.4), record(10, 3, 3)], scale: .log).contains("log scale"))
        // The legend sits right of the plot area (x past its right edge, 720 − 130).
        let legendX = linear.components(separatedBy: "<text x=\"").dropFirst().compactMap { part -> Double? in
            guard part.contains(">val<") else { return nil }
            return Double(part.prefix { $0 != "\"" })
        }
        XCTAssertEqual(legendX.count, 1)
        XCTAssertGreaterThan(legendX[0], 590)
    }

    func testLibraryErrorsNameFieldsNotFlags() {
        var c = Recipe.gpt
        c.batchSize = 0
        XCTAssertThrowsError(try c.validate()) { e in
            XCTAssertEqual(e as? EmeraldError, .invalidSetting(field: "batch_size", problem: "must be in 1...1073741824, got 0"))
            XCTAssertEqual("\(e)", "batch_size must be in 1...1073741824, got 0")
        }
        XCTAssertThrowsError(try GPTConfig(vocabSize: 5, blockSize: 4, nLayer: 1, nHead: 3, nEmbd: 8).validate()) { e in
            XCTAssertEqual("\(e)", "n_embd 8 is not divisible by n_head 3")
        }
    }

    func testParentFolder() {
        XCTAssertEqual(parentFolder("c"), ".")
        XCTAssertEqual(parentFolder("a/b"), "a")
        XCTAssertEqual(parentFolder("a/b/"), "a")
        XCTAssertEqual(parentFolder("/x"), "/")
        XCTAssertEqual(parentFolder("/a/b/c.txt"), "/a/b")
    }

    func testRecipesAndWarmupCap() throws {
        XCTAssertEqual(Recipe.gpt.steps, 2500)
        XCTAssertEqual(Recipe.cappedWarmup(100, steps: 2500), 100)
        XCTAssertEqual(Recipe.cappedWarmup(100, steps: 100), 10, "a short run ends past its warmup")
        XCTAssertEqual(Recipe.cappedWarmup(100, steps: 5), 1)
        XCTAssertEqual(Recipe.cappedWarmup(0, steps: 100), 0)
        // Run settings round-trip through train.json.
        var c = Recipe.gpt
        c.shards = 2; c.betas = (0.8, 0.95)
        let run = TrainRun(model: "gpt", data: "/x/y.txt", train: c)
        let back = try JSONDecoder().decode(TrainRun.self, from: try JSONEncoder().encode(run))
        XCTAssertEqual(back, run)
        XCTAssertEqual(back.train.differences(from: Recipe.gpt).map(\.field), ["beta1", "beta2", "shards"])
    }
}
