import Foundation

/// One document's raw bytes and where it came from.
public struct RawDocument {
    /// `file` or `archive/member` (or `file line N` for JSON lines).
    public var name: String
    /// The undecoded bytes.
    public var bytes: [UInt8]
    /// Why the document could not be read (a malformed JSON line), or nil.
    public var malformed: String?

    /// A document named `name` holding `bytes`.
    public init(name: String, bytes: [UInt8], malformed: String? = nil) {
        self.name = name; self.bytes = bytes; self.malformed = malformed
    }
}

/// Turns files into documents, recursively through compression and archives,
/// deciding formats by content (magic bytes) and then by name:
/// - xz (`FD 37 7A 58 5A 00`) and gzip (`1F 8B`) are decompressed and read again;
/// - a tar archive (a valid header, or a name ending in .tar/.tgz) yields each
///   regular member as a file of its own — so OpenWebText's `urlsf_subset*.xz`
///   (xz-compressed tars of .txt documents) and `openwebtext.tar.xz` (a tar of
///   those) both yield the .txt documents, never the tar headers;
/// - `.jsonl` yields the string field "text" of each non-blank line;
/// - anything else is UTF-8 text: one document per file, except that files
///   over `pieceBytes` (2 MiB) are cut into documents at the last line break
///   before each 2 MiB boundary, so memory per document stays bounded.
public enum DocumentReader {
    /// Largest document; bigger text files are cut at line breaks.
    public static let pieceBytes = 2 << 20
    /// Longest accepted JSON line.
    public static let maxLineBytes = 64 << 20

    static let xzMagic: [UInt8] = [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]
    static let gzipMagic: [UInt8] = [0x1F, 0x8B]

    /// The container kind a name suggests, after the compression suffix is removed.
    static func strippingCompression(_ name: String) -> String {
        let lower = name.lowercased()
        if lower.hasSuffix(".tgz") { return String(name.dropLast(4)) + ".tar" }
        for ext in [".xz", ".gz", ".txz"] where lower.hasSuffix(ext) {
            return ext == ".txz" ? String(name.dropLast(4)) + ".tar" : String(name.dropLast(ext.count))
        }
        return name
    }

    /// Whether a name says "tar archive" (possibly compressed).
    public static func isTarName(_ name: String) -> Bool {
        let lower = name.lowercased()
        return lower.hasSuffix(".tar") || lower.hasSuffix(".tar.xz") || lower.hasSuffix(".tar.gz")
            || lower.hasSuffix(".tgz") || lower.hasSuffix(".txz")
    }

    /// Reads every document in `reader` (named `name`), calling `body` for each in order.
    public static func read(_ reader: BufferedReader, name: String, depth: Int = 0,
                            _ body: (RawDocument) throws -> Void) throws {
        guard depth < 8 else { throw EmeraldError.io("\(name): archives or compression nested too deeply") }
        let head = try reader.peek(512)
        if head.starts(with: xzMagic) {
            let inner = BufferedReader(try XZStream(reader, name: name))
            return try read(inner, name: strippingCompression(name), depth: depth + 1, body)
        }
        if head.starts(with: gzipMagic) {
            let inner = BufferedReader(try GzipStream(reader, name: name))
            return try read(inner, name: strippingCompression(name), depth: depth + 1, body)
        }
        if TarReader.isHeader(head) || TarReader.hasMagic(head) || isTarName(name) {
            if head.isEmpty { return }  // an empty file holds no documents
            return try TarReader(reader, name: name).forEachFile { member, stream in
                try read(BufferedReader(stream, capacity: 1 << 14), name: name + "/" + member.path, depth: depth + 1, body)
            }
        }
        if name.lowercased().hasSuffix(".jsonl") { return try readJSONLines(reader, name: name, body) }
        try readText(reader, name: name, body)
    }

    /// Plain text: one document, or 2 MiB pieces cut after the last "\n" (see the type's note).
    static func readText(_ reader: BufferedReader, name: String, _ body: (RawDocument) throws -> Void) throws {
        var buf: [UInt8] = []
        var piece = 0
        while true {
            try reader.read(upTo: pieceBytes - buf.count, appendingTo: &buf)
            if try buf.count < pieceBytes || reader.peek(1).isEmpty {
                if !buf.isEmpty { try body(RawDocument(name: piece == 0 ? name : "\(name) piece \(piece)", bytes: buf)) }
                return
            }
            var cut: Int
            if let nl = buf.lastIndex(of: 0x0A) {
                cut = nl + 1
            } else {
                // No line break: cut before the next scalar (never inside a UTF-8 sequence).
                let next = try reader.peek(1)[0]
                cut = buf.count
                var steps = 0
                while steps < 3 && cut > 1 && (cut == buf.count ? next : buf[cut]) & 0xC0 == 0x80 { cut -= 1; steps += 1 }
            }
            try body(RawDocument(name: piece == 0 ? name : "\(name) piece \(piece)", bytes: Array(buf[..<cut])))
            buf.removeSubrange(..<cut)
            piece += 1
        }
    }

    /// JSON lines: the "text" string of each non-blank line.
    static func readJSONLines(_ reader: BufferedReader, name: String, _ body: (RawDocument) throws -> Void) throws {
        var lineNumber = 0
        while let line = try reader.readLine(limit: maxLineBytes, name: name) {
            lineNumber += 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            guard let obj = try? JSONSerialization.jsonObject(with: Data(line), options: [.fragmentsAllowed]) as? [String: Any],
                  let text = obj["text"] as? String else {
                // The policy (`--bad-lines`) is applied where documents are counted, in order.
                try body(RawDocument(name: "\(name) line \(lineNumber)", bytes: [],
                                     malformed: "\(name) line \(lineNumber): expected a JSON object with a string \"text\" field"))
                continue
            }
            try body(RawDocument(name: "\(name) line \(lineNumber)", bytes: Array(text.utf8)))
        }
    }

    /// File extensions picked up when walking folders (compressed forms included).
    public static let knownExtensions: Set<String> = ["txt", "text", "md", "jsonl", "xz", "gz", "tgz", "txz", "tar"]

    /// Expands inputs into a sorted list of files: files as given, folders
    /// walked recursively (hidden entries and unknown extensions skipped, and
    /// anything under `excluding` or its temporary siblings). Only regular files are read:
    /// a FIFO, device or socket in a folder is skipped, and one named as an input (`/dev/zero`,
    /// a pipe that may never end) is an error. Throws on missing inputs or when nothing is found.
    public static func inputFiles(_ inputs: [String], excluding: String? = nil) throws -> (files: [String], skipped: Int) {
        try require(!inputs.isEmpty, "give at least one input file or folder")
        let fm = FileManager.default
        var files: [String] = []
        var skipped = 0
        let base = excluding.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        func excluded(_ path: String) -> Bool {
            guard let base else { return false }
            let p = URL(fileURLWithPath: path).standardizedFileURL.path
            return p == base || p.hasPrefix(base + "/") || p.hasPrefix(base + ".tmp-") || p.hasPrefix(base + ".old-")
        }
        func isRegular(_ path: String) -> Bool {
            var st = stat()
            return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
        }
        for input in inputs {
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: input, isDirectory: &isDir) else { throw EmeraldError.fileNotFound(input) }
            if !isDir.boolValue {
                guard isRegular(input) else {
                    throw EmeraldError.invalidArgument("\(input) is not a regular file (a device, FIFO or socket); pass files or folders")
                }
                files.append(input)
                continue
            }
            var found: [String] = []
            guard let walker = fm.enumerator(atPath: input) else { throw EmeraldError.io("cannot list \(input)") }
            while let rel = walker.nextObject() as? String {
                let last = (rel as NSString).lastPathComponent
                if last.hasPrefix(".") { walker.skipDescendants(); continue }
                let path = (input as NSString).appendingPathComponent(rel)
                var sub: ObjCBool = false
                guard fm.fileExists(atPath: path, isDirectory: &sub) else { continue }
                if sub.boolValue {
                    if excluded(path) { walker.skipDescendants() }
                    continue
                }
                if excluded(path) { continue }
                let ext = (last as NSString).pathExtension.lowercased()
                if knownExtensions.contains(ext) && isRegular(path) { found.append(path) } else { skipped += 1 }
            }
            if found.isEmpty { throw EmeraldError.invalidArgument("\(input) holds no .txt, .jsonl, .xz, .gz or .tar files") }
            files += found.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        }
        return (files, skipped)
    }
}
