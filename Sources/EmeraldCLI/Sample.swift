import ArgumentParser
import Emerald
import Foundation

struct Sample: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Generate text from a checkpoint or a Hugging Face GPT-2 model.")

    @OptionGroup var source: ModelSource
    @Option(help: "Text to continue (default: a newline).") var prompt: String?
    @Option(help: "Prompt as token ids, e.g. 464,3290 (instead of --prompt).") var promptIds: String?
    @Option(help: "Tokens to generate.") var maxNewTokens: Int = 500
    @Option(help: "Sampling temperature; 0 is greedy.") var temperature: Float = 1
    @Option(help: "Sample only among the k most likely tokens.") var topK: Int?
    @Option(help: "Nucleus sampling threshold in (0, 1].") var topP: Float?
    @Option(help: "Random seed.") var seed: UInt64 = 1337
    @Option(help: "Weights read per generated token: fp32, bf16 (bfloat16 copies: half the memory traffic) or int8 (q8_0 copies: 1.125 bytes per weight).")
    var dtype: String = "fp32"
    @Flag(help: "Print the generated ids as one JSON array instead of text.") var printIds = false

    func run() throws {
        try EmeraldCommand.guarded {
            try require(maxNewTokens >= 0, "--max-new-tokens must not be negative, got \(maxNewTokens)")
            try require(prompt == nil || promptIds == nil, "pass --prompt or --prompt-ids, not both")
            let options = SamplingOptions(temperature: temperature, topK: topK, topP: topP)
            try options.validate()
            let precision = try decodePrecision(dtype)
            let ckpt = try source.load()
            ckpt.model.setDecodePrecision(precision)
            let vocab = ckpt.model.config.vocabularySize
            let promptIds: [Int32]
            if let ids = self.promptIds {
                promptIds = try parseIDs(ids, flag: "--prompt-ids", vocabularySize: vocab)
            } else {
                promptIds = try ckpt.requireTokenizer("pass --prompt-ids").encode(prompt ?? "\n")
            }
            try require(!promptIds.isEmpty, "--prompt must not be empty")
            if let ctx = ckpt.model.contextLength, ctx > 1 {
                // Generation slides past the context; a prompt must fit the position table.
                try require(promptIds.count <= ctx,
                            "--prompt is \(promptIds.count) tokens but the model's context (position table) is \(ctx); shorten it")
            }
            var rng = RandomGenerator(seed: seed)
            let out = FileHandle.standardOutput
            if printIds {
                let ids = try Generator.generate(model: ckpt.model, prompt: promptIds, maxNewTokens: maxNewTokens,
                                             options: options, rng: &rng)
                out.write(Data(("[" + ids.map { String($0) }.joined(separator: ", ") + "]\n").utf8))
                return
            }
            let tokenizer = try ckpt.requireTokenizer("pass --print-ids to see the generated ids")
            out.write(Data((self.promptIds == nil ? prompt ?? "\n" : tokenizer.decode(promptIds)).utf8))
            var text = StreamingText(tokenizer)
            try Generator.generate(model: ckpt.model, prompt: promptIds, maxNewTokens: maxNewTokens,
                               options: options, rng: &rng) { id in
                out.write(Data(text.push(id).utf8))
                return true
            }
            out.write(Data((text.finish() + "\n").utf8))
        }
    }
}

/// Turns sampled ids into text as they arrive; byte-level BPE ids are held
/// back until they complete a UTF-8 character.
struct StreamingText {
    private let tokenizer: any Tokenizer
    private var bpe: BPEStreamDecoder?

    init(_ tokenizer: any Tokenizer) {
        self.tokenizer = tokenizer
        bpe = (tokenizer as? ByteLevelBPETokenizer).map { BPEStreamDecoder($0) }
    }

    /// Text completed by `id`.
    mutating func push(_ id: Int32) -> String {
        if bpe != nil { return bpe!.push(id) }
        return tokenizer.decode([id])
    }

    /// Text still held back.
    mutating func finish() -> String { bpe?.finish() ?? "" }
}
