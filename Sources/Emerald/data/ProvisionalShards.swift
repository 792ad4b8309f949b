import Foundation

/// Completes the shards of a one-pass char run (see `CharIDs`) once the
/// vocabulary is known: shards whose ids change are rewritten in place through
/// the provisional → final id table (and widened to uint32 if the vocabulary
/// outgrew uint16), then every shard gets its header, is flushed and renamed
/// from `NAME.tmp` to `NAME` — so, as in a direct run, a file under a final
/// name is always complete and final.
///
/// In-place rewriting touches only pages the pass already wrote (and that are
/// usually still cached): no second copy of the corpus on disk or in memory.
enum ProvisionalShards {
    /// Tokens per read/rewrite/write step (buffers of `chunkTokens * 6` bytes per thread).
    static let chunkTokens = 1 << 20

    /// Completes `shards` in `directory` on `threads` threads. `perm` maps
    /// provisional to final ids; shards with `maxID < unchangedBelow` and the
    /// final `width` need no rewrite. Returns the shards and tokens rewritten.
    static func finish(_ shards: [PendingShard], directory: String, perm: [UInt32], unchangedBelow: UInt32, width: Int,
                       vocabularySize: Int, threads: Int, log: ((String) -> Void)?, interval: Double) throws -> (shards: Int, tokens: Int) {
        let state = FinishState(shards.map { $0.width != width || $0.maxID >= unchangedBelow }, interval: interval)
        let started = Date()
        let total = zip(shards, state.rewrite).reduce(0) { $0 + ($1.1 ? $1.0.tokens : 0) }
        let identity = perm.enumerated().allSatisfy { $0.element == UInt32($0.offset) }
        try perm.withUnsafeBufferPointer { permBuffer in
            let map = identity ? nil : permBuffer
            DispatchQueue.concurrentPerform(iterations: max(1, min(threads, shards.count))) { _ in
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkTokens * 6, alignment: 64)
                defer { buffer.deallocate() }
                while let k = state.next() {
                    do {
                        try complete(shards[k], rewrite: state.rewrite[k], directory: directory, perm: map, width: width,
                                     vocabularySize: vocabularySize, buffer: buffer)
                    } catch {
                        state.fail(error)
                        return
                    }
                    if state.rewrite[k], let log, let line = state.progress(shards[k].tokens, total: total, started: started) { log(line) }
                }
            }
            if let e = state.failure { throw e }
        }
        return (state.rewrite.filter { $0 }.count, total)
    }

    /// Rewrites (if asked), writes the header, flushes and renames one shard.
    private static func complete(_ s: PendingShard, rewrite: Bool, directory: String, perm: UnsafeBufferPointer<UInt32>?, width: Int,
                                 vocabularySize: Int, buffer: UnsafeMutableRawBufferPointer) throws {
        let path = directory + "/" + s.file
        let fd = open(path + ".tmp", O_RDWR)
        guard fd >= 0 else { throw EmeraldError.io("cannot open \(path).tmp: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        if rewrite { try self.rewrite(fd: fd, count: s.tokens, from: s.width, to: width, perm: perm, buffer: buffer, name: path + ".tmp") }
        let h = TokenShard.header(width: width, count: s.tokens, vocabularySize: vocabularySize)
        try h.withUnsafeBytes { try writeAll(fd, $0.baseAddress!, $0.count, at: 0, name: path + ".tmp") }
        guard fsync(fd) == 0, rename(path + ".tmp", path) == 0 else {
            throw EmeraldError.io("cannot finish \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Maps the `count` tokens of an open shard file through `perm` (nil: the
    /// same ids) from `from` to `to` bytes per token, in place, in chunks.
    static func rewrite(fd: Int32, count: Int, from: Int, to: Int, perm: UnsafeBufferPointer<UInt32>?,
                        buffer: UnsafeMutableRawBufferPointer, name: String) throws {
        precondition(to >= from && buffer.count >= chunkTokens * (from + to))
        let h = TokenShard.headerBytes
        let src = buffer.baseAddress!
        let dst = from == to ? src : src + chunkTokens * from
        // Widening moves every token to a higher offset: going from the end, no token is overwritten before it is read.
        let backward = to > from
        var done = 0
        while done < count {
            let n = min(chunkTokens, count - done)
            let lo = backward ? count - done - n : done
            try readAll(fd, src, n * from, at: h + lo * from, name: name)
            convert(src, from, dst, to, n, perm)
            try writeAll(fd, dst, n * to, at: h + lo * to, name: name)
            done += n
        }
    }

    /// `n` little-endian ids from `src` (`from` bytes each) to `dst` (`to` bytes each); `src == dst` when the widths match.
    private static func convert(_ src: UnsafeMutableRawPointer, _ from: Int, _ dst: UnsafeMutableRawPointer, _ to: Int, _ n: Int,
                                _ perm: UnsafeBufferPointer<UInt32>?) {
        if from == 4 {
            let s = src.assumingMemoryBound(to: UInt32.self), d = dst.assumingMemoryBound(to: UInt32.self)
            guard let p = perm?.baseAddress else { return }
            for j in 0..<n { d[j] = p[Int(UInt32(littleEndian: s[j]))].littleEndian }
            return
        }
        let s = src.assumingMemoryBound(to: UInt16.self)
        if to == 2 {
            let d = dst.assumingMemoryBound(to: UInt16.self)
            guard let p = perm?.baseAddress else { return }
            for j in 0..<n { d[j] = UInt16(truncatingIfNeeded: p[Int(UInt16(littleEndian: s[j]))]).littleEndian }
            return
        }
        let d = dst.assumingMemoryBound(to: UInt32.self)
        if let p = perm?.baseAddress {
            for j in 0..<n { d[j] = p[Int(UInt16(littleEndian: s[j]))].littleEndian }
        } else {
            for j in 0..<n { d[j] = UInt32(UInt16(littleEndian: s[j])).littleEndian }
        }
    }

    static func readAll(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int, at offset: Int, name: String) throws {
        var k = 0
        while k < n {
            let r = pread(fd, p + k, n - k, off_t(offset + k))
            if r < 0 && errno == EINTR { continue }
            guard r > 0 else { throw EmeraldError.io("cannot read \(name): \(r == 0 ? "file is shorter than expected" : String(cString: strerror(errno)))") }
            k += r
        }
    }

    static func writeAll(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int, at offset: Int, name: String) throws {
        var k = 0
        while k < n {
            let r = pwrite(fd, p + k, n - k, off_t(offset + k))
            if r < 0 && errno == EINTR { continue }
            guard r > 0 else { throw EmeraldError.io("cannot write \(name): \(String(cString: strerror(errno)))") }
            k += r
        }
    }

    /// Work distribution, the first error and progress lines for `finish`.
    private final class FinishState: @unchecked Sendable {
        let rewrite: [Bool]
        private let lock = NSLock()
        private var cursor = 0
        private(set) var failure: Error?
        private var doneTokens = 0
        private var lastLine = Date()
        private let interval: Double

        init(_ rewrite: [Bool], interval: Double) {
            self.rewrite = rewrite
            self.interval = interval
        }

        /// The next shard index, or nil when all are taken or one failed.
        func next() -> Int? {
            lock.lock(); defer { lock.unlock() }
            guard failure == nil, cursor < rewrite.count else { return nil }
            cursor += 1
            return cursor - 1
        }

        func fail(_ e: Error) { lock.lock(); if failure == nil { failure = e }; lock.unlock() }

        /// A progress line at most every `interval` seconds.
        func progress(_ tokens: Int, total: Int, started: Date) -> String? {
            lock.lock(); defer { lock.unlock() }
            doneTokens += tokens
            let now = Date()
            guard now.timeIntervalSince(lastLine) >= interval, doneTokens < total else { return nil }
            lastLine = now
            let rate = Double(doneTokens) / max(now.timeIntervalSince(started), 1e-3)
            return "prepare ids: \(PrepareProgress.count(Double(doneTokens))) of \(PrepareProgress.count(Double(total))) tokens rewritten "
                + "(\(PrepareProgress.count(rate))/s), ETA \(PrepareProgress.duration(Double(total - doneTokens) / rate))"
        }
    }
}
