import CLZMA
import CZlib
import Foundation

/// Streaming .xz decoding through the system liblzma (concatenated streams allowed).
public final class XZStream: ByteStream {
    private let inner: ByteStream
    private let name: String
    private let handle: UnsafeMutableRawPointer
    private let input: UnsafeMutableRawBufferPointer
    private var inStart = 0, inEnd = 0
    private var inputDone = false, ended = false

    /// Decodes the .xz bytes of `inner`; `name` appears in error messages.
    public init(_ inner: ByteStream, name: String) throws {
        guard let h = emerald_xz_new() else { throw EmeraldError.io("\(name): cannot start the xz decoder (out of memory?)") }
        self.inner = inner
        self.name = name
        handle = h
        input = .allocate(byteCount: 1 << 16, alignment: 16)
    }

    deinit {
        emerald_xz_free(handle)
        input.deallocate()
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if ended || buffer.count == 0 { return 0 }
        var stalls = 0
        while true {
            if inStart == inEnd && !inputDone {
                inStart = 0
                inEnd = try inner.read(into: input)
                if inEnd == 0 { inputDone = true }
            }
            var used = 0, made = 0
            let r = emerald_xz_decode(handle, input.baseAddress!.assumingMemoryBound(to: UInt8.self) + inStart, inEnd - inStart, &used,
                                      buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), buffer.count, &made,
                                      inputDone ? 1 : 0)
            inStart += used
            switch r {
            case 0: break
            case 1: ended = true; return made
            case 10: throw EmeraldError.io("\(name): xz data is truncated")
            case 7: throw EmeraldError.io("\(name): not in the xz format")
            case 9: throw EmeraldError.io("\(name): xz data is corrupt")
            case 5, 6: throw EmeraldError.io("\(name): out of memory while decoding xz")
            default: throw EmeraldError.io("\(name): cannot decode xz (liblzma error \(r))")
            }
            if made > 0 { return made }
            if used == 0 {
                stalls += 1
                if inputDone && stalls > 2 { throw EmeraldError.io("\(name): xz data is truncated") }
            }
        }
    }
}

/// Streaming .gz decoding through the system zlib (concatenated members allowed).
public final class GzipStream: ByteStream {
    private let inner: ByteStream
    private let name: String
    private let handle: UnsafeMutableRawPointer
    private let input: UnsafeMutableRawBufferPointer
    private var inStart = 0, inEnd = 0
    private var inputDone = false, ended = false, betweenMembers = false

    /// Decodes the gzip bytes of `inner`; `name` appears in error messages.
    public init(_ inner: ByteStream, name: String) throws {
        guard let h = emerald_gz_new() else { throw EmeraldError.io("\(name): cannot start the gzip decoder") }
        self.inner = inner
        self.name = name
        handle = h
        input = .allocate(byteCount: 1 << 16, alignment: 16)
    }

    deinit {
        emerald_gz_free(handle)
        input.deallocate()
    }

    private func refill() throws {
        if inStart == inEnd && !inputDone {
            inStart = 0
            inEnd = try inner.read(into: input)
            if inEnd == 0 { inputDone = true }
        }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if ended || buffer.count == 0 { return 0 }
        while true {
            try refill()
            if betweenMembers {
                // After a member: the end of input ends the stream; anything else starts the next member.
                if inStart == inEnd && inputDone { ended = true; return 0 }
                _ = emerald_gz_reset(handle)
                betweenMembers = false
            }
            if inStart == inEnd && inputDone { throw EmeraldError.io("\(name): gzip data is truncated") }
            var used = 0, made = 0
            let r = emerald_gz_decode(handle, input.baseAddress!.assumingMemoryBound(to: UInt8.self) + inStart, inEnd - inStart, &used,
                                      buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), buffer.count, &made)
            inStart += used
            if r == 1 { betweenMembers = true; if made > 0 { return made }; continue }
            if r == -5 && used == 0 && made == 0 && inStart == inEnd && !inputDone { continue }
            if r < 0 && r != -5 { throw EmeraldError.io("\(name): gzip data is corrupt (zlib error \(r))") }
            if made > 0 { return made }
        }
    }
}
