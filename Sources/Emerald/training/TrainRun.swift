import Foundation

/// What `emerald train` was started with, kept as `OUT/train.json` so that `--resume OUT`
/// continues the same run — same model kind, corpus and settings — with no other flag.
/// The model's shape is in the checkpoint's `config.json`.
public struct TrainRun: Codable, Equatable {
    /// The family trained: `gpt`, `llama` or `bigram`.
    public var model: String
    /// The corpus as an absolute path; nil for the shipped book.
    public var data: String?
    /// Every training setting, data-parallel shards resolved (so a resume on another thread
    /// count splits batches the same way).
    public var train: TrainConfig

    /// The file's name inside a run's output folder.
    public static let fileName = "train.json"

    /// Settings of a run.
    public init(model: String, data: String?, train: TrainConfig) {
        self.model = model; self.data = data; self.train = train
    }

    /// The run settings in `dir`, or nil when the folder has none (a run from an Emerald
    /// that did not write them).
    public static func read(from dir: String) throws -> TrainRun? {
        let path = dir + "/" + fileName
        guard let d = FileManager.default.contents(atPath: path) else { return nil }
        do { return try JSONDecoder().decode(TrainRun.self, from: d) } catch {
            throw EmeraldError.corruptCheckpoint(path: path, reason: "not valid run settings (\(error.localizedDescription))")
        }
    }

    /// Writes the settings into `dir` atomically.
    public func write(to dir: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try enc.encode(self) + Data("\n".utf8), to: dir + "/" + TrainRun.fileName)
    }

    /// An absolute form of `path`, so a resume from another working folder finds the corpus.
    public static func absolute(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.path
    }
}
