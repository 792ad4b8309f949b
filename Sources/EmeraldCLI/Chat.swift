import ArgumentParser
import Emerald
import EmeraldTerminal
import Foundation
import Synchronization

/// Set by SIGINT while an answer is being generated: the answer stops, the chat goes on.
/// Atomics, so the token loop reloads it (a plain global may be read once and kept).
private let stopAnswer = Atomic<Int>(0)
/// 1 while generating; SIGINT outside an answer (piped input) quits.
private let answering = Atomic<Int>(0)

struct Chat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The guide's chatbot: read a prompt, print a completion, repeat.",
        discussion: """
            On a terminal the prompt line is editable (←/→, Home/End, Ctrl-A/E/K/U/W, Backspace/Delete) \
            with a history (↑/↓). Ctrl-C stops the answer being written; Ctrl-C at an empty prompt or \
            Ctrl-D quits. The conversation so far — prompts and answers — is the model's context, up to \
            its window (the oldest tokens drop out first); a line holding only /reset starts afresh. \
            Prompts are read as training text is: a leading BOM dropped, CRLF as LF. A model whose folder \
            has a chat template (tokenizer_config.json: ChatML, Llama 2, Llama 3) gets the conversation \
            rendered by it, and each answer ends at the template's end-of-turn token; the oldest turns \
            drop out when the conversation outgrows the context (--raw continues the text instead).
            """)

    @OptionGroup var source: ModelSource
    @Option(help: "Tokens per answer.") var maxNewTokens: Int = 200
    @Option(help: "Sampling temperature; 0 is greedy.") var temperature: Float = 0.8
    @Option(help: "Sample only among the k most likely tokens.") var topK: Int?
    @Option(help: "Nucleus sampling threshold in (0, 1].") var topP: Float?
    @Option(help: "Stop an answer at this string (e.g. a blank line).") var stop: String?
    @Option(help: "Random seed.") var seed: UInt64 = 1337
    @Option(help: "Weights read per generated token: fp32, bf16 (bfloat16 copies: half the memory traffic) or int8 (q8_0 copies: 1.125 bytes per weight).")
    var dtype: DecodePrecision = .fp32
    @Flag(help: "Each prompt alone, without the conversation before it.") var noContext = false
    @Flag(help: "Continue the text as typed even when the model ships a chat template (tokenizer_config.json).")
    var raw = false
    @Flag(name: .shortAndLong, help: "After each answer, print its speed (tokens per second) on stderr.") var verbose = false

    func run() throws {
        try EmeraldCommand.guarded {
            try require(maxNewTokens > 0, "--max-new-tokens must be positive, got \(maxNewTokens)")
            let options = SamplingOptions(temperature: temperature, topK: topK, topP: topP)
            try options.validate()
            let precision = dtype
            let ckpt = try source.load()
            ckpt.model.setDecodePrecision(precision)
            let tokenizer = try ckpt.requireTokenizer("chat needs one to read prompts")
            let window = ckpt.model.contextLength.flatMap { $0 > 1 ? $0 : nil } ?? 1024
            // A model with a chat template (tokenizer_config.json) gets its turns rendered by it
            // and answers until its end-of-turn token; others continue the text, as in the guide.
            let template = raw ? nil : try ckpt.directory.map { try ChatTemplate.load(folder: $0) }.flatMap { $0.kind == .plain ? nil : $0 }
            let stops = template?.stopTokens(for: tokenizer) ?? []
            var messages: [ChatMessage] = []
            signal(SIGINT) { _ in
                if answering.load(ordering: .relaxed) == 1 { stopAnswer.store(1, ordering: .relaxed); return }
                _ = write(1, "\n", 1)
                _exit(0)
            }
            let input = LineInput()
            var rng = RandomGenerator(seed: seed)
            let out = FileHandle.standardOutput
            var context: [Int32] = []
            while true {
                let read: LineInput.Line
                do { read = try input.read(prompt: "> ") } catch let e as TerminalError {
                    throw EmeraldError.invalidArgument(e.description)
                }
                guard case .text(let raw) = read else { if read == .endOfInput && !input.interactive { out.write(Data("\n".utf8)) }; return }
                let line = TextCorpus.normalize(raw)
                if line.isEmpty { continue }
                if line == "/reset" { context = []; messages = []; note("(context cleared)"); continue }
                if let template {
                    if noContext { messages = [] }
                    messages.append(ChatMessage(role: "user", content: line))
                    do { context = try template.prompt(fitting: &messages, tokenizer: tokenizer, room: window - min(maxNewTokens, window / 2)) } catch let e as EmeraldError {
                        note("error: \(e.description)")
                        messages.removeLast()
                        continue
                    }
                } else {
                    let ids: [Int32]
                    do { ids = try tokenizer.encode(context.isEmpty || noContext ? line : "\n" + line) } catch let e as EmeraldError {
                        note("error: \(e.description)")
                        continue
                    }
                    if noContext { context = [] }
                    context = Array((context + ids).suffix(window))
                }
                var text = ""
                var stream = TextStream(tokenizer)
                var speed = GenerationSpeed()
                stopAnswer.store(0, ordering: .relaxed)
                answering.store(1, ordering: .relaxed)
                let answer = try speed.time(prompt: context.count) {
                    try Generator.generate(model: ckpt.model, prompt: context, maxNewTokens: maxNewTokens,
                                           options: options, rng: &rng) { id in
                        let piece = stream.push(id)
                        text += piece
                        out.write(Data(piece.utf8))
                        if stopAnswer.load(ordering: .relaxed) == 1 { return false }
                        if let stop, !stop.isEmpty, text.hasSuffix(stop) { return false }
                        return true
                    }
                }
                answering.store(0, ordering: .relaxed)
                out.write(Data((stream.finish() + (stopAnswer.load(ordering: .relaxed) == 1 ? " [stopped]\n" : "\n")).utf8))
                if template != nil {
                    messages.append(ChatMessage(role: "assistant", content: text))
                } else {
                    context = Array((context + answer).suffix(window))
                }
                if verbose { note(speed.summary) }
            }
        }
    }
}
