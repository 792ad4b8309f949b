import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A pull-based byte source: files, memory, decompressors, tar members.
/// Streams are used by one thread at a time.
public protocol ByteStream: AnyObject {
    /// Reads up to `buffer.count` bytes; returns 0 only at the end of the stream.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

/// Thread-safe running total of bytes read from disk (for progress lines).
public final class ByteCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var total = 0
    /// Creates a zero counter.
    public init() {}
    /// Adds `n`.
    public func add(_ n: Int) { lock.lock(); total += n; lock.unlock() }
    /// The total so far.
    public var value: Int { lock.lock(); defer { lock.unlock() }; return total }
}

/// A file read with plain `read(2)` calls, optionally counting bytes.
public final class FileStream: ByteStream {
    private let fd: Int32
    private let path: String
    private let counter: ByteCounter?

    /// Opens `path` for reading.
    public init(path: String, counter: ByteCounter? = nil) throws {
        fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            if errno == ENOENT { throw EmeraldError.fileNotFound(path) }
            throw EmeraldError.io("cannot read \(path): \(String(cString: strerror(errno)))")
        }
        self.path = path
        self.counter = counter
    }

    deinit { close(fd) }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard buffer.count > 0 else { return 0 }
        while true {
            let n = Glibc.read(fd, buffer.baseAddress!, buffer.count)
            if n >= 0 { counter?.add(n); return n }
            if errno == EINTR { continue }
            throw EmeraldError.io("cannot read \(path): \(String(cString: strerror(errno)))")
        }
    }
}

/// Bytes already in memory (a tar member handed to a worker thread).
public final class MemoryStream: ByteStream {
    private let bytes: [UInt8]
    private var position = 0
    /// Streams `bytes`.
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(buffer.count, bytes.count - position)
        if n > 0 {
            bytes.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + position, byteCount: n) }
            position += n
        }
        return n
    }
}

/// A buffered reader with look-ahead, lines and exact reads; itself a `ByteStream`.
public final class BufferedReader: ByteStream {
    private let source: ByteStream
    private let storage: UnsafeMutableRawBufferPointer
    private var start = 0, end = 0
    private var atEOF = false

    /// Wraps `source` with a buffer of `capacity` bytes (look-ahead is limited to it).
    public init(_ source: ByteStream, capacity: Int = 1 << 18) {
        self.source = source
        storage = .allocate(byteCount: max(capacity, 4096), alignment: 16)
    }

    deinit { storage.deallocate() }

    /// Bytes buffered and not yet consumed.
    private var available: Int { end - start }

    /// Reads more from the source (compacting first); false at the end of the stream.
    private func fill() throws -> Bool {
        if atEOF { return false }
        if start > 0 && (end == storage.count || start == end) {
            if end > start { storage.baseAddress!.copyMemory(from: storage.baseAddress! + start, byteCount: end - start) }
            end -= start; start = 0
        }
        if end == storage.count { return true }
        let n = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: storage[end...]))
        if n == 0 { atEOF = true; return false }
        end += n
        return true
    }

    /// Up to `n` upcoming bytes without consuming them (fewer only at the end of the stream).
    public func peek(_ n: Int) throws -> [UInt8] {
        let want = min(n, storage.count)
        while available < want {
            if start > 0 { storage.baseAddress!.copyMemory(from: storage.baseAddress! + start, byteCount: available); end -= start; start = 0 }
            if try !fill() { break }
        }
        let k = min(want, available)
        return Array(UnsafeRawBufferPointer(rebasing: storage[start..<(start + k)]))
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if available == 0 {
            // Large reads bypass the buffer.
            if buffer.count >= storage.count && !atEOF {
                let n = try source.read(into: buffer)
                if n == 0 { atEOF = true }
                return n
            }
            if try !fill() { return 0 }
        }
        let n = min(buffer.count, available)
        buffer.baseAddress!.copyMemory(from: storage.baseAddress! + start, byteCount: n)
        start += n
        return n
    }

    /// Appends up to `n` bytes to `out`; returns how many (fewer only at the end).
    @discardableResult
    public func read(upTo n: Int, appendingTo out: inout [UInt8]) throws -> Int {
        var got = 0
        while got < n {
            if available == 0, try !fill() { break }
            let k = min(n - got, available)
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: storage[start..<(start + k)]))
            start += k; got += k
        }
        return got
    }

    /// Skips up to `n` bytes; returns how many were skipped.
    public func skip(_ n: Int) throws -> Int {
        var left = n
        while left > 0 {
            if available == 0, try !fill() { break }
            let k = min(left, available)
            start += k; left -= k
        }
        return n - left
    }

    /// The next line without its "\n" (nil at the end); lines longer than `limit` bytes throw.
    public func readLine(limit: Int, name: String) throws -> [UInt8]? {
        var line: [UInt8] = []
        while true {
            if available == 0, try !fill() { return line.isEmpty ? nil : line }
            let chunk = UnsafeRawBufferPointer(rebasing: storage[start..<end])
            if let nl = chunk.firstIndex(of: 0x0A) {
                line.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[chunk.startIndex..<nl]))
                start += nl - chunk.startIndex + 1
                return line
            }
            line.append(contentsOf: chunk)
            start = end
            if line.count > limit { throw EmeraldError.io("\(name): a line is longer than \(limit) bytes") }
        }
    }
}

/// The next `count` bytes of a reader (one tar member).
public final class LimitedStream: ByteStream {
    private let reader: BufferedReader
    /// Bytes not yet read.
    public private(set) var remaining: Int
    private let name: String

    /// A view of the next `count` bytes of `reader`.
    public init(_ reader: BufferedReader, count: Int, name: String) {
        self.reader = reader
        remaining = count
        self.name = name
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let want = min(buffer.count, remaining)
        if want == 0 { return 0 }
        let n = try reader.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want]))
        if n == 0 { throw EmeraldError.io("\(name): archive is truncated (\(remaining) bytes of this member are missing)") }
        remaining -= n
        return n
    }
}
