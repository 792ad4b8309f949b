import ArgumentParser
import Emerald
import Foundation

/// `--model DIR|HUB-ID` or `--checkpoint DIR`: where a command's model comes from.
struct ModelSource: ParsableArguments {
    @Option(help: "Model folder (Emerald checkpoint or Hugging Face GPT-2), or a hub id such as gpt2 (cached; downloaded when online).")
    var model: String?
    @Option(help: "Checkpoint folder (a training --out folder, or one of its best/ or checkpoint/).") var checkpoint: String?

    /// Loads the model named by exactly one of the two flags.
    func load() throws -> Checkpoint {
        switch (model, checkpoint) {
        case (let m?, nil): return try Checkpoint.load(from: Hub.resolve(m, log: note))
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

/// Parses "1,2,3" (or "[1, 2, 3]") into ids below `vocabularySize`.
func parseIDs(_ text: String, flag: String, vocabularySize: Int) throws -> [Int32] {
    let body = text.trimmingCharacters(in: CharacterSet(charactersIn: "[] \n\t"))
    var ids: [Int32] = []
    for part in body.split(separator: ",", omittingEmptySubsequences: false) {
        let s = part.trimmingCharacters(in: .whitespaces)
        guard let v = Int(s) else { throw EmeraldError.invalidArgument("\(flag) takes comma-separated token ids such as 1,2,3; \"\(s)\" is not an integer") }
        guard v >= 0 && v < vocabularySize else {
            throw EmeraldError.invalidArgument("\(flag): id \(v) is outside the model's vocabulary 0..<\(vocabularySize)")
        }
        ids.append(Int32(v))
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
