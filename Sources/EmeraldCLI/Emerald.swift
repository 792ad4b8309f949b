import ArgumentParser
import Emerald
import Foundation

@main
struct EmeraldCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emerald",
        abstract: "GPT-style language models from scratch: tokenize, train, sample.",
        version: emeraldVersion,
        subcommands: [Train.self, Finetune.self, Prepare.self, Sample.self, Chat.self, Serve.self, Score.self, Eval.self, Convert.self, Bench.self,
                      Tokenize.self, TokenizerCommand.self])

    /// Parses and runs like ArgumentParser's `main()`, but a bad command line ends, like every
    /// other error, with one `error:` line and exit 1 (help and --version print as usual).
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .success || error is ExitCode { exit(withError: error) }
            var message = self.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            if let hint = CommandSuggestion.hint(for: arguments, commands: configuration.subcommands) { message += hint }
            if message.hasPrefix("Missing value for '"), let flag = message.split(separator: "'").dropFirst().first?.split(separator: " ").first,
               let i = arguments.firstIndex(of: String(flag)), i + 1 < arguments.count, arguments[i + 1].hasPrefix("-"),
               Double(arguments[i + 1]) != nil {
                message += "; a negative value is written \(flag)=\(arguments[i + 1])"
            }
            FileHandle.standardError.write(Data("error: \(message)\n".utf8))
            Foundation.exit(1)
        }
    }

    /// Runs a command body, turning any error into one line on stderr and exit 1; a setting
    /// the library names by its field is named by its flag (`batch_size` → `--batch-size`).
    static func guarded(_ body: () throws -> Void) throws {
        do {
            try body()
            ProcessGroup.current?.finish()  // a job's processes leave it together
        } catch let e as EmeraldError {
            var text = e.description
            if case .invalidSetting(let field, var problem) = e {
                // "n_embd 30 is not divisible by n_head 4" → "--n-embd 30 is not divisible by --n-head 4"
                for other in ["n_head", "n_embd", "n_layer"] { problem = problem.replacingOccurrences(of: other, with: flag(other)) }
                text = flag(field) + " " + problem
            }
            text = flagsNamed(in: text)
            // The other processes of a job would wait for this one in the next collective: end
            // them all. Process 0 speaks for the job; another process leaves it time to (an
            // error every process meets is then one line), and speaks only if the job lives on.
            if let group = ProcessGroup.current, group.size > 1 {
                if group.isMain {
                    FileHandle.standardError.write(Data("error: \(text)\n".utf8))
                } else {
                    sleep(3)
                    _ = "error (process \(group.rank)): \(text)\n".withCString { write(quietStandardError, $0, strlen($0)) }
                }
                group.abort(1)
            }
            FileHandle.standardError.write(Data("error: \(text)\n".utf8))
            throw ExitCode(1)
        } catch let e as ExitCode {
            throw e
        } catch {
            FileHandle.standardError.write(Data("error: \(error.localizedDescription)\n".utf8))
            throw ExitCode(1)
        }
    }
}

/// The flag of a library setting: `batch_size` → `--batch-size`.
func flag(_ field: String) -> String { "--" + field.replacingOccurrences(of: "_", with: "-") }

/// A library message with its settings, which it names in backticks (`` `val_split` ``), as
/// this tool's flags (`--val-split`).
func flagsNamed(in message: String) -> String {
    var out = "", rest = Substring(message)
    while let open = rest.firstIndex(of: "`") {
        out += rest[..<open]
        let after = rest[rest.index(after: open)...]
        guard let close = after.firstIndex(of: "`") else { break }
        let name = after[..<close]
        out += name.allSatisfy({ $0.isLowercase || $0 == "_" }) && !name.isEmpty ? flag(String(name)) : "`\(name)`"
        rest = after[after.index(after: close)...]
    }
    return out + rest
}

/// Writes a line to stderr (progress that should not mix with generated text).
func note(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

/// Applies `--threads` (validated) to the shared pool.
func applyThreads(_ threads: Int?) throws {
    guard let threads else { return }
    try require(threads > 0 && threads <= 256, "--threads must be in 1...256, got \(threads)")
    ThreadPool.configure(threads: threads)
}
