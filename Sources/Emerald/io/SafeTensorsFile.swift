import Foundation

/// A safetensors file opened with `mmap`: the header is validated up front, tensor
/// bytes are read from the mapping only when copied out, so opening a 500 MB
/// checkpoint costs its header and loading it costs one copy into the model.
public final class SafeTensorsFile {
    /// The file's path (for messages).
    public let path: String
    /// Validated header.
    public let header: SafeTensors.Header
    private let base: UnsafeRawPointer
    private let size: Int

    /// Maps `path` and validates its header.
    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_NONBLOCK)  // a FIFO must not block the open; fstat refuses it
        guard fd >= 0 else {
            if errno == ENOENT { throw EmeraldError.fileNotFound(path) }
            throw EmeraldError.io("cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw EmeraldError.corruptCheckpoint(path: path, reason: "not a regular file")
        }
        size = Int(st.st_size)
        guard size >= 8 else {
            throw EmeraldError.corruptCheckpoint(path: path, reason: "file is \(size) bytes, too short for a safetensors header")
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw EmeraldError.io("cannot map \(path): \(String(cString: strerror(errno)))")
        }
        base = UnsafeRawPointer(p)
        do { header = try SafeTensors.Header(UnsafeRawBufferPointer(start: base, count: size), path: path) }
        catch { munmap(UnsafeMutableRawPointer(mutating: base), size); throw error }
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), size) }

    /// Tensor names.
    public var names: Dictionary<String, SafeTensors.Entry>.Keys { header.entries.keys }

    /// The entry for `name`, if stored.
    public subscript(name: String) -> SafeTensors.Entry? { header.entries[name] }

    /// Copies a tensor out as float32.
    public func tensor(_ name: String) throws -> Tensor {
        guard let e = header.entries[name] else {
            throw EmeraldError.corruptCheckpoint(path: path, reason: "missing tensor \(name)")
        }
        let t = Tensor(uninitialized: e.shape)
        t.withHostBuffer { e.widen(from: base + header.dataStart, into: $0.baseAddress!) }
        return t
    }

    /// Copies a tensor into `destination` (same element count), transposing a stored
    /// 2-D (rows, cols) matrix into (cols, rows) when `transposed`.
    public func copy(_ name: String, into destination: Tensor, transposed: Bool = false) throws {
        guard let e = header.entries[name] else {
            throw EmeraldError.corruptCheckpoint(path: path, reason: "missing tensor \(name)")
        }
        precondition(e.count == destination.count)
        defer { release(e) }
        guard transposed else {
            destination.withHostBuffer { e.widen(from: base + header.dataStart, into: $0.baseAddress!) }
            return
        }
        let stored = try tensor(name)
        let (r, c) = (e.shape[0], e.shape[1])
        // 32×32 tiles: a naive transpose of a 768×2304 matrix misses cache on every write.
        stored.withHostBuffer { tmp in destination.withHostBuffer { d in
            for i0 in stride(from: 0, to: r, by: 32) {
                for j0 in stride(from: 0, to: c, by: 32) {
                    for i in i0..<Swift.min(i0 + 32, r) {
                        for j in j0..<Swift.min(j0 + 32, c) { d[j * r + i] = tmp[i * c + j] }
                    }
                }
            }
        } }
    }

    /// Drops the mapped pages of a copied tensor, so loading peaks at the model's size rather
    /// than model + file (the pages are clean: the kernel rereads them if ever touched again).
    private func release(_ e: SafeTensors.Entry) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (header.dataStart + e.begin) / page * page
        let end = Swift.min(size, header.dataStart + e.end)
        if end > start { madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, MADV_DONTNEED) }
    }
}
