import Foundation

/// A streaming tar reader: 512-byte ustar/GNU/pax headers, regular files only.
///
/// Directories, links and devices are skipped; pax extended headers (`x`)
/// and GNU long names (`L`) supply the next member's path (and pax `size`);
/// global pax headers and GNU long link names are skipped. A bad header
/// checksum or a short member is an error naming the archive.
public struct TarReader {
    /// One regular file in the archive.
    public struct Member {
        /// Path inside the archive.
        public var path: String
        /// Size in bytes.
        public var size: Int
    }

    private let reader: BufferedReader
    private let name: String

    /// Reads the archive from `reader`; `name` appears in error messages.
    public init(_ reader: BufferedReader, name: String) {
        self.reader = reader
        self.name = name
    }

    /// Whether a 512-byte block is a tar header with a valid checksum.
    public static func isHeader(_ block: [UInt8]) -> Bool {
        guard block.count >= 512 else { return false }
        guard let stored = parseNumber(block[148..<156]) else { return false }
        return checksum(block) == stored && block[0] != 0
    }

    /// Whether a block carries the ustar magic (so it must be a tar header).
    public static func hasMagic(_ block: [UInt8]) -> Bool {
        block.count >= 262 && Array(block[257..<262]) == Array("ustar".utf8)
    }

    private static func checksum(_ block: [UInt8]) -> Int {
        var sum = 0
        for i in 0..<512 { sum += (148..<156).contains(i) ? 32 : Int(block[i]) }
        return sum
    }

    /// The largest member size accepted (1 PiB): sizes past it are corrupt, and keep the
    /// padding arithmetic far from overflow.
    static let maxMemberBytes = 1 << 50

    /// Octal (NUL/space padded) or GNU base-256 numbers.
    private static func parseNumber(_ field: ArraySlice<UInt8>) -> Int? {
        guard let first = field.first else { return nil }
        if first & 0x80 != 0 {
            var v = Int(first & 0x7F)
            for b in field.dropFirst() {
                guard v < (1 << 55) else { return nil }
                v = v << 8 | Int(b)
            }
            return v
        }
        var v = 0, digits = 0
        for b in field {
            if b == 0 || b == 0x20 { if digits > 0 { break } else { continue } }
            guard b >= 0x30 && b <= 0x37, v < (1 << 60) else { return nil }
            v = v * 8 + Int(b - 0x30); digits += 1
        }
        return v
    }

    private static func string(_ field: ArraySlice<UInt8>) -> String {
        let bytes = field.prefix { $0 != 0 }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Calls `body` for each regular file with a stream of exactly its bytes;
    /// whatever `body` leaves unread is skipped.
    public func forEachFile(_ body: (Member, LimitedStream) throws -> Void) throws {
        var offset = 0
        var longName: String?
        var paxPath: String?, paxSize: Int?
        var zeroBlocks = 0
        while true {
            var block: [UInt8] = []
            block.reserveCapacity(512)
            let got = try reader.read(upTo: 512, appendingTo: &block)
            if got == 0 {
                if offset == 0 { throw EmeraldError.io("\(name): empty tar archive") }
                return  // archives without the two zero blocks are accepted
            }
            guard got == 512 else { throw EmeraldError.io("\(name): tar archive is truncated at offset \(offset)") }
            if block.allSatisfy({ $0 == 0 }) {
                zeroBlocks += 1
                offset += 512
                if zeroBlocks == 2 { _ = try reader.skip(Int.max); return }
                continue
            }
            if zeroBlocks > 0 { throw EmeraldError.io("\(name): corrupt tar archive (data after an end-of-archive block at offset \(offset))") }
            guard let stored = Self.parseNumber(block[148..<156]), stored == Self.checksum(block) else {
                throw EmeraldError.io("\(name): corrupt tar header at offset \(offset) (checksum mismatch)")
            }
            guard var size = Self.parseNumber(block[124..<136]), size <= Self.maxMemberBytes else {
                throw EmeraldError.io("\(name): corrupt tar header at offset \(offset) (bad size field)")
            }
            let type = block[156]
            var path = Self.string(block[0..<100])
            if Self.hasMagic(block) && block[262] == 0 {  // POSIX ustar: prefix/name
                let prefix = Self.string(block[345..<500])
                if !prefix.isEmpty { path = prefix + "/" + path }
            }
            offset += 512
            let padded = (size + 511) / 512 * 512
            switch type {
            case UInt8(ascii: "x"), UInt8(ascii: "L"):
                guard size <= 1 << 20 else { throw EmeraldError.io("\(name): tar extended header at offset \(offset) is too large") }
                var data: [UInt8] = []
                guard try reader.read(upTo: size, appendingTo: &data) == size else {
                    throw EmeraldError.io("\(name): tar archive is truncated at offset \(offset)")
                }
                _ = try reader.skip(padded - size)
                if type == UInt8(ascii: "L") {
                    longName = Self.string(data[...])
                } else {
                    let pax = Self.parsePax(data)
                    if let p = pax["path"] { paxPath = p }
                    if let s = pax["size"] {
                        guard let v = Int(s), v >= 0, v <= Self.maxMemberBytes else {
                            throw EmeraldError.io("\(name): corrupt pax header at offset \(offset) (size \(s.prefix(30)))")
                        }
                        paxSize = v
                    }
                }
                offset += padded
                continue
            case UInt8(ascii: "0"), 0, UInt8(ascii: "7"):
                if let s = paxSize { size = s }
                let member = Member(path: paxPath ?? longName ?? path, size: size)
                longName = nil; paxPath = nil; paxSize = nil
                let stream = LimitedStream(reader, count: size, name: "\(name)/\(member.path)")
                try body(member, stream)
                let rest = stream.remaining
                let pad = (size + 511) / 512 * 512 - size
                guard try reader.skip(rest + pad) == rest + pad else {
                    throw EmeraldError.io("\(name): tar archive is truncated in member \(member.path)")
                }
                offset += (size + 511) / 512 * 512
            default:  // directories, links, devices, global pax headers, GNU long link names
                if type != UInt8(ascii: "g") && type != UInt8(ascii: "K") { longName = nil; paxPath = nil; paxSize = nil }
                let skip = (type == UInt8(ascii: "1") || type == UInt8(ascii: "2") || type == UInt8(ascii: "3")
                            || type == UInt8(ascii: "4") || type == UInt8(ascii: "5") || type == UInt8(ascii: "6")) ? 0 : padded
                guard try reader.skip(skip) == skip else { throw EmeraldError.io("\(name): tar archive is truncated at offset \(offset)") }
                offset += skip
            }
        }
    }

    /// "LEN key=value\n" records.
    private static func parsePax(_ data: [UInt8]) -> [String: String] {
        var out: [String: String] = [:]
        var i = 0
        while i < data.count {
            var j = i, len = 0
            while j < data.count && data[j] >= 0x30 && data[j] <= 0x39 && len <= data.count { len = len * 10 + Int(data[j] - 0x30); j += 1 }
            guard len > 0, j < data.count, data[j] == 0x20, i + len <= data.count, i + len - 1 >= j + 1 else { break }
            let record = data[(j + 1)..<(i + len - 1)]  // without the trailing "\n"
            if let eq = record.firstIndex(of: UInt8(ascii: "=")) {
                out[String(decoding: record[record.startIndex..<eq], as: UTF8.self)] =
                    String(decoding: record[(eq + 1)...], as: UTF8.self)
            }
            i += len
        }
        return out
    }
}
