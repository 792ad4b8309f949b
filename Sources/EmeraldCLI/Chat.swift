import ArgumentParser
import Emerald
import Foundation

struct Chat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The guide's chatbot: read a prompt, print a completion, repeat (EOF or Ctrl-C quits).")

    @OptionGroup var source: ModelSource
    @Option(help: "Tokens per answer.") var maxNewTokens: Int = 200
    @Option(help: "Sampling temperature; 0 is greedy.") var temperature: Float = 0.8
    @Option(help: "Sample only among the k most likely tokens.") var topK: Int?
    @Option(help: "Nucleus sampling threshold in (0, 1].") var topP: Float?
    @Option(help: "Stop an answer at this string (e.g. a blank line).") var stop: String?
    @Option(help: "Random seed.") var seed: UInt64 = 1337
    @Option(help: "Weights read per generated token: fp32, bf16 (bfloat16 copies: half the memory traffic) or int8 (q8_0 copies: 1.125 bytes per weight).")
    var dtype: String = "fp32"

    func run() throws {
        try EmeraldCommand.guarded {
            try require(maxNewTokens > 0, "--max-new-tokens must be positive, got \(maxNewTokens)")
            let options = SamplingOptions(temperature: temperature, topK: topK, topP: topP)
            try options.validate()
            let precision = try decodePrecision(dtype)
            let ckpt = try source.load()
            ckpt.model.setDecodePrecision(precision)
            let tokenizer = try ckpt.requireTokenizer("chat needs one to read prompts")
            signal(SIGINT) { _ in
                _ = write(1, "\n", 1)
                _exit(0)
            }
            var rng = RandomGenerator(seed: seed)
            let out = FileHandle.standardOutput
            while true {
                out.write(Data("> ".utf8))
                guard let line = readLine(strippingNewline: true) else { out.write(Data("\n".utf8)); return }
                if line.isEmpty { continue }
                let ids: [Int32]
                do { ids = try tokenizer.encode(line) } catch let e as EmeraldError {
                    note("error: \(e.description)")
                    continue
                }
                var text = ""
                var stream = StreamingText(tokenizer)
                try Generator.generate(model: ckpt.model, prompt: ids, maxNewTokens: maxNewTokens,
                                   options: options, rng: &rng) { id in
                    let piece = stream.push(id)
                    text += piece
                    out.write(Data(piece.utf8))
                    if let stop, !stop.isEmpty, text.hasSuffix(stop) { return false }
                    return true
                }
                out.write(Data((stream.finish() + "\n").utf8))
            }
        }
    }
}
