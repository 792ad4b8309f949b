import Foundation

/// The token shard format written by `emerald prepare`:
///
/// | bytes  | field                                               |
/// |--------|-----------------------------------------------------|
/// | 0..<8  | magic `"EMTOKENS"`                                  |
/// | 8..<12 | version (UInt32 LE, 1)                              |
/// | 12..<16| bytes per token (UInt32 LE): 2 = uint16, 4 = uint32 |
/// | 16..<24| token count (UInt64 LE)                             |
/// | 24..<32| vocabulary size (UInt64 LE, informational)          |
/// | 32..<64| zero                                                |
/// | 64...  | the tokens, little-endian                           |
///
/// A shard is written as `NAME.tmp` with a zeroed header, then the header is
/// filled in, the file flushed and renamed to `NAME`: a file under the final
/// name is always complete, and readers check its size against the header.
/// (A `--tokenizer char` run's shards wait, flushed, under `NAME.tmp` until the
/// vocabulary is known; see `ProvisionalShards`.)
public enum TokenShard {
    /// Header size.
    public static let headerBytes = 64
    /// Magic bytes.
    public static let magic: [UInt8] = Array("EMTOKENS".utf8)
    /// Format version.
    public static let version: UInt32 = 1

    /// The header bytes for a finished shard.
    static func header(width: Int, count: Int, vocabularySize: Int) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: headerBytes)
        for (i, b) in magic.enumerated() { h[i] = b }
        func put<T: FixedWidthInteger>(_ v: T, at o: Int) {
            withUnsafeBytes(of: v.littleEndian) { for (i, b) in $0.enumerated() { h[o + i] = b } }
        }
        put(version, at: 8)
        put(UInt32(width), at: 12)
        put(UInt64(count), at: 16)
        put(UInt64(vocabularySize), at: 24)
        return h
    }
}

/// A shard that a provisional `ShardWriter` left as `NAME.tmp` with a zero
/// header (data flushed) for `ProvisionalShards.finish` to complete.
struct PendingShard {
    /// Final name (without ".tmp").
    var file: String
    var tokens: Int
    /// Bytes per token as written (2 or 4).
    var width: Int
    /// No token id in the shard is above this (per document, so an upper bound).
    var maxID: UInt32
}

/// Writes one split's token stream as numbered shards (`SPLIT-000000.bin`, …).
public final class ShardWriter {
    /// Folder.
    public let directory: String
    /// "train" or "val".
    public let split: String
    /// Bytes per token (2 or 4); a provisional writer can `widen()` from 2 to 4.
    public private(set) var width: Int
    /// Tokens per shard.
    public let shardTokens: Int
    private let vocabularySize: Int
    /// Finished shards: file name and token count.
    public private(set) var shards: [(file: String, tokens: Int)] = []
    /// Tokens written so far.
    public private(set) var totalTokens = 0
    private var fd: Int32 = -1
    private var inShard = 0
    private let buffer: UnsafeMutableRawBufferPointer
    private var used = 0
    /// Provisional mode: a full shard is flushed and kept as `NAME.tmp` with a
    /// zero header (ids not final yet) and listed in `pending`.
    var provisional = false
    private(set) var pending: [PendingShard] = []
    private var shardMaxID: UInt32 = 0

    /// A writer for `split` in `directory`.
    public init(directory: String, split: String, width: Int, shardTokens: Int, vocabularySize: Int) {
        precondition((width == 2 || width == 4) && shardTokens > 0)
        self.directory = directory
        self.split = split
        self.width = width
        self.shardTokens = shardTokens
        self.vocabularySize = vocabularySize
        buffer = .allocate(byteCount: 1 << 22, alignment: 64)
    }

    deinit {
        if fd >= 0 { close(fd) }
        buffer.deallocate()
    }

    private var currentName: String {
        let n = String(shards.count)
        return split + "-" + String(repeating: "0", count: max(0, 6 - n.count)) + n + ".bin"
    }

    private func openShard() throws {
        let path = directory + "/" + currentName + ".tmp"
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o644)  // read too: `widen()` rewrites in place
        guard fd >= 0 else { throw EmeraldError.io("cannot write \(path): \(String(cString: strerror(errno)))") }
        // A zero header until the shard is finished: an interrupted shard never looks complete.
        buffer.baseAddress!.initializeMemory(as: UInt8.self, repeating: 0, count: TokenShard.headerBytes)
        used = TokenShard.headerBytes
        inShard = 0
        shardMaxID = 0
    }

    private func flush() throws {
        guard fd >= 0, used > 0 else { return }
        var off = 0
        while off < used {
            let n = write(fd, buffer.baseAddress! + off, used - off)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw EmeraldError.io("cannot write \(directory)/\(currentName).tmp: \(String(cString: strerror(errno)))")
            }
            off += n
        }
        used = 0
    }

    private func finishShard() throws {
        try flush()
        if provisional {
            // Flushed now, so that the disk writes overlap the pass and finishing costs little when no id changes.
            let ok = fsync(fd) == 0
            close(fd); fd = -1
            guard ok else { throw EmeraldError.io("cannot write \(directory)/\(currentName).tmp: \(String(cString: strerror(errno)))") }
            pending.append(PendingShard(file: currentName, tokens: inShard, width: width, maxID: shardMaxID))
            shards.append((currentName, inShard))
            inShard = 0
            return
        }
        let h = TokenShard.header(width: width, count: inShard, vocabularySize: vocabularySize)
        let path = directory + "/" + currentName
        let ok = h.withUnsafeBytes { pwrite(fd, $0.baseAddress!, $0.count, 0) == $0.count } && fsync(fd) == 0
        close(fd); fd = -1
        guard ok, rename(path + ".tmp", path) == 0 else {
            throw EmeraldError.io("cannot finish \(path): \(String(cString: strerror(errno)))")
        }
        shards.append((currentName, inShard))
        inShard = 0
    }

    /// Appends tokens, starting new shards as they fill; `maxID` (provisional
    /// mode) bounds their ids, for `PendingShard.maxID`.
    public func append(_ tokens: UnsafeBufferPointer<UInt32>, maxID: UInt32 = 0) throws {
        var i = 0
        while i < tokens.count {
            if fd < 0 { try openShard() }
            shardMaxID = max(shardMaxID, maxID)
            let k = min(tokens.count - i, shardTokens - inShard, (buffer.count - used) / width)
            if k == 0 { try flush(); continue }
            let src = tokens.baseAddress! + i
            if width == 2 {
                let dst = (buffer.baseAddress! + used).assumingMemoryBound(to: UInt16.self)
                for j in 0..<k { dst[j] = UInt16(truncatingIfNeeded: src[j]).littleEndian }
            } else {
                let dst = (buffer.baseAddress! + used).assumingMemoryBound(to: UInt32.self)
                for j in 0..<k { dst[j] = src[j].littleEndian }
            }
            used += k * width
            i += k; inShard += k; totalTokens += k
            if inShard == shardTokens { try finishShard() }
        }
    }

    /// Switches a provisional writer from 2 to 4 bytes per token (ids grew past
    /// UInt16): the open shard is widened in place, finished shards keep their
    /// width until `ProvisionalShards.finish`.
    func widen() throws {
        precondition(provisional && width == 2)
        if fd >= 0 {
            try flush()
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: ProvisionalShards.chunkTokens * 6, alignment: 64)
            defer { buffer.deallocate() }
            try ProvisionalShards.rewrite(fd: fd, count: inShard, from: 2, to: 4, perm: nil, buffer: buffer,
                                          name: directory + "/" + currentName + ".tmp")
            lseek(fd, 0, SEEK_END)  // further writes go after the widened tokens
        }
        width = 4
    }

    /// Finishes the last, partly filled shard.
    public func finish() throws {
        if fd >= 0 && inShard > 0 { try finishShard() }
        if fd >= 0 { close(fd); fd = -1; unlink(directory + "/" + currentName + ".tmp") }
    }

    /// After a failure: deletes the open shard and provisional ones (finished
    /// final shards stay; without a manifest the folder is not a corpus).
    func discard() {
        if fd >= 0 { close(fd); fd = -1; unlink(directory + "/" + currentName + ".tmp") }
        for p in pending { unlink(directory + "/" + p.file + ".tmp") }
        pending = []
    }
}

/// Token shards mapped into memory as one `TokenSource`: windows may span
/// shards, nothing is read whole, and the kernel pages tokens in on demand.
///
/// File-backed pages count toward a process's resident size once touched —
/// and on kernels with large page-cache folios one fault can map a megabyte or
/// more around a 256-byte window — so every `releaseInterval` windows the
/// mappings are advised `MADV_DONTNEED` (the page cache keeps the data; the
/// process just lets go of it). That keeps peak RSS independent of the corpus
/// size during long random-window training.
public final class ShardedTokens: TokenSource, @unchecked Sendable {
    private struct Shard { let base: UnsafeMutableRawPointer; let length: Int; let tokens: UnsafeRawPointer; let count: Int }
    private let shards: [Shard]
    private let starts: [Int]  // first global token index of each shard
    /// Bytes per token (2 or 4).
    public let width: Int
    /// Total tokens.
    public let count: Int
    private let lock = NSLock()
    private var copies = 0
    /// Windows between `MADV_DONTNEED` calls.
    public var releaseInterval = 16

    /// Maps `paths` (in order), checking each header and size; `expected` are the manifest's
    /// counts. With `vocabularySize`, every id is checked to lie below it (one vector pass per
    /// shard): an id outside the embedding table would read out of bounds in training.
    public init(paths: [String], expected: [Int]? = nil, vocabularySize: Int? = nil) throws {
        var shards: [Shard] = []
        var starts: [Int] = []
        var total = 0
        var width = 0
        for (k, path) in paths.enumerated() {
            func bad(_ r: String) -> EmeraldError { .io("token shard \(path) is unusable: \(r)") }
            let fd = open(path, O_RDONLY | O_NONBLOCK)  // a FIFO must not block the open
            guard fd >= 0 else {
                if errno == ENOENT { throw EmeraldError.fileNotFound(path) }
                throw EmeraldError.io("cannot read \(path): \(String(cString: strerror(errno)))")
            }
            defer { close(fd) }
            var st = stat()
            guard fstat(fd, &st) == 0 else { throw bad("cannot stat") }
            guard (st.st_mode & S_IFMT) == S_IFREG else { throw bad("not a regular file") }
            let length = Int(st.st_size)
            guard length >= TokenShard.headerBytes else { throw bad("\(length) bytes is shorter than the header") }
            guard let base = mmap(nil, length, PROT_READ, MAP_SHARED, fd, 0), base != UnsafeMutableRawPointer(bitPattern: -1) else {
                throw bad("mmap failed: \(String(cString: strerror(errno)))")
            }
            let raw = UnsafeRawPointer(base)
            let ok = TokenShard.magic.enumerated().allSatisfy { raw.load(fromByteOffset: $0.offset, as: UInt8.self) == $0.element }
            let version = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
            let w = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 12, as: UInt32.self)))
            let n = Int(truncatingIfNeeded: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self)))  // checked below
            var problem: String?
            if !ok { problem = "bad magic (not a finished emerald shard)" }
            else if version != TokenShard.version { problem = "unsupported version \(version)" }
            else if w != 2 && w != 4 { problem = "unsupported token width \(w)" }
            else if width != 0 && w != width { problem = "token width \(w) differs from the other shards' \(width)" }
            else if n < 0 || n > (length - TokenShard.headerBytes) / w || TokenShard.headerBytes + n * w != length {
                problem = "header says \(n) tokens but the file has \(length) bytes"
            } else if let expected, expected[k] != n { problem = "holds \(n) tokens, the manifest says \(expected[k])" }
            if problem == nil, let vocabularySize {
                let largest = ShardedTokens.largestID(raw + TokenShard.headerBytes, count: n, width: w)
                if Int(largest) >= vocabularySize {
                    problem = "holds token id \(largest), outside the vocabulary of \(vocabularySize) (a damaged or foreign shard)"
                }
                _ = madvise(base, length, MADV_DONTNEED)  // the scan's pages: let go of them
            }
            if let problem { munmap(base, length); throw bad(problem) }
            _ = madvise(base, length, MADV_RANDOM)
            _ = madvise(base, length, MADV_NOHUGEPAGE)
            width = w
            starts.append(total)
            shards.append(Shard(base: base, length: length, tokens: raw + TokenShard.headerBytes, count: n))
            total += n
        }
        self.shards = shards
        self.starts = starts
        self.width = width == 0 ? 2 : width
        count = total
    }

    deinit { for s in shards { munmap(s.base, s.length) } }

    /// The largest of `n` little-endian ids of `width` bytes at `p`, 32 or 16 lanes at a time.
    static func largestID(_ p: UnsafeRawPointer, count n: Int, width: Int) -> UInt32 {
        var i = 0
        if width == 2 {
            var m = SIMD32<UInt16>(repeating: 0)
            while i + 32 <= n { m = pointwiseMax(m, (p + 2 * i).loadUnaligned(as: SIMD32<UInt16>.self)); i += 32 }
            var r = UInt32(m.max())
            while i < n { r = max(r, UInt32((p + 2 * i).loadUnaligned(as: UInt16.self))); i += 1 }
            return r
        }
        var m = SIMD16<UInt32>(repeating: 0)
        while i + 16 <= n { m = pointwiseMax(m, (p + 4 * i).loadUnaligned(as: SIMD16<UInt32>.self)); i += 16 }
        var r = m.max()
        while i < n { r = max(r, (p + 4 * i).loadUnaligned(as: UInt32.self)); i += 1 }
        return r
    }

    /// Copies `n` tokens from global position `offset` (windows may cross shards).
    public func copy(from offset: Int, count n: Int, into out: UnsafeMutablePointer<Int32>) {
        if n == 0 { return }
        precondition(offset >= 0 && n >= 0 && offset + n <= count, "window \(offset)..<\(offset + n) outside \(count) tokens")
        // The last shard that starts at or before `offset`.
        var lo = 0, hi = starts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if starts[mid] <= offset { lo = mid } else { hi = mid - 1 }
        }
        var k = lo, pos = offset - starts[lo], done = 0
        while done < n {
            let s = shards[k]
            let m = min(n - done, s.count - pos)
            if m > 0 {
                if width == 2 {
                    let p = s.tokens.assumingMemoryBound(to: UInt16.self) + pos
                    for i in 0..<m { out[done + i] = Int32(UInt16(littleEndian: p[i])) }
                } else {
                    let p = s.tokens.assumingMemoryBound(to: UInt32.self) + pos
                    for i in 0..<m { out[done + i] = Int32(bitPattern: UInt32(littleEndian: p[i])) }
                }
            }
            done += m; k += 1; pos = 0
        }
        lock.lock()
        copies += 1
        let release = copies % releaseInterval == 0
        lock.unlock()
        if release { for s in shards { _ = madvise(s.base, s.length, MADV_DONTNEED) } }
    }

    /// Every token (tests and small corpora only).
    public func allTokens() -> [Int32] {
        var out = [Int32](repeating: 0, count: count)
        if count > 0 { out.withUnsafeMutableBufferPointer { copy(from: 0, count: count, into: $0.baseAddress!) } }
        return out
    }
}
