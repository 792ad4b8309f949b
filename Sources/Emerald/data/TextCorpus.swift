import Foundation

/// Reads text files the way the guide's `open(path, encoding="utf-8")` sees
/// them, deliberately:
/// - the bytes must be valid UTF-8 (else an error naming the first bad offset);
/// - a leading byte-order mark (U+FEFF) is dropped: it is an encoding marker,
///   not text, and would otherwise become a vocabulary entry;
/// - "\r\n" and lone "\r" become "\n" (Python's universal newlines), so the
///   Project Gutenberg book's CRLF lines train like any other text.
public enum TextCorpus {
    /// Loads and normalises a UTF-8 text file.
    public static func load(path: String) throws -> String {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw EmeraldError.fileNotFound(path) }
        guard !isDir.boolValue else {
            if FileManager.default.fileExists(atPath: path + "/manifest.json.tmp") || FileManager.default.fileExists(atPath: path + "/tokenizer.json") {
                throw EmeraldError.invalidArgument("\(path) is a folder without manifest.json: an unfinished `emerald prepare` output? Run prepare again, or pass a text file")
            }
            throw EmeraldError.invalidArgument("\(path) is a folder; pass a text file")
        }
        try requireRegularFile(path)
        guard let data = FileManager.default.contents(atPath: path) else { throw EmeraldError.io("cannot read \(path)") }
        return try decode(data, path: path)
    }

    /// Validates and normalises UTF-8 bytes.
    public static func decode(_ data: Data, path: String) throws -> String {
        let bytes = [UInt8](data)
        if let bad = firstInvalidUTF8(bytes) { throw EmeraldError.invalidUTF8(path: path, byteOffset: bad) }
        var start = 0
        if bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF { start = 3 }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count - start)
        var i = start
        while i < bytes.count {
            if bytes[i] == 0x0D {
                out.append(0x0A)
                if i + 1 < bytes.count && bytes[i + 1] == 0x0A { i += 1 }
            } else {
                out.append(bytes[i])
            }
            i += 1
        }
        let text = String(decoding: out, as: UTF8.self)
        if text.isEmpty { throw EmeraldError.emptyInput(path) }
        return text
    }

    /// Text typed or passed by a user (prompts, `--text`, chat lines) read with the corpus's
    /// policy: a leading byte-order mark dropped, "\r\n" and lone "\r" as "\n".
    public static func normalize(_ text: String) -> String {
        var scalars = text.unicodeScalars[...]
        if scalars.first == "\u{FEFF}" { scalars = scalars.dropFirst() }
        guard scalars.contains("\r") else { return String(String.UnicodeScalarView(scalars)) }
        var out = String.UnicodeScalarView()
        var previousCR = false
        for u in scalars {
            if u == "\r" { out.append("\n"); previousCR = true; continue }
            if u == "\n" && previousCR { previousCR = false; continue }
            previousCR = false
            out.append(u)
        }
        return String(out)
    }

    /// Offset of the first byte that breaks UTF-8, or nil.
    public static func firstInvalidUTF8(_ bytes: [UInt8]) -> Int? {
        var it = bytes.makeIterator()
        var decoder = UTF8()
        var offset = 0
        while true {
            switch decoder.decode(&it) {
            case .scalarValue(let s): offset += UTF8.width(s)
            case .emptyInput: return nil
            case .error: return offset
            }
        }
    }
}
