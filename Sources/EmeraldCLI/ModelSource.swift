import ArgumentParser
import Emerald
import Foundation

/// `--model DIR|HUB-ID` or `--checkpoint DIR`: where a command's model comes from.
struct ModelSource: ParsableArguments {
    @Option(help: "Model folder (Emerald checkpoint, Hugging Face GPT-2 or Llama-family), or a hub id such as gpt2 (cached; downloaded when online).")
    var model: String?
    @Option(help: "Checkpoint folder (a training --out folder, or one of its best/ or checkpoint/).") var checkpoint: String?

    /// Loads the model named by exactly one of the two flags.
    func load() throws -> Checkpoint {
        switch (model, checkpoint) {
        case (let m?, nil): return try Checkpoint.load(model: m, log: note)
        case (nil, let c?): return try Checkpoint.load(from: c)
        case (nil, nil): throw EmeraldError.invalidArgument("pass --model DIR (or a hub id) or --checkpoint DIR")
        default: throw EmeraldError.invalidArgument("pass either --model or --checkpoint, not both")
        }
    }
}

extension Checkpoint {
    /// The tokenizer, or an error saying what to pass instead.
    func requireTokenizer(_ instead: String) throws -> any Tokenizer {
        guard let tokenizer else {
            throw EmeraldError.invalidArgument("the model folder has no tokenizer (tokenizer.json, or vocab.json + merges.txt); \(instead)")
        }
        return tokenizer
    }
}

extension DecodePrecision: ExpressibleByArgument {}

/// Token ids from "1,2,3" or "[1, 2, 3]" (whitespace allowed), each below `vocabularySize`.
func parseIDs(_ text: String, flag: String, vocabularySize: Int) throws -> [Int32] {
    var s = text.trimmingCharacters(in: .whitespacesAndNewlines)
    if s.hasPrefix("[") && s.hasSuffix("]") { s = String(s.dropFirst().dropLast()) }
    var ids: [Int32] = []
    for part in s.split(whereSeparator: { $0 == "," || $0.isWhitespace }) {
        guard let id = Int32(part) else {
            throw EmeraldError.invalidArgument("\(flag) takes token ids as a JSON array or a comma-separated list such as 1,2,3; \(String(part.prefix(20)).debugDescription) is not an integer id")
        }
        guard id >= 0 && Int(id) < vocabularySize else {
            throw EmeraldError.invalidArgument("\(flag): token id \(id) is outside the vocabulary (0..<\(vocabularySize))")
        }
        ids.append(id)
    }
    return ids
}

/// A float as the shortest decimal that reads back to the same float (JSON-safe).
func jsonNumber(_ x: Float) -> String {
    x.isFinite ? "\(x)" : (x.isNaN ? "null" : (x > 0 ? "1e999" : "-1e999"))
}

/// `[a, b, …]` of floats.
func jsonArray(_ xs: UnsafeBufferPointer<Float>) -> String {
    var s = "["
    s.reserveCapacity(xs.count * 12)
    for (i, x) in xs.enumerated() { if i > 0 { s += ", " }; s += jsonNumber(x) }
    return s + "]"
}
