import ArgumentParser
import Emerald
import Foundation

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert between Emerald checkpoints and Hugging Face folders (GPT-2, Llama, Qwen2, Mistral).",
        discussion: """
            emerald convert CKPT --to-hf OUT   writes config.json, model.safetensors (float32), \
            generation_config.json and tokenizer files that transformers' GPT2LMHeadModel (a Llama: \
            LlamaForCausalLM or Qwen2ForCausalLM) / \
            AutoTokenizer load. Char-level tokenizers become a tokenizers WordLevel tokenizer.json \
            (one token per Unicode scalar). Post-LN models cannot be expressed as GPT-2 and are refused.
            emerald convert HFDIR --out CKPT   writes an Emerald checkpoint folder.
            """)

    @Argument(help: "Source: an Emerald checkpoint, a Hugging Face GPT-2 or Llama-family folder, or a hub id.") var source: String
    @Option(help: "Write a Hugging Face folder here.") var toHf: String?
    @Option(help: "Write an Emerald checkpoint here.") var out: String?

    func run() throws {
        try EmeraldCommand.guarded {
            try require((toHf == nil) != (out == nil), "pass exactly one of --to-hf OUT or --out CKPT")
            let sourcePath = try Hub.resolve(source, log: note)
            let destination = toHf ?? out!
            try requireDistinct(source: sourcePath, destination: destination)
            let ckpt = try Checkpoint.load(from: sourcePath)
            if let toHf {
                for n in try HuggingFace.export(ckpt, to: toHf) { note("note: \(n)") }
                note("wrote \(toHf): config.json, model.safetensors, generation_config.json and tokenizer files")
            } else if let out {
                let folder = OutputFolder(out, kind: "checkpoint")
                try folder.requireWritable(recognised: Checkpoint.isOlderEmeraldCheckpoint)
                let lock = try folder.lock()
                defer { lock.release() }
                folder.removeLitter()
                try Checkpoint(model: ckpt.model, tokenizer: ckpt.tokenizer).save(to: out)
                note("wrote \(out): config.json, model.safetensors\(ckpt.tokenizer == nil ? " (no tokenizer in the source)" : ", tokenizer.json")")
            }
        }
    }

    /// Refuses a destination that is the source, holds it, or lies inside it.
    func requireDistinct(source: String, destination: String) throws {
        let a = URL(fileURLWithPath: source).resolvingSymlinksInPath().standardizedFileURL.path
        let b = URL(fileURLWithPath: destination).resolvingSymlinksInPath().standardizedFileURL.path
        try require(a != b, "the destination \(destination) is the source; choose another folder")
        try require(!a.hasPrefix(b + "/"), "the destination \(destination) holds the source \(source); choose another folder")
        try require(!b.hasPrefix(a + "/"), "the destination \(destination) lies inside the source \(source); choose another folder")
    }
}
