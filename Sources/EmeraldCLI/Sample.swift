import ArgumentParser
import Emerald
import Foundation

struct Sample: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Generate text from a checkpoint or a Hugging Face model (GPT-2, Llama family).")

    @OptionGroup var source: ModelSource
    @Option(help: "Text to continue (default: a newline). A leading BOM is dropped and CRLF read as LF, as in training text.")
    var prompt: String?
    @Option(help: "Read the prompt from this UTF-8 file (instead of --prompt).") var promptFile: String?
    @Option(help: "Prompt as token ids, e.g. 464,3290 (instead of --prompt).") var promptIds: String?
    @Option(help: "Tokens to generate.") var maxNewTokens: Int = 500
    @Option(help: "Sampling temperature; 0 is greedy.") var temperature: Float = 1
    @Option(help: "Sample only among the k most likely tokens.") var topK: Int?
    @Option(help: "Nucleus sampling threshold in (0, 1].") var topP: Float?
    @Option(help: "Random seed.") var seed: UInt64 = 1337
    @Option(help: "Weights read per generated token: fp32, bf16 (bfloat16 copies: half the memory traffic) or int8 (q8_0 copies: 1.125 bytes per weight).")
    var dtype: DecodePrecision = .fp32
    @Option(help: "Independent samples from the same prompt, each seeded in turn (--seed, --seed + 1, …).") var numSamples: Int = 1
    @Flag(help: "Print the generated ids as one JSON array instead of text.") var printIds = false
    @Flag(name: .shortAndLong, help: "After generating, print the speed (prompt and new tokens per second) on stderr.") var verbose = false

    func run() throws {
        try EmeraldCommand.guarded {
            try require(maxNewTokens >= 0, "--max-new-tokens must not be negative, got \(maxNewTokens)")
            try require([prompt != nil, promptIds != nil, promptFile != nil].filter { $0 }.count <= 1,
                        "pass one of --prompt, --prompt-file or --prompt-ids")
            try require(numSamples > 0 && numSamples <= 10_000, "--num-samples must be in 1...10000, got \(numSamples)")
            let options = SamplingOptions(temperature: temperature, topK: topK, topP: topP)
            try options.validate()
            let precision = dtype
            let promptText = try promptFile.map { try TextCorpus.load(path: $0) } ?? prompt.map(TextCorpus.normalize) ?? "\n"
            let ckpt = try source.load()
            ckpt.model.setDecodePrecision(precision)
            let vocab = ckpt.model.config.vocabularySize
            let promptIds: [Int32]
            if let ids = self.promptIds {
                promptIds = try parseIDs(ids, flag: "--prompt-ids", vocabularySize: vocab)
            } else {
                promptIds = try ckpt.requireTokenizer("pass --prompt-ids").encode(promptText)
            }
            try require(!promptIds.isEmpty, "--prompt must not be empty")
            if let ctx = ckpt.model.contextLength, ctx > 1 {
                // Generation slides past the context; a prompt must fit the position table.
                try require(promptIds.count <= ctx,
                            "the prompt is \(promptIds.count) tokens but the model's context (position table) is \(ctx); shorten it")
            }
            let out = FileHandle.standardOutput
            let tokenizer = printIds ? nil : try ckpt.requireTokenizer("pass --print-ids to see the generated ids")
            var speed = GenerationSpeed()
            for n in 0..<numSamples {
                var rng = RandomGenerator(seed: seed &+ UInt64(n))
                if numSamples > 1 && !printIds { out.write(Data("\(n == 0 ? "" : "\n")--- sample \(n + 1) of \(numSamples) (seed \(seed &+ UInt64(n)))\n".utf8)) }
                guard let tokenizer else {
                    let ids = try speed.time(prompt: promptIds.count) {
                        try Generator.generate(model: ckpt.model, prompt: promptIds, maxNewTokens: maxNewTokens, options: options, rng: &rng)
                    }
                    out.write(Data(("[" + ids.map { String($0) }.joined(separator: ", ") + "]\n").utf8))
                    continue
                }
                out.write(Data((self.promptIds == nil ? promptText : tokenizer.decode(promptIds)).utf8))
                var text = TextStream(tokenizer)
                try speed.time(prompt: promptIds.count) {
                    try Generator.generate(model: ckpt.model, prompt: promptIds, maxNewTokens: maxNewTokens,
                                           options: options, rng: &rng) { id in
                        out.write(Data(text.push(id).utf8))
                        return true
                    }
                }
                out.write(Data((text.finish() + "\n").utf8))
            }
            if verbose { note(speed.summary) }
        }
    }
}

/// Tokens generated and the time they took, for `--verbose`.
struct GenerationSpeed {
    private(set) var promptTokens = 0, newTokens = 0
    private(set) var seconds = 0.0

    /// Runs `body` (one generation from a `prompt`-token prompt), adding its new ids and time.
    @discardableResult
    mutating func time(prompt: Int, _ body: () throws -> [Int32]) rethrows -> [Int32] {
        let start = Date()
        let ids = try body()
        seconds += Date().timeIntervalSince(start)
        promptTokens += prompt
        newTokens += ids.count
        return ids
    }

    /// "30 new tokens in 0.52 s: 57.7 tokens/s (prompt 4 tokens)".
    var summary: String {
        String(format: "%d new tokens in %.2f s: %.1f tokens/s (prompt %d tokens)", newTokens, seconds,
               seconds > 0 ? Double(newTokens) / seconds : 0, promptTokens)
    }
}
