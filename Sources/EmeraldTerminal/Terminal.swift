import Foundation

/// Reads lines from standard input: edited in place (raw mode) on a terminal, plain otherwise.
public final class LineInput {
    /// What a read returned.
    public enum Line: Equatable {
        /// A line (without its newline).
        case text(String)
        /// Ctrl-C at an empty prompt.
        case interrupted
        /// End of input (Ctrl-D at an empty prompt, or the end of piped input).
        case endOfInput
    }

    /// Whether lines are edited in place (stdin and stdout are terminals).
    public let interactive: Bool
    private var editor: LineEditor
    private var buffered: [UInt8] = []
    private var atEnd = false
    /// Longest line accepted from piped input, in bytes.
    public let maxLineBytes: Int

    /// Input from fd 0; `maxLineBytes` bounds one line (piped input is read in chunks, never whole).
    public init(maxLineBytes: Int = 1 << 20) {
        interactive = isatty(0) == 1 && isatty(1) == 1
        editor = LineEditor(maxLength: maxLineBytes)
        self.maxLineBytes = maxLineBytes
    }

    /// Shows `prompt` and reads one line. Throws when piped input holds a line over
    /// `maxLineBytes` or stdin cannot be read.
    public func read(prompt: String) throws -> Line {
        write(1, prompt)
        return interactive ? try readEdited(prompt: prompt) : try readPlain()
    }

    private func readPlain() throws -> Line {
        while true {
            if let nl = buffered.firstIndex(of: 0x0A) {
                let line = buffered[..<nl]
                buffered.removeSubrange(...nl)
                return .text(String(decoding: line, as: UTF8.self))
            }
            if atEnd {
                guard !buffered.isEmpty else { return .endOfInput }
                defer { buffered = [] }
                return .text(String(decoding: buffered, as: UTF8.self))
            }
            guard buffered.count <= maxLineBytes else {
                throw TerminalError.lineTooLong(maxLineBytes)
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { Foundation.read(0, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw TerminalError.unreadable(String(cString: strerror(errno)))
            }
            if n == 0 { atEnd = true } else { buffered += chunk[..<n] }
        }
    }

    private func readEdited(prompt: String) throws -> Line {
        let saved = RawMode.enter()
        defer { RawMode.leave(saved) }
        var byte: UInt8 = 0
        while true {
            let n = Foundation.read(0, &byte, 1)
            if n < 0 && errno == EINTR { continue }
            guard n == 1 else {
                write(1, "\r\n")
                return .endOfInput
            }
            switch editor.feed(byte) {
            case .editing: redraw(prompt)
            case .accepted(let line):
                write(1, "\r\n")
                return .text(line)
            case .abandoned:
                write(1, "^C\r\n" + prompt)
            case .interrupted:
                write(1, "^C\r\n")
                return .interrupted
            case .endOfInput:
                write(1, "\r\n")
                return .endOfInput
            }
        }
    }

    /// Prompt and line, cursor placed; columns counted as one per scalar.
    private func redraw(_ prompt: String) {
        let back = editor.scalars.count - editor.cursor
        write(1, "\r" + prompt + editor.text + "\u{1B}[K" + (back > 0 ? "\u{1B}[\(back)D" : ""))
    }

    private func write(_ fd: Int32, _ s: String) {
        var bytes = Array(s.utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Foundation.write(fd, $0.baseAddress! + done, $0.count - done) }
            if n <= 0 { if errno == EINTR { continue }; return }
            done += n
        }
    }
}

/// Failures reading lines.
public enum TerminalError: Error, CustomStringConvertible {
    /// Piped input held a line longer than the limit.
    case lineTooLong(Int)
    /// read(2) failed.
    case unreadable(String)
    /// Standard input held more than the limit.
    case inputTooLong(Int)

    public var description: String {
        switch self {
        case .lineTooLong(let n): return "an input line is longer than \(n) bytes"
        case .unreadable(let why): return "cannot read standard input: \(why)"
        case .inputTooLong(let n): return "standard input holds more than \(n) bytes; pass a smaller text"
        }
    }
}

/// The terminal's raw mode: bytes as typed, no echo, Ctrl-C as a byte; output still
/// translates "\n". Restored on leave and at exit.
enum RawMode {
    nonisolated(unsafe) private static var original: termios?

    static func enter() -> termios? {
        var t = termios()
        guard tcgetattr(0, &t) == 0 else { return nil }
        if original == nil {
            original = t
            atexit { if var o = RawMode.original { tcsetattr(0, TCSAFLUSH, &o) } }
        }
        var raw = t
        raw.c_lflag &= ~tcflag_t(ECHO | ICANON | ISIG | IEXTEN)
        raw.c_iflag &= ~tcflag_t(IXON | ICRNL | BRKINT | INPCK | ISTRIP)
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        tcsetattr(0, TCSAFLUSH, &raw)
        return t
    }

    static func leave(_ saved: termios?) {
        guard var s = saved else { return }
        tcsetattr(0, TCSAFLUSH, &s)
    }
}

/// The whole of standard input, bounded: a closed descriptor or an endless source (`/dev/zero`)
/// is an error, never a crash or unbounded memory.
public enum StandardInput {
    /// Reads fd 0 to its end; throws past `limit` bytes or when it cannot be read.
    public static func readAll(limit: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { Foundation.read(0, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw TerminalError.unreadable(errno == EBADF ? "it is closed" : String(cString: strerror(errno)))
            }
            if n == 0 { return out }
            guard out.count + n <= limit else { throw TerminalError.inputTooLong(limit) }
            out += chunk[..<n]
        }
    }
}
