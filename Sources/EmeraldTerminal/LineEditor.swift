import Foundation

/// The editing state of one input line: keys in, text and cursor out. Pure (no terminal),
/// so every key binding is testable; `Terminal.readLine` drives it from a raw-mode tty.
///
/// Bindings (readline's defaults): ←/→ or Ctrl-B/F move, Home/End or Ctrl-A/E jump,
/// Backspace/Delete or Ctrl-H/D erase, Ctrl-K/U/W kill to the end / start / previous word,
/// ↑/↓ or Ctrl-P/N walk the history, Enter accepts, Ctrl-C abandons (quits on an empty
/// line), Ctrl-D on an empty line is end of input.
public struct LineEditor {
    /// What a key did.
    public enum Outcome: Equatable {
        /// Keep reading; redraw.
        case editing
        /// Enter: the line is done.
        case accepted(String)
        /// Ctrl-C on a non-empty line: the line is dropped, a new one starts.
        case abandoned
        /// Ctrl-C on an empty line.
        case interrupted
        /// Ctrl-D on an empty line.
        case endOfInput
    }

    /// The line being edited.
    public private(set) var scalars: [Unicode.Scalar] = []
    /// Cursor position in `scalars`.
    public private(set) var cursor = 0
    /// Earlier lines, oldest first.
    public private(set) var history: [String]
    private var historyIndex: Int
    private var draft: [Unicode.Scalar] = []  // the new line while browsing history
    private var pending: [UInt8] = []         // bytes of an incomplete escape sequence or UTF-8 character
    /// Longest line kept (scalars); further typing is ignored.
    public let maxLength: Int

    /// An empty line with `history` to browse.
    public init(history: [String] = [], maxLength: Int = 1 << 16) {
        self.history = history
        historyIndex = history.count
        self.maxLength = maxLength
    }

    /// The line as text.
    public var text: String { String(String.UnicodeScalarView(scalars)) }

    /// Feeds one byte from the terminal.
    public mutating func feed(_ byte: UInt8) -> Outcome {
        if !pending.isEmpty || byte == 0x1B { return escapeOrUTF8(byte) }
        switch byte {
        case 0x0D, 0x0A: return accept()
        case 0x01: cursor = 0                                   // Ctrl-A
        case 0x02: cursor = Swift.max(0, cursor - 1)            // Ctrl-B
        case 0x03: return interrupt()                           // Ctrl-C
        case 0x04:                                              // Ctrl-D
            if scalars.isEmpty { return .endOfInput }
            deleteForward()
        case 0x05: cursor = scalars.count                       // Ctrl-E
        case 0x06: cursor = Swift.min(scalars.count, cursor + 1) // Ctrl-F
        case 0x08, 0x7F: deleteBackward()                       // Ctrl-H, Backspace
        case 0x0B: scalars.removeSubrange(cursor...)            // Ctrl-K
        case 0x0E: historyMove(+1)                              // Ctrl-N
        case 0x10: historyMove(-1)                              // Ctrl-P
        case 0x15: scalars.removeSubrange(..<cursor); cursor = 0 // Ctrl-U
        case 0x17: deleteWordBackward()                         // Ctrl-W
        case 0x09: insert(" ")                                  // Tab: a space (no completion)
        case 0x00..<0x20: break                                 // other controls: ignored
        default: return escapeOrUTF8(byte)
        }
        return .editing
    }

    /// Feeds several bytes; returns the first outcome that ends the line, else `.editing`.
    public mutating func feed<S: Sequence>(_ bytes: S) -> Outcome where S.Element == UInt8 {
        for b in bytes {
            let o = feed(b)
            if o != .editing { return o }
        }
        return .editing
    }

    private mutating func accept() -> Outcome {
        let line = text
        if !line.isEmpty && history.last != line { history.append(line) }
        reset()
        return .accepted(line)
    }

    private mutating func interrupt() -> Outcome {
        let wasEmpty = scalars.isEmpty
        reset()
        return wasEmpty ? .interrupted : .abandoned
    }

    private mutating func reset() {
        scalars = []; cursor = 0; draft = []; historyIndex = history.count
    }

    private mutating func insert(_ s: Unicode.Scalar) {
        guard scalars.count < maxLength else { return }
        scalars.insert(s, at: cursor)
        cursor += 1
    }

    private mutating func deleteBackward() {
        guard cursor > 0 else { return }
        scalars.remove(at: cursor - 1)
        cursor -= 1
    }

    private mutating func deleteForward() {
        if cursor < scalars.count { scalars.remove(at: cursor) }
    }

    private mutating func deleteWordBackward() {
        var i = cursor
        while i > 0 && scalars[i - 1] == " " { i -= 1 }
        while i > 0 && scalars[i - 1] != " " { i -= 1 }
        scalars.removeSubrange(i..<cursor)
        cursor = i
    }

    private mutating func historyMove(_ delta: Int) {
        let target = historyIndex + delta
        guard target >= 0 && target <= history.count && target != historyIndex else { return }
        if historyIndex == history.count { draft = scalars }
        historyIndex = target
        scalars = target == history.count ? draft : Array(history[target].unicodeScalars)
        cursor = scalars.count
    }

    /// Escape sequences (CSI and SS3 cursor keys, Home/End/Delete) and multi-byte UTF-8.
    private mutating func escapeOrUTF8(_ byte: UInt8) -> Outcome {
        pending.append(byte)
        if pending[0] == 0x1B {
            guard pending.count >= 2 else { return .editing }
            guard pending[1] == 0x5B || pending[1] == 0x4F else { pending = []; return .editing }  // lone ESC + key: dropped
            guard pending.count >= 3 else { return .editing }
            let last = pending[pending.count - 1]
            guard (0x40...0x7E).contains(last) else {
                if pending.count > 16 { pending = [] }  // runaway sequence
                return .editing
            }
            let params = String(decoding: pending[2..<(pending.count - 1)], as: UTF8.self)
            pending = []
            switch (last, params) {
            case (0x41, _): historyMove(-1)                       // ↑
            case (0x42, _): historyMove(+1)                       // ↓
            case (0x43, _): cursor = Swift.min(scalars.count, cursor + 1)  // →
            case (0x44, _): cursor = Swift.max(0, cursor - 1)     // ←
            case (0x48, _), (0x7E, "1"), (0x7E, "7"): cursor = 0  // Home
            case (0x46, _), (0x7E, "4"), (0x7E, "8"): cursor = scalars.count  // End
            case (0x7E, "3"): deleteForward()                     // Delete
            default: break
            }
            return .editing
        }
        // UTF-8: wait for the whole character, then insert its scalar.
        let lead = pending[0]
        let need = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 0
        guard need > 0 else { pending = []; return .editing }  // stray continuation byte
        guard pending.count == need else {
            if pending.count > 1 && pending[pending.count - 1] & 0xC0 != 0x80 { pending = [] }
            return .editing
        }
        if let s = String(validating: pending, as: UTF8.self)?.unicodeScalars.first { insert(s) }
        pending = []
        return .editing
    }
}
