import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The safetensors format: an 8-byte little-endian header length, a JSON
/// header `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {…}}`,
/// then the raw little-endian tensor bytes.
public enum SafeTensors {
    /// Writes float32 tensors (in the given order) atomically.
    public static func write(_ tensors: [(String, Tensor)], metadata: [String: String] = [:], to path: String) throws {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for (name, t) in tensors {
            header[name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + t.count * 4]]
            offset += t.count * 4
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while (json.count + 8) % 8 != 0 { json.append(0x20) }  // pad so data starts 8-aligned
        var out = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        for (_, t) in tensors { t.withHostBuffer { out.append(UnsafeBufferPointer($0)) } }
        try AtomicFile.write(out, to: path)
    }

    /// Reads every tensor as float32 (F16 and BF16 are widened), validating the header.
    public static func read(path: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        let file = try SafeTensorsFile(path: path)
        var tensors: [String: Tensor] = [:]
        for name in file.names { tensors[name] = try file.tensor(name) }
        return (tensors, file.header.metadata)
    }

    /// Parses safetensors bytes.
    public static func parse(_ data: Data, path: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        try data.withUnsafeBytes { raw in
            let header = try Header(raw, path: path)
            var tensors: [String: Tensor] = [:]
            for (name, e) in header.entries {
                let t = Tensor(uninitialized: e.shape)
                t.withHostBuffer { e.widen(from: raw.baseAddress! + header.dataStart, into: $0.baseAddress!) }
                tensors[name] = t
            }
            return (tensors, header.metadata)
        }
    }

    /// One tensor's place in the file.
    public struct Entry: Sendable {
        /// "F32", "F16" or "BF16".
        public var dtype: String
        /// Dimensions.
        public var shape: [Int]
        /// Byte range inside the data section.
        public var begin: Int, end: Int
        /// Elements.
        public var count: Int { shape.reduce(1, *) }

        /// Copies the elements to `dst` as float32 (F16/BF16 widened exactly).
        func widen(from data: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>) {
            let src = data + begin, n = count
            switch dtype {
            case "F32": memcpy(dst, src, n * 4)
            case "F16":
                for i in 0..<n { dst[i] = Float(Float16(bitPattern: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
            default:
                for i in 0..<n { dst[i] = Float(bitPattern: UInt32(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16) }
            }
        }
    }

    /// A validated header: every entry's dtype is supported, its shape is sane and its
    /// bytes lie inside the file with exactly the size the shape and dtype need.
    public struct Header: Sendable {
        /// Tensors by name.
        public var entries: [String: Entry] = [:]
        /// `__metadata__`.
        public var metadata: [String: String] = [:]
        /// Offset of the data section from the start of the file.
        public var dataStart = 0

        /// Parses and validates the header of a whole file's bytes.
        public init(_ raw: UnsafeRawBufferPointer, path: String) throws {
            func bad(_ r: String) -> EmeraldError { .corruptCheckpoint(path: path, reason: r) }
            guard raw.count >= 8 else { throw bad("file is \(raw.count) bytes, too short for a safetensors header") }
            let headerLength = UInt64(littleEndian: raw.loadUnaligned(as: UInt64.self))
            guard headerLength <= UInt64(raw.count - 8) else { throw bad("header length \(headerLength) exceeds the file") }
            // The reference implementation's limit: a larger header is an attack, not a model.
            guard headerLength <= Header.maxHeaderBytes else {
                throw bad("header of \(headerLength) bytes exceeds the \(Header.maxHeaderBytes)-byte limit")
            }
            dataStart = 8 + Int(headerLength)
            let json = Data(bytes: raw.baseAddress! + 8, count: Int(headerLength))
            guard let obj = try? JSONSerialization.jsonObject(with: json),
                  let header = obj as? [String: Any] else { throw bad("header is not a JSON object") }
            let body = raw.count - dataStart
            for (name, value) in header {
                if name == "__metadata__" {
                    guard let md = value as? [String: String] else { throw bad("__metadata__ must map strings to strings") }
                    metadata = md
                    continue
                }
                guard let e = value as? [String: Any], let dtype = e["dtype"] as? String,
                      let shape = e["shape"] as? [Int], let offs = e["data_offsets"] as? [Int], offs.count == 2 else {
                    throw bad("entry \(name) lacks dtype, shape or data_offsets")
                }
                let width: Int
                switch dtype {
                case "F32": width = 4
                case "F16", "BF16": width = 2
                default: throw bad("tensor \(name) has unsupported dtype \(dtype) (Emerald reads F32, F16 and BF16)")
                }
                guard shape.allSatisfy({ $0 >= 0 && $0 < 1 << 40 }) else { throw bad("tensor \(name) has an invalid shape \(shape)") }
                // Element count without wrapping: an overflowing shape cannot describe bytes in this file.
                var n = shape.contains(0) ? 0 : 1
                for d in shape where n > 0 {
                    let (p, o) = n.multipliedReportingOverflow(by: d)
                    guard !o, p <= body else { throw bad("tensor \(name) has shape \(shape), larger than the file") }
                    n = p
                }
                guard offs[0] >= 0, offs[1] >= offs[0], offs[1] <= body else {
                    throw bad("tensor \(name) data_offsets \(offs) lie outside the \(body)-byte data section (truncated file?)")
                }
                guard offs[1] - offs[0] == n * width else {
                    throw bad("tensor \(name) has \(offs[1] - offs[0]) bytes but shape \(shape) of \(dtype) needs \(n * width)")
                }
                entries[name] = Entry(dtype: dtype, shape: shape, begin: offs[0], end: offs[1])
            }
            // As the reference requires: the tensors tile the data section exactly — no overlap
            // (two names for the same bytes), no hole, nothing after the last tensor.
            var end = 0
            for (name, e) in entries.sorted(by: { ($0.value.begin, $0.value.end) < ($1.value.begin, $1.value.end) }) {
                guard e.begin == end else {
                    throw bad(e.begin < end ? "tensor \(name) overlaps the bytes of another tensor"
                                            : "the data section has \(e.begin - end) unused bytes before tensor \(name)")
                }
                end = e.end
            }
            guard end == body else { throw bad("the data section has \(body - end) bytes after the last tensor") }
        }

        /// The largest header read (the reference implementation's limit).
        public static let maxHeaderBytes: UInt64 = 100_000_000
    }
}

/// Throws unless `path` is a regular file (symbolic links followed) of at most `limit` bytes.
public func requireRegularFile(_ path: String, limit: Int = .max) throws {
    var st = stat()
    guard stat(path, &st) == 0 else {
        if errno == ENOENT || errno == ENOTDIR { throw EmeraldError.fileNotFound(path) }
        throw EmeraldError.io("cannot read \(path): \(String(cString: strerror(errno)))")
    }
    switch st.st_mode & S_IFMT {
    case S_IFREG: break
    case S_IFDIR: throw EmeraldError.invalidArgument("\(path) is a folder; pass a file")
    default: throw EmeraldError.invalidArgument("\(path) is not a regular file (a device, FIFO or socket)")
    }
    guard Int(st.st_size) <= limit else {
        throw EmeraldError.invalidArgument("\(path) holds \(st.st_size) bytes, more than the \(limit) this file may hold")
    }
}

/// Whole-file writes that never leave a half-written file under the final name.
public enum AtomicFile {
    /// The largest JSON (or merges) file read: configs, manifests and tokenizers. Parsing holds
    /// about 13× a file's size in memory (a 40 MB tokenizer.json took 525 MB), so 16 MiB keeps
    /// any input under ≈ 250 MB; GPT-2's tokenizer.json is 1.4 MB.
    public static let maxJSONBytes = 16 << 20

    /// Writes to a temporary sibling, flushes it, then renames over `path`; errors carry the
    /// system's reason ("No space left on device"), and a failed write leaves no sibling.
    public static func write(_ data: Data, to path: String) throws {
        let tmp = path + ".tmp-\(getpid())"
        func fail(_ what: String) -> EmeraldError { .io("cannot \(what) \(path): \(String(cString: strerror(errno)))") }
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw fail("write") }
        var ok = true
        data.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 { if errno == EINTR { continue }; ok = false; return }
                done += n
            }
        }
        let error = ok ? (fsync(fd) == 0 ? nil : fail("write")) : fail("write")
        close(fd)
        if let error { unlink(tmp); throw error }
        guard rename(tmp, path) == 0 else {
            let e = fail("replace")
            unlink(tmp)
            throw e
        }
    }

    /// Writes a JSON object atomically (pretty, sorted keys).
    public static func writeJSON(_ object: Any, to path: String) throws {
        let d = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        try write(d + Data("\n".utf8), to: path)
    }

    /// Reads a JSON object, with a clear error when it is not one (or not a regular file of
    /// at most `limit` bytes: a FIFO or `/dev/zero` named as a config is refused, not read).
    public static func readJSON(_ path: String, limit: Int = AtomicFile.maxJSONBytes) throws -> [String: Any] {
        let d = try readData(path, limit: limit)
        guard let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any] else {
            throw EmeraldError.corruptCheckpoint(path: path, reason: "not a JSON object")
        }
        return o
    }

    /// The bytes of a regular file of at most `limit` bytes (a config file, not a device or a
    /// folder, not unbounded).
    public static func readData(_ path: String, limit: Int = AtomicFile.maxJSONBytes) throws -> Data {
        try requireRegularFile(path, limit: limit)
        guard let d = FileManager.default.contents(atPath: path) else { throw EmeraldError.fileNotFound(path) }
        return d
    }
}
