import Foundation

/// The one output discipline of every command that writes a folder (train, finetune, convert
/// both ways, prepare):
/// - **Ownership.** A folder Emerald writes holds a marker file, `.emerald`, naming what wrote
///   it. An existing destination is only ever replaced when it carries the marker (or is a
///   recognised output of an older Emerald, or is empty); anything else is refused with its path.
/// - **One writer.** `lock()` takes an exclusive `flock` on a sibling `.NAME.lock` file; a
///   second writer fails at once, naming the holder's pid.
/// - **Atomic replacement.** `replace(with:)` swaps a completely written temporary sibling in
///   with one `renameat2(RENAME_EXCHANGE)`, so SIGKILL at any moment leaves either the previous
///   folder or the new one, loadable; the previous one is deleted only afterwards.
/// - **Litter.** Temporary siblings of dead processes (`NAME.tmp-PID`, `NAME.old-PID`) are
///   removed by the next writer.
public struct OutputFolder {
    /// The destination.
    public let path: String
    /// What lives there ("checkpoint", "huggingface", "prepared-corpus", "training-run").
    public let kind: String

    /// The marker file's name.
    public static let markerName = ".emerald"

    /// A destination for `kind` output; trailing slashes are dropped.
    public init(_ path: String, kind: String) {
        var p = path
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        self.path = p
        self.kind = kind
    }

    /// `.NAME.lock` beside the folder.
    var lockPath: String {
        let url = URL(fileURLWithPath: path)
        return url.deletingLastPathComponent().appendingPathComponent("." + url.lastPathComponent + ".lock").path
    }

    /// A temporary sibling for this process.
    public var temporaryPath: String { path + ".tmp-\(getpid())" }

    // MARK: - Ownership

    /// Throws unless `path` is absent, empty, or Emerald's output of the same kind: marked so,
    /// or `recognised` (an older Emerald's output, judged by content). A file, a foreign folder,
    /// a symbolic link, or Emerald's output of another kind (a training checkpoint is no place for
    /// an export) is refused with its path.
    public func requireWritable(kind: String? = nil, recognised: (String) -> Bool = { _ in false }) throws {
        let fm = FileManager.default
        var st = stat()
        guard lstat(path, &st) == 0 else { return }  // absent
        guard (st.st_mode & S_IFMT) == S_IFDIR else {
            throw EmeraldError.invalidArgument("\(path) exists and is not a folder; Emerald writes only folders of its own there — choose a new path")
        }
        let entries = (try? fm.contentsOfDirectory(atPath: path)) ?? []
        if entries.isEmpty || recognised(path) { return }
        if let marker = fm.contents(atPath: path + "/" + Self.markerName) {
            let found = (try? JSONSerialization.jsonObject(with: marker) as? [String: Any])?["kind"] as? String ?? "?"
            guard found == (kind ?? self.kind) else {
                throw EmeraldError.invalidArgument("\(path) holds Emerald output of another kind (\(found)); choose another folder for this \(kind ?? self.kind)")
            }
            return
        }
        let shown = entries.sorted().prefix(3).joined(separator: ", ")
        throw EmeraldError.invalidArgument(
            "\(path) holds files Emerald did not write (\(shown)\(entries.count > 3 ? ", …" : "")); choose an empty or new folder")
    }

    /// Writes the marker into `dir` (a temporary folder about to become `path`, or `path`).
    public func mark(_ dir: String) throws {
        let text = "{\"kind\": \"\(kind)\", \"written_by\": \"emerald\"}\n"
        try AtomicFile.write(Data(text.utf8), to: dir + "/" + Self.markerName)
    }

    // MARK: - One writer

    /// An exclusive lock held until `release()` or the process's end.
    public final class Lock {
        let fd: Int32
        init(fd: Int32) { self.fd = fd }
        /// Releases the lock.
        public func release() { flock(fd, LOCK_UN); close(fd) }
    }

    /// Takes the folder's lock, or throws naming the process that holds it.
    public func lock() throws -> Lock {
        let dir = parentFolder(lockPath)
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw EmeraldError.io("cannot write \(path): \(String(cString: strerror(errno))) (creating \(lockPath))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            var buf = [UInt8](repeating: 0, count: 32)
            let n = pread(fd, &buf, 31, 0)
            close(fd)
            let holder = n > 0 ? String(decoding: buf[..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : "?"
            throw EmeraldError.invalidArgument("\(path) is being written by another Emerald process (pid \(holder)); wait for it or choose another folder")
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pwrite(fd, pid, pid.count, 0)
        return Lock(fd: fd)
    }

    // MARK: - Atomic replacement

    /// Makes the complete folder `tmp` the destination: an atomic exchange when the destination
    /// exists (the previous version is deleted after), a rename when it does not.
    public func replace(with tmp: String) throws {
        syncFolder(tmp)
        var st = stat()
        if lstat(path, &st) == 0 {
            if Self.exchange(tmp, path) {
                syncParent()
                try? FileManager.default.removeItem(atPath: tmp)  // now the previous version
                return
            }
            // No RENAME_EXCHANGE on this file system: keep the previous version under a name a
            // loader and the next writer know until the new one is in place.
            let old = path + ".old-\(getpid())"
            guard rename(path, old) == 0 else { throw EmeraldError.io("cannot move \(path) aside: \(String(cString: strerror(errno)))") }
            guard rename(tmp, path) == 0 else {
                _ = rename(old, path)
                throw EmeraldError.io("cannot move \(tmp) to \(path): \(String(cString: strerror(errno)))")
            }
            syncParent()
            try? FileManager.default.removeItem(atPath: old)
            return
        }
        guard rename(tmp, path) == 0 else { throw EmeraldError.io("cannot move \(tmp) to \(path): \(String(cString: strerror(errno)))") }
        syncParent()
    }

    /// Removes `NAME.tmp-PID` / `NAME.old-PID` siblings whose process is gone; restores a
    /// previous version left as `NAME.old-PID` when the destination itself is missing.
    public func removeLitter() {
        let url = URL(fileURLWithPath: path)
        Self.clearDeadWriters(in: url.deletingLastPathComponent().path, base: url.lastPathComponent)
    }

    /// Removes, inside the folder, files and folders a dead writer left half-written
    /// (`NAME.tmp-PID`, `NAME.old-PID`, an older Emerald's `best.tmp` / `checkpoint.tmp`).
    public func removeLitterInside() {
        for legacy in ["best.tmp", "checkpoint.tmp"] { try? FileManager.default.removeItem(atPath: path + "/" + legacy) }
        Self.clearDeadWriters(in: path, base: nil)
    }

    /// In `dir`, each `BASE.tmp-PID` / `BASE.old-PID` (of `base` only, when given) whose process
    /// is gone: an `.old-` copy whose `BASE` is missing is put back (it is the only complete
    /// one), everything else is deleted.
    static func clearDeadWriters(in dir: String, base only: String?) {
        let fm = FileManager.default
        guard let entries = try? fm.contentsOfDirectory(atPath: dir) else { return }
        for e in entries {
            for tag in [".tmp-", ".old-"] {
                guard let r = e.range(of: tag, options: .backwards), let pid = Int32(e[r.upperBound...]) else { continue }
                let base = String(e[..<r.lowerBound])
                guard only.map({ $0 == base }) ?? true, pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
                if tag == ".old-" && !fm.fileExists(atPath: dir + "/" + base) {
                    _ = rename(dir + "/" + e, dir + "/" + base)
                } else {
                    try? fm.removeItem(atPath: dir + "/" + e)
                }
            }
        }
    }

    /// `renameat2(a, b, RENAME_EXCHANGE)`, through dlsym (Swift's Glibc does not export it).
    static func exchange(_ a: String, _ b: String) -> Bool {
        typealias Renameat2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32
        guard let sym = dlsym(nil, "renameat2") else { return false }
        let f = unsafeBitCast(sym, to: Renameat2.self)
        let AT_FDCWD: Int32 = -100, RENAME_EXCHANGE: UInt32 = 2
        return f(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) == 0
    }

    private func syncFolder(_ dir: String) {
        let fd = open(dir, O_RDONLY | O_DIRECTORY)
        if fd >= 0 { _ = fsync(fd); close(fd) }
    }

    private func syncParent() { syncFolder(parentFolder(path)) }
}

/// The folder holding `path` ("." for a bare name, "/" at the root). NSString's
/// `deletingLastPathComponent` traps on one-character names in this Foundation ("c").
public func parentFolder(_ path: String) -> String {
    var p = Substring(path)
    while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
    guard let slash = p.lastIndex(of: "/") else { return "." }
    return slash == p.startIndex ? "/" : String(p[..<slash])
}
