@_exported import EmeraldCore

/// Every failure a user can cause, each with one line that says what to do.
public enum EmeraldError: Error, CustomStringConvertible, Equatable {
    /// A file or folder that should exist does not.
    case fileNotFound(String)
    /// A file exists but holds nothing usable.
    case emptyInput(String)
    /// Bytes that are not valid UTF-8.
    case invalidUTF8(path: String, byteOffset: Int)
    /// A hyperparameter or option outside its valid range.
    case invalidArgument(String)
    /// A character the tokenizer's vocabulary does not contain.
    case unknownCharacter(String)
    /// A checkpoint or weights file that is damaged or inconsistent.
    case corruptCheckpoint(path: String, reason: String)
    /// Reading or writing failed.
    case io(String)
    /// The book could not be downloaded.
    case download(String)
    /// A tokenizer file (vocabulary, merges, tokenizer.json) that is missing pieces or inconsistent.
    case invalidTokenizer(path: String, reason: String)
    /// A computation produced NaN or infinity where a number was needed (e.g. logits).
    case nonFinite(String)
    /// A setting out of range, named by its field (`batch_size`, `n_embd`): a command-line tool
    /// maps the field to its flag, a config file reader to its key.
    case invalidSetting(field: String, problem: String)

    /// The one-line message shown to users.
    public var description: String {
        switch self {
        case .fileNotFound(let p): return "no such file or folder: \(p)"
        case .emptyInput(let p): return "\(p) is empty"
        case .invalidUTF8(let p, let o): return "\(p) is not valid UTF-8 (first bad byte at offset \(o))"
        case .invalidArgument(let m): return m
        case .unknownCharacter(let m): return m
        case .corruptCheckpoint(let p, let r): return "checkpoint \(p) is unusable: \(r)"
        case .io(let m): return m
        case .download(let m): return m
        case .invalidTokenizer(let p, let r): return "tokenizer \(p) is unusable: \(r)"
        case .nonFinite(let m): return m
        case .invalidSetting(let f, let p): return "\(f) \(p)"
        }
    }
}

/// Throws `invalidArgument` unless `condition` holds.
@inline(__always)
public func require(_ condition: Bool, _ message: @autoclosure () -> String) throws {
    if !condition { throw EmeraldError.invalidArgument(message()) }
}

/// Throws `invalidSetting(field:problem:)` unless `condition` holds.
@inline(__always)
public func require(_ condition: Bool, field: String, _ problem: @autoclosure () -> String) throws {
    if !condition { throw EmeraldError.invalidSetting(field: field, problem: problem()) }
}

extension Float {
    /// The Double with this float's shortest decimal form (0.1, not 0.10000000149011612), so a
    /// JSON file says what the user typed.
    public var decimalDouble: Double { isFinite ? Double("\(self)") ?? Double(self) : Double(self) }
}
