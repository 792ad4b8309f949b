import EmeraldTerminal
import XCTest

/// The chat prompt's line editor, key by key (the terminal side is exercised by ChatTerminalTests).
final class LineEditorTests: XCTestCase {
    private let left: [UInt8] = [0x1B, 0x5B, 0x44], right: [UInt8] = [0x1B, 0x5B, 0x43]
    private let up: [UInt8] = [0x1B, 0x5B, 0x41], down: [UInt8] = [0x1B, 0x5B, 0x42]
    private let home: [UInt8] = [0x1B, 0x5B, 0x48], end: [UInt8] = [0x1B, 0x4F, 0x46], delete: [UInt8] = [0x1B, 0x5B, 0x33, 0x7E]

    private func type(_ e: inout LineEditor, _ s: String) { XCTAssertEqual(e.feed(Array(s.utf8)), .editing) }

    func testInsertMoveAndErase() {
        var e = LineEditor()
        type(&e, "Dorthy")
        XCTAssertEqual(e.feed(left + left + left), .editing)
        type(&e, "o")                                           // Dorothy: inserted at the cursor
        XCTAssertEqual(e.text, "Dorothy")
        XCTAssertEqual(e.cursor, 4)
        XCTAssertEqual(e.feed(home + [0x7F]), .editing)         // Backspace at the start: nothing
        XCTAssertEqual(e.feed(delete), .editing)                // Delete: the "D"
        XCTAssertEqual(e.text, "orothy")
        XCTAssertEqual(e.feed(end + [0x7F, 0x7F]), .editing)
        XCTAssertEqual(e.text, "orot")
        XCTAssertEqual(e.feed([0x01]), .editing)                // Ctrl-A
        type(&e, "D")
        XCTAssertEqual(e.feed([0x05] + Array(" Gale".utf8)), .editing)  // Ctrl-E
        XCTAssertEqual(e.feed([0x0D]), .accepted("Dorot Gale"))
        XCTAssertEqual(e.text, "", "a new line starts empty")
    }

    func testKillsAndMultibyteCharacters() {
        var e = LineEditor()
        type(&e, "the lion 🦁 roared")
        XCTAssertEqual(e.feed([0x17]), .editing)                // Ctrl-W: "roared"
        XCTAssertEqual(e.text, "the lion 🦁 ")
        XCTAssertEqual(e.feed(left + left), .editing)           // between "n" and " " … the emoji is one step
        XCTAssertEqual(e.cursor, "the lion ".count)
        XCTAssertEqual(e.feed([0x0B]), .editing)                // Ctrl-K: to the end
        XCTAssertEqual(e.text, "the lion ")
        XCTAssertEqual(e.feed(left + [0x15]), .editing)         // Ctrl-U: to the start
        XCTAssertEqual(e.text, " ")
        XCTAssertEqual(e.cursor, 0)
        // A UTF-8 character split across reads still arrives whole.
        var f = LineEditor()
        for b in Array("é".utf8) { XCTAssertEqual(f.feed(b), .editing) }
        XCTAssertEqual(f.text, "é")
        // Stray bytes and unknown escape sequences insert nothing.
        XCTAssertEqual(f.feed([0x80, 0x1B, 0x5B, 0x32, 0x30, 0x7E, 0x07]), .editing)
        XCTAssertEqual(f.text, "é")
    }

    func testHistoryKeepsTheDraft() {
        var e = LineEditor()
        XCTAssertEqual(e.feed(Array("first\r".utf8)), .accepted("first"))
        XCTAssertEqual(e.feed(Array("second\r".utf8)), .accepted("second"))
        XCTAssertEqual(e.feed(Array("second\r".utf8)), .accepted("second"))
        XCTAssertEqual(e.history, ["first", "second"], "a repeated line is kept once")
        type(&e, "draft")
        XCTAssertEqual(e.feed(up), .editing)
        XCTAssertEqual(e.text, "second")
        XCTAssertEqual(e.feed(up + up + up), .editing)          // stops at the oldest
        XCTAssertEqual(e.text, "first")
        XCTAssertEqual(e.feed(down), .editing)
        XCTAssertEqual(e.text, "second")
        XCTAssertEqual(e.feed(down), .editing)
        XCTAssertEqual(e.text, "draft", "walking past the newest entry gives the draft back")
        XCTAssertEqual(e.feed([0x10]), .editing)                // Ctrl-P
        XCTAssertEqual(e.feed(Array("!\r".utf8)), .accepted("second!"))
    }

    func testControlKeysEndTheLine() {
        var e = LineEditor()
        XCTAssertEqual(e.feed([0x04]), .endOfInput, "Ctrl-D on an empty line")
        XCTAssertEqual(e.feed([0x03]), .interrupted, "Ctrl-C on an empty line")
        type(&e, "ab")
        XCTAssertEqual(e.feed(left + [0x04]), .editing, "Ctrl-D on a line deletes forward")
        XCTAssertEqual(e.text, "a")
        XCTAssertEqual(e.feed([0x03]), .abandoned, "Ctrl-C drops a non-empty line")
        XCTAssertEqual(e.text, "")
        XCTAssertEqual(e.feed(Array("x\n".utf8)), .accepted("x"))
        var bounded = LineEditor(maxLength: 3)
        type(&bounded, "abcdef")
        XCTAssertEqual(bounded.text, "abc", "typing past the limit is ignored")
    }
}
