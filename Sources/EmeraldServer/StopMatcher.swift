/// Finds stop strings in text that arrives piece by piece. Text that could still be the start of
/// a stop string is held back, so a client never sees part of a stop string; the text before a
/// match is released and the rest dropped. Works on Unicode scalars (a stop string may end inside
/// what would be one grapheme cluster).
struct StopMatcher {
    private let stops: [[Unicode.Scalar]]
    /// All text so far.
    private(set) var text: [Unicode.Scalar] = []
    /// Scalars released so far.
    private(set) var sent = 0
    /// Where the first stop string starts, once found.
    private(set) var cut: Int?

    init(_ stops: [String]) { self.stops = stops.map { Array($0.unicodeScalars) }.filter { !$0.isEmpty } }

    /// Adds `piece`; returns the text now safe to send, and whether a stop string was found.
    mutating func push(_ piece: String) -> (text: String, stopped: Bool) {
        guard cut == nil else { return ("", true) }
        text.append(contentsOf: piece.unicodeScalars)
        // A match cannot start in released text: its start would have been held back.
        for i in sent..<text.count where stops.contains(where: { matches($0, at: i) }) {
            cut = i
            return (release(upTo: i), true)
        }
        return (release(upTo: text.count - heldBack()), false)
    }

    /// The text still held back (the generation ended without a match).
    mutating func finish() -> String { cut == nil ? release(upTo: text.count) : "" }

    private func matches(_ stop: [Unicode.Scalar], at i: Int) -> Bool {
        i + stop.count <= text.count && text[i..<(i + stop.count)].elementsEqual(stop)
    }

    /// The longest tail of the text that is a proper prefix of a stop string.
    private func heldBack() -> Int {
        let longest = min(text.count - sent, (stops.map(\.count).max() ?? 1) - 1)
        guard longest > 0 else { return 0 }
        for k in stride(from: longest, through: 1, by: -1) {
            let tail = text[(text.count - k)...]
            if stops.contains(where: { $0.count > k && $0[..<k].elementsEqual(tail) }) { return k }
        }
        return 0
    }

    private mutating func release(upTo end: Int) -> String {
        guard end > sent else { return "" }
        var s = String.UnicodeScalarView()
        s.append(contentsOf: text[sent..<end])
        sent = end
        return String(s)
    }
}
