import ArgumentParser
import Emerald
import EmeraldTerminal
import Foundation

/// `emerald tokenize`: text → ids (a JSON array), or ids → text with `--decode`.
struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Encode text to token ids (printed as a JSON array), or decode ids with --decode.",
        discussion: """
            Examples:
              emerald tokenize --tokenizer gpt2 "Hello world"        → [15496, 995]
              echo -n "[15496, 995]" | emerald tokenize --tokenizer gpt2 --decode
            Without TEXT, the input is read from stdin (all of it, including a final newline).
            """)

    @Option(help: "gpt2, a tokenizer.json, a folder with encoder.json + vocab.bpe (or vocab.json + merges.txt), or a checkpoint folder.")
    var tokenizer: String
    @Flag(help: "Recognise special tokens such as <|endoftext|> in the text (by default they are ordinary text).")
    var allowSpecial = false
    @Flag(help: "Decode: the input is token ids (a JSON array or a comma-separated list); prints the text.")
    var decode = false
    @Argument(help: "The text to encode (or the ids, with --decode); stdin when absent.")
    var text: String?

    func run() throws {
        try EmeraldCommand.guarded {
            let tok = try loadTokenizer(spec: tokenizer)
            let source = text == nil ? "stdin" : "TEXT"
            let input: [UInt8]
            do { input = try text.map { Array($0.utf8) } ?? StandardInput.readAll(limit: 1 << 26) } catch let e as TerminalError {
                throw EmeraldError.invalidArgument(e.description)
            }
            if decode {
                let ids = try parseIDs(String(decoding: input, as: UTF8.self), flag: "--decode", vocabularySize: tok.vocabularySize)
                if let bpe = tok as? ByteLevelBPETokenizer {
                    FileHandle.standardOutput.write(Data(bpe.decodeBytes(ids)))
                } else {
                    FileHandle.standardOutput.write(Data(tok.decode(ids).utf8))
                }
                return
            }
            let ids: [Int32]
            if let bpe = tok as? ByteLevelBPETokenizer {
                ids = try bpe.encode(utf8: input, allowedSpecial: allowSpecial ? bpe.allSpecialTokens : [], source: source)
            } else {
                if let bad = TextCorpus.firstInvalidUTF8(input) { throw EmeraldError.invalidUTF8(path: source, byteOffset: bad) }
                ids = try tok.encode(String(decoding: input, as: UTF8.self))
            }
            print("[" + ids.map { String($0) }.joined(separator: ", ") + "]")
        }
    }
}

