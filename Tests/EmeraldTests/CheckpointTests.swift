import Emerald
import Foundation
import XCTest

/// SafeTensors reading/writing and checkpoint folders, through the public API.
final class CheckpointTests: XCTestCase {
    // MARK: - Helpers

    /// A safetensors file from a literal header and body bytes.
    private func safetensors(header: String, body: [UInt8] = [], declaredLength: UInt64? = nil) -> Data {
        let h = Array(header.utf8)
        var out = Data()
        withUnsafeBytes(of: (declaredLength ?? UInt64(h.count)).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: h)
        out.append(contentsOf: body)
        return out
    }

    private func floatBytes(_ xs: [Float]) -> [UInt8] {
        xs.flatMap { x in withUnsafeBytes(of: x.bitPattern.littleEndian) { Array($0) } }
    }

    private func expectCorrupt(_ data: Data, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try SafeTensors.parse(data, path: "w.safetensors"), what, file: file, line: line) { e in
            guard case EmeraldError.corruptCheckpoint(let p, let r) = e else {
                return XCTFail("\(what): got \(e)", file: file, line: line)
            }
            XCTAssertEqual(p, "w.safetensors", file: file, line: line)
            XCTAssertFalse(r.isEmpty, file: file, line: line)
        }
    }

    private func tensor(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = RandomGenerator(seed: seed)
        return Tensor((0..<shape.reduce(1, *)).map { _ in rng.nextNormal() }, shape: shape)
    }

    /// A small valid file for the mutation tests.
    private func validFile() throws -> Data {
        let path = TestSupport.tempDir("st") + "/v.safetensors"
        try SafeTensors.write([("a.weight", tensor([3, 4], seed: 1)), ("b", tensor([5], seed: 2))],
                              metadata: ["format": "pt"], to: path)
        return try XCTUnwrap(FileManager.default.contents(atPath: path))
    }

    // MARK: - SafeTensors

    func testWriteReadRoundTrip() throws {
        let dir = TestSupport.tempDir("st")
        let path = dir + "/w.safetensors"
        let tensors = [("transformer.wte.weight", tensor([7, 3], seed: 1)), ("ln.bias", tensor([3], seed: 2)),
                       ("deep", tensor([2, 1, 4], seed: 3)), ("scalar", Tensor([42], shape: []))]
        try SafeTensors.write(tensors, metadata: ["format": "pt", "note": "ç 🦁"], to: path)
        let (read, meta) = try SafeTensors.read(path: path)
        XCTAssertEqual(meta, ["format": "pt", "note": "ç 🦁"])
        XCTAssertEqual(Set(read.keys), Set(tensors.map(\.0)))
        for (name, t) in tensors {
            let r = try XCTUnwrap(read[name])
            XCTAssertEqual(r.shape, t.shape, name)
            XCTAssertEqual(r.scalars, t.scalars, name)
        }
        // Layout: u64 header length, then data starting 8-aligned, F32 little-endian.
        let raw = try XCTUnwrap(FileManager.default.contents(atPath: path))
        let n = raw.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        XCTAssertEqual((8 + n) % 8, 0)
        XCTAssertEqual(raw.count, 8 + n + 4 * (21 + 3 + 8 + 1))
        let header = try XCTUnwrap(JSONSerialization.jsonObject(with: raw.subdata(in: 8..<8 + n)) as? [String: Any])
        let wte = try XCTUnwrap(header["transformer.wte.weight"] as? [String: Any])
        XCTAssertEqual(wte["dtype"] as? String, "F32")
        XCTAssertEqual(wte["shape"] as? [Int], [7, 3])
        XCTAssertEqual(wte["data_offsets"] as? [Int], [0, 84])
        // No metadata: no __metadata__ key, and reading gives an empty dictionary.
        try SafeTensors.write([("x", tensor([2], seed: 4))], to: path)
        XCTAssertEqual(try SafeTensors.read(path: path).metadata, [:])
        // Parsing works on a slice of a bigger buffer too.
        let file = try XCTUnwrap(FileManager.default.contents(atPath: path))
        let slice = (Data([1, 2, 3]) + file)[3...]
        XCTAssertEqual(try SafeTensors.parse(slice, path: "s").tensors["x"]?.scalars, tensor([2], seed: 4).scalars)
        // The write is atomic: no temporary sibling remains.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["w.safetensors"])
    }

    func testReadMissingFile() {
        let path = TestSupport.tempDir("st") + "/none.safetensors"
        XCTAssertThrowsError(try SafeTensors.read(path: path)) { e in
            XCTAssertEqual(e as? EmeraldError, .fileNotFound(path))
        }
    }

    func testRejectsDamagedFiles() throws {
        let six = floatBytes([1, 2, 3, 4, 5, 6])
        let good = #"{"t":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}"#
        XCTAssertEqual(try SafeTensors.parse(safetensors(header: good, body: six), path: "p").tensors["t"]?.scalars, [1, 2, 3, 4, 5, 6])

        expectCorrupt(Data(), "empty file")
        expectCorrupt(Data([1, 0, 0]), "shorter than the length field")
        let valid = try validFile()
        expectCorrupt(valid.prefix(valid.count - 1), "truncated by one byte")
        expectCorrupt(valid.prefix(20), "truncated inside the header")
        expectCorrupt(safetensors(header: good, body: six, declaredLength: 10_000), "header length beyond the file")
        expectCorrupt(safetensors(header: good, body: six, declaredLength: UInt64.max), "header length 2^64-1")
        expectCorrupt(safetensors(header: good, body: six, declaredLength: 1 << 63), "header length 2^63")
        expectCorrupt(safetensors(header: "", body: six), "empty header")
        expectCorrupt(safetensors(header: "not json at all", body: six), "non-JSON header")
        expectCorrupt(safetensors(header: "[1, 2, 3]", body: six), "header is an array")
        expectCorrupt(safetensors(header: #"{"t": 5}"#, body: six), "entry is not an object")
        expectCorrupt(safetensors(header: #"{"t":{"dtype":"F32","shape":[2,3]}}"#, body: six), "no data_offsets")
        expectCorrupt(safetensors(header: #"{"t":{"dtype":"F32","shape":[2,3],"data_offsets":[0]}}"#, body: six), "one offset")
        expectCorrupt(safetensors(header: #"{"t":{"dtype":"F32","shape":[2,3],"data_offsets":[0,48]}}"#, body: six), "data_offsets beyond the data")
        expectCorrupt(safetensors(header: #"{"t":{"dtype":"F32","shape":[2,3],"data_offsets":[24,48]}}"#, body: six), "data_offsets start at the end")
        expectCorrupt(safetensors(header: #"{"t":{"dtype":"F32","shape":[2,3],"data_offsets":[-4,20]}}"#, body: six), "negative offset")
        expectCorrupt(safetensors(header: #"{"t":{"dtype":"F32","shape":[2,3],"data_offsets":[20,4]}}"#, body: six), "reversed offsets")
        expectCorrupt(safetensors(header: #"{"t":{"dtype":"F32","shape":[2,2],"data_offsets":[0,24]}}"#, body: six), "bytes ≠ shape × dtype (too many)")
        expectCorrupt(safetensors(header: #"{"t":{"dtype":"F32","shape":[2,4],"data_offsets":[0,24]}}"#, body: six), "bytes ≠ shape × dtype (too few)")
        expectCorrupt(safetensors(header: #"{"t":{"dtype":"F16","shape":[2,3],"data_offsets":[0,24]}}"#, body: six), "F16 needs 12 bytes")
        expectCorrupt(safetensors(header: #"{"t":{"dtype":"F64","shape":[3],"data_offsets":[0,24]}}"#, body: six), "unsupported dtype F64")
        expectCorrupt(safetensors(header: #"{"t":{"dtype":"I32","shape":[6],"data_offsets":[0,24]}}"#, body: six), "unsupported dtype I32")
        expectCorrupt(safetensors(header: #"{"t":{"dtype":7,"shape":[6],"data_offsets":[0,24]}}"#, body: six), "dtype not a string")
        expectCorrupt(safetensors(header: #"{"t":{"dtype":"F32","shape":[-2,-3],"data_offsets":[0,24]}}"#, body: six), "negative shape")
        expectCorrupt(safetensors(header: #"{"t":{"dtype":"F32","shape":[-1,6],"data_offsets":[0,24]}}"#, body: six), "one negative dimension")
        expectCorrupt(safetensors(header: #"{"t":{"dtype":"F32","shape":"6","data_offsets":[0,24]}}"#, body: six), "shape not a list")
        // 2^32 · 2^32 wraps to 0 in 64-bit arithmetic; 2^31 · 2^31 · 4 to 0 as well.
        expectCorrupt(safetensors(header: #"{"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}"#, body: six), "shape overflowing to 0 elements")
        expectCorrupt(safetensors(header: #"{"t":{"dtype":"F32","shape":[1099511627775,1099511627775,1099511627775],"data_offsets":[0,24]}}"#, body: six), "overflowing shape")
        expectCorrupt(safetensors(header: #"{"t":{"dtype":"F32","shape":[2147483648,2147483648],"data_offsets":[0,0]}}"#, body: six), "bytes wrap to 0")
        expectCorrupt(safetensors(header: #"{"__metadata__":{"step":3},"t":{"dtype":"F32","shape":[6],"data_offsets":[0,24]}}"#, body: six), "metadata value not a string")
    }

    func testHalfPrecisionWidening() throws {
        // F16: 1, -2, 0.5, 65504 (max), 2^-24 (smallest subnormal), -0, +inf.
        let f16: [UInt16] = [0x3C00, 0xC000, 0x3800, 0x7BFF, 0x0001, 0x8000, 0x7C00]
        // BF16: the top half of a float32: 1, -2, 3.140625, 1e-38-ish subnormal-free small, 2^100.
        let bf16: [UInt16] = [0x3F80, 0xC000, 0x4049, 0x0080, 0x7180]
        let f32: [Float] = [0.25, -8]
        func le(_ xs: [UInt16]) -> [UInt8] { xs.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] } }
        let body = le(f16) + le(bf16) + floatBytes(f32)
        let header = """
            {"h":{"dtype":"F16","shape":[7],"data_offsets":[0,14]},\
            "b":{"dtype":"BF16","shape":[5,1],"data_offsets":[14,24]},\
            "f":{"dtype":"F32","shape":[2],"data_offsets":[24,32]},\
            "__metadata__":{"format":"pt"}}
            """
        let (t, meta) = try SafeTensors.parse(safetensors(header: header, body: body), path: "half")
        XCTAssertEqual(meta, ["format": "pt"])
        let h = try XCTUnwrap(t["h"]).scalars
        XCTAssertEqual(Array(h[..<5]), [1, -2, 0.5, 65504, 5.9604645e-8])
        XCTAssertEqual(h[5], 0)
        XCTAssertEqual(h[5].sign, .minus)
        XCTAssertEqual(h[6], .infinity)
        XCTAssertEqual(t["b"]?.shape, [5, 1])
        XCTAssertEqual(t["b"]?.scalars, [1, -2, 3.140625, Float(bitPattern: 0x0080_0000), 0x1p100])
        XCTAssertEqual(t["f"]?.scalars, [0.25, -8])
    }

    /// Random bytes and damaged copies of a valid file either parse or throw EmeraldError; never crash.
    func testFuzzNeverCrashes() throws {
        var rng = RandomGenerator(seed: 2024)
        let valid = try validFile()
        var parsed = 0, rejected = 0
        func check(_ d: Data) {
            do { _ = try SafeTensors.parse(d, path: "fuzz"); parsed += 1 } catch is EmeraldError { rejected += 1 } catch {
                XCTFail("non-Emerald error \(error)")
            }
        }
        // Random byte strings, some with a plausible length prefix.
        for i in 0..<300 {
            let n = rng.nextInt(below: 96)
            var bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if i % 2 == 0 && n >= 8 {
                let len = UInt64(rng.nextInt(below: n - 7))
                withUnsafeBytes(of: len.littleEndian) { for k in 0..<8 { bytes[k] = $0[k] } }
            }
            check(Data(bytes))
        }
        // Single-byte mutations (random value or a JSON-significant character) and truncations.
        let specials = Array("{}[]\",:-019eE .".utf8)
        for i in 0..<400 {
            var d = valid
            let at = rng.nextInt(below: d.count)
            d[at] = i % 2 == 0 ? UInt8(truncatingIfNeeded: rng.next()) : specials[rng.nextInt(below: specials.count)]
            check(d)
        }
        for _ in 0..<150 { check(valid.prefix(rng.nextInt(below: valid.count))) }
        // Mutations inside the header itself, where they matter most.
        let headerLength = valid.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        for _ in 0..<300 {
            var d = valid
            d[8 + rng.nextInt(below: headerLength)] = specials[rng.nextInt(below: specials.count)]
            check(d)
        }
        XCTAssertGreaterThan(rejected, 500)
        XCTAssertGreaterThan(parsed, 0, "some mutations (body bytes, header padding) leave a valid file")
    }

    // MARK: - Checkpoint folders

    private func trainedOnce(_ model: any LanguageModel, vocab: Int, seed: UInt64 = 5) -> AdamW {
        let opt = AdamW(model.namedParameters())
        var rng = RandomGenerator(seed: seed)
        var batches = try! Batcher(source: TokenArray(TestSupport.ids(64, vocab: vocab, seed: seed)),
                                   batchSize: 2, blockSize: 7, seed: seed)
        for _ in 0..<2 {
            model.zeroGrad()
            model.loss(batches.next(), rng: &rng).backward()
            opt.step(lr: 1e-2)
        }
        return opt
    }

    private func tokenizer(vocab: Int) -> CharTokenizer {
        CharTokenizer(vocabulary: (0..<vocab).map { Unicode.Scalar(UInt8(97 + $0)) })
    }

    private func assertSameParameters(_ a: any LanguageModel, _ b: any LanguageModel, file: StaticString = #filePath, line: UInt = #line) {
        let pa = a.namedParameters(), pb = b.namedParameters()
        XCTAssertEqual(pa.map(\.name), pb.map(\.name), file: file, line: line)
        for (x, y) in zip(pa, pb) {
            XCTAssertEqual(x.tensor.shape, y.tensor.shape, x.name, file: file, line: line)
            XCTAssertEqual(x.tensor.scalars, y.tensor.scalars, x.name, file: file, line: line)
        }
    }

    func testBigramRoundTrip() throws {
        var rng = RandomGenerator(seed: 1)
        let model = BigramLanguageModel(BigramConfig(vocabSize: 6), rng: &rng)
        let tok = tokenizer(vocab: 6)
        let dir = TestSupport.tempDir("ckpt") + "/bigram"
        try Checkpoint(model: model, tokenizer: tok).save(to: dir)
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: dir)),
                       ["config.json", "model.safetensors", "tokenizer.json", ".emerald"])
        let back = try Checkpoint.load(from: dir)
        XCTAssertEqual(back.model.config, .bigram(BigramConfig(vocabSize: 6)))
        XCTAssertTrue(back.model is BigramLanguageModel)
        XCTAssertEqual(back.tokenizer as? CharTokenizer, tok)
        assertSameParameters(model, back.model)
        XCTAssertNil(back.state)
        XCTAssertNil(back.moments)
    }

    func testGPTRoundTripWithTrainingState() throws {
        var rng = RandomGenerator(seed: 2)
        let cfg = GPTConfig(vocabSize: 9, blockSize: 8, nLayer: 1, nHead: 2, nEmbd: 8, dropout: 0.1, bias: false,
                            activation: .relu, norm: .post, tieWeights: false, layerNormEpsilon: 1e-6)
        let model = GPT(cfg, rng: &rng)
        let opt = trainedOnce(model, vocab: 9)
        let tok = tokenizer(vocab: 9)
        var dataRNG = RandomGenerator(seed: 77)
        _ = dataRNG.next()
        let state = TrainState(step: 12, bestValLoss: 1.5, dataRNG: dataRNG, dropoutRNG: RandomGenerator(seed: 78))
        let dir = TestSupport.tempDir("ckpt") + "/gpt"
        try Checkpoint(model: model, tokenizer: tok, state: state).save(to: dir, optimizer: opt)
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: dir)),
                       ["config.json", "model.safetensors", "tokenizer.json", "train_state.json", "optimizer.safetensors", ".emerald"])

        let back = try Checkpoint.load(from: dir)
        XCTAssertEqual(back.model.config, .gpt(cfg))
        XCTAssertEqual(back.tokenizer as? CharTokenizer, tok)
        assertSameParameters(model, back.model)
        XCTAssertEqual(back.state, state)
        let moments = try XCTUnwrap(back.moments)
        XCTAssertEqual(moments.step, 2)
        XCTAssertEqual(moments.m.count, opt.m.count)
        for i in opt.m.indices {
            XCTAssertEqual(moments.m[i].scalars, opt.m[i].scalars, opt.names[i])
            XCTAssertEqual(moments.v[i].scalars, opt.v[i].scalars, opt.names[i])
        }
        XCTAssertTrue(opt.m.contains { $0.scalars.contains { $0 != 0 } }, "moments were non-trivial")
        // The restored optimizer continues exactly where the saved one was.
        let opt2 = AdamW(back.model.namedParameters())
        try opt2.restore(m: moments.m, v: moments.v, stepCount: moments.step)
        XCTAssertEqual(opt2.stepCount, opt.stepCount)

        // The loaded model computes the same logits.
        model.eval(); back.model.eval()
        let ids = TestSupport.ids(8, vocab: 9, seed: 3)
        let a = withNoGrad { model.logits(ids, batch: 1, time: 8, rng: &rng) }.scalars
        let b = withNoGrad { back.model.logits(ids, batch: 1, time: 8, rng: &rng) }.scalars
        XCTAssertEqual(a, b)

        // Loading a training output folder finds best/ (or checkpoint/) inside it.
        let run = TestSupport.tempDir("ckpt")
        try Checkpoint(model: model, tokenizer: tok).save(to: run + "/checkpoint")
        XCTAssertEqual(try Checkpoint.load(from: run).model.config, .gpt(cfg))
        // A trailing slash names the same folder.
        XCTAssertEqual(try Checkpoint.load(from: dir + "/").model.config, .gpt(cfg))
    }

    /// A saved tiny GPT checkpoint folder to damage.
    private func savedGPT(_ name: String = #function) throws -> String {
        var rng = RandomGenerator(seed: 4)
        let model = GPT(GPTConfig(vocabSize: 5, blockSize: 4, nLayer: 1, nHead: 1, nEmbd: 4), rng: &rng)
        let dir = TestSupport.tempDir(name) + "/ckpt"
        try Checkpoint(model: model, tokenizer: tokenizer(vocab: 5)).save(to: dir)
        return dir
    }

    private func expectLoadError(_ dir: String, contains phrase: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Checkpoint.load(from: dir), phrase, file: file, line: line) { e in
            guard let ee = e as? EmeraldError else { return XCTFail("not an EmeraldError: \(e)", file: file, line: line) }
            XCTAssertTrue(ee.description.contains(phrase), "\(ee.description) should mention \(phrase)", file: file, line: line)
        }
    }

    private func editJSON(_ path: String, _ body: (inout [String: Any]) -> Void) throws {
        var o = try XCTUnwrap(JSONSerialization.jsonObject(with: XCTUnwrap(FileManager.default.contents(atPath: path))) as? [String: Any])
        body(&o)
        try JSONSerialization.data(withJSONObject: o).write(to: URL(fileURLWithPath: path))
    }

    func testLoadErrors() throws {
        let fm = FileManager.default
        let missing = TestSupport.tempDir("ckpt") + "/does-not-exist"
        XCTAssertThrowsError(try Checkpoint.load(from: missing)) { e in
            XCTAssertEqual(e as? EmeraldError, .fileNotFound(missing))
        }
        expectLoadError(TestSupport.tempDir("ckpt"), contains: "no config.json")

        var dir = try savedGPT()
        try Data("{ not json".utf8).write(to: URL(fileURLWithPath: dir + "/config.json"))
        expectLoadError(dir, contains: "not a JSON object")

        dir = try savedGPT()
        try editJSON(dir + "/config.json") { $0["model_type"] = "transformer" }
        expectLoadError(dir, contains: "model_type \"transformer\" is not supported")

        dir = try savedGPT()
        try editJSON(dir + "/config.json") { $0["model_type"] = nil }
        expectLoadError(dir, contains: "model_type")

        dir = try savedGPT()
        try editJSON(dir + "/config.json") { $0["n_head"] = 3 }
        expectLoadError(dir, contains: "not divisible")

        dir = try savedGPT()
        try editJSON(dir + "/config.json") { $0["n_layer"] = "two" }
        expectLoadError(dir, contains: "n_layer")

        // A config far larger than the weights is rejected before allocating it.
        dir = try savedGPT()
        try editJSON(dir + "/config.json") { $0["n_embd"] = 1 << 40; $0["n_head"] = 1 }
        expectLoadError(dir, contains: "config.json is unusable: n_embd must be in 1...131072, got 1099511627776")
        dir = try savedGPT()
        try editJSON(dir + "/config.json") { $0["n_layer"] = 4000 }
        expectLoadError(dir, contains: "config.json describes a model")

        dir = try savedGPT()
        try editJSON(dir + "/config.json") { $0["n_embd"] = 8; $0["n_head"] = 2 }
        expectLoadError(dir, contains: "config.json describes a model of at least 840 parameters")

        dir = try savedGPT()
        try editJSON(dir + "/config.json") { $0["n_embd"] = 2 }
        expectLoadError(dir, contains: "tensor transformer.wte.weight has shape [5, 4], the config needs [5, 2]")

        // Missing tensor: rewrite the weights without one.
        dir = try savedGPT()
        var (tensors, _) = try SafeTensors.read(path: dir + "/model.safetensors")
        tensors["transformer.ln_f.weight"] = nil
        try SafeTensors.write(tensors.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, to: dir + "/model.safetensors")
        expectLoadError(dir, contains: "missing tensor transformer.ln_f.weight")

        // Shape mismatch with the config.
        dir = try savedGPT()
        (tensors, _) = try SafeTensors.read(path: dir + "/model.safetensors")
        tensors["transformer.wpe.weight"] = tensor([2, 8], seed: 1)
        try SafeTensors.write(tensors.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, to: dir + "/model.safetensors")
        expectLoadError(dir, contains: "transformer.wpe.weight has shape [2, 8], the config needs [4, 4]")

        // Truncated weights.
        dir = try savedGPT()
        let w = try XCTUnwrap(fm.contents(atPath: dir + "/model.safetensors"))
        try w.prefix(w.count / 2).write(to: URL(fileURLWithPath: dir + "/model.safetensors"))
        expectLoadError(dir, contains: "model.safetensors is unusable")

        dir = try savedGPT()
        try fm.removeItem(atPath: dir + "/model.safetensors")
        expectLoadError(dir, contains: "model.safetensors")

        // Tokenizer vocabulary ≠ model vocabulary.
        dir = try savedGPT()
        try editJSON(dir + "/tokenizer.json") { $0["vocab"] = [97, 98, 99] }
        expectLoadError(dir, contains: "tokenizer has 3 tokens but the model expects 5")

        // No tokenizer.json (a converted Hugging Face folder without one): loads, ids only.
        dir = try savedGPT()
        try fm.removeItem(atPath: dir + "/tokenizer.json")
        XCTAssertNil(try Checkpoint.load(from: dir).tokenizer)

        dir = try savedGPT()
        try Data("[]".utf8).write(to: URL(fileURLWithPath: dir + "/tokenizer.json"))
        expectLoadError(dir, contains: "tokenizer.json")

        // Damaged training state: garbage, or a generator state that would crash the batcher.
        dir = try savedGPT()
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: dir + "/train_state.json"))
        expectLoadError(dir, contains: "not a valid training state")
        let badRNG = #"{"step":3,"dataRNG":{"state":[1]},"dropoutRNG":{"state":[1,2,3,4]}}"#
        try Data(badRNG.utf8).write(to: URL(fileURLWithPath: dir + "/train_state.json"))
        expectLoadError(dir, contains: "not a valid training state")
        let good = #"{"step":3,"dataRNG":{"state":[1,2,3,4]},"dropoutRNG":{"state":[1,2,3,4]}}"#
        try Data(good.utf8).write(to: URL(fileURLWithPath: dir + "/train_state.json"))
        XCTAssertEqual(try Checkpoint.load(from: dir).state?.step, 3)

        // Optimizer moments that do not fit the model.
        try SafeTensors.write([("m.transformer.wte.weight", tensor([5, 4], seed: 1))], to: dir + "/optimizer.safetensors")
        expectLoadError(dir, contains: "moments for")
    }

    func testSaveLeavesNoSiblingsAndReplaces() throws {
        let fm = FileManager.default
        let parent = TestSupport.tempDir("ckpt")
        let dir = parent + "/run"
        var rng = RandomGenerator(seed: 6)
        let first = BigramLanguageModel(BigramConfig(vocabSize: 4), rng: &rng)
        let second = BigramLanguageModel(BigramConfig(vocabSize: 4), rng: &rng)
        try Checkpoint(model: first, tokenizer: tokenizer(vocab: 4)).save(to: dir)
        try Checkpoint(model: second, tokenizer: tokenizer(vocab: 4)).save(to: dir)
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: parent), ["run"], "no .tmp or .old sibling remains")
        assertSameParameters(second, try Checkpoint.load(from: dir).model)
        // A trailing slash must not put the siblings inside the folder.
        try Checkpoint(model: first, tokenizer: tokenizer(vocab: 4)).save(to: dir + "/")
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: parent), ["run"])
        XCTAssertEqual(Set(try fm.contentsOfDirectory(atPath: dir)), ["config.json", "model.safetensors", "tokenizer.json", ".emerald"])
        assertSameParameters(first, try Checkpoint.load(from: dir).model)
        // Stale temporary siblings of dead writers (this version's DIR.tmp-PID, an older one's
        // DIR.tmp) are removed, not merged.
        for stale in [dir + ".tmp", dir + ".tmp-999999999"] {
            try fm.createDirectory(atPath: stale, withIntermediateDirectories: true)
            try Data("junk".utf8).write(to: URL(fileURLWithPath: stale + "/junk"))
        }
        try Checkpoint(model: second, tokenizer: tokenizer(vocab: 4)).save(to: dir)
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: parent), ["run"])
        XCTAssertFalse(fm.fileExists(atPath: dir + "/junk"))
    }

    func testCrashBetweenRenamesLoadsOld() throws {
        let fm = FileManager.default
        let parent = TestSupport.tempDir("ckpt")
        let dir = parent + "/best"
        var rng = RandomGenerator(seed: 8)
        let model = BigramLanguageModel(BigramConfig(vocabSize: 5), rng: &rng)
        try Checkpoint(model: model, tokenizer: tokenizer(vocab: 5)).save(to: dir)
        // Simulate a crash after `DIR → DIR.old` and before `DIR.tmp → DIR`.
        try fm.moveItem(atPath: dir, toPath: dir + ".old")
        let back = try Checkpoint.load(from: dir)
        assertSameParameters(model, back.model)
        XCTAssertEqual(back.tokenizer as? CharTokenizer, tokenizer(vocab: 5))
        // Also with a trailing slash.
        XCTAssertNoThrow(try Checkpoint.load(from: parent + "/best/"))
        // The next save recovers: DIR exists again and the .old copy is gone.
        let newer = BigramLanguageModel(BigramConfig(vocabSize: 5), rng: &rng)
        try Checkpoint(model: newer, tokenizer: tokenizer(vocab: 5)).save(to: dir)
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: parent), ["best"])
        assertSameParameters(newer, try Checkpoint.load(from: dir).model)
        // Where the file system cannot exchange two names, a save moves DIR to DIR.old-PID first:
        // killed there, that copy loads, and the next save (of any process) puts it back.
        try fm.moveItem(atPath: dir, toPath: dir + ".old-999999999")
        assertSameParameters(newer, try Checkpoint.load(from: dir).model)
        OutputFolder(dir, kind: "checkpoint").removeLitter()
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: parent), ["best"])
        assertSameParameters(newer, try Checkpoint.load(from: dir).model)
    }
}
