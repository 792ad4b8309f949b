import Foundation
import XCTest

/// A minimal HTTP/1.1 client over POSIX sockets to 127.0.0.1, for the server tests (no
/// URLSession: it needs more of the network stack than a sandbox may have). Every request
/// says `Connection: close`, so a response ends when the server closes.
struct HTTPTestClient {
    let port: Int

    /// A response: status, headers (names lowercased), body (chunked encoding undone).
    struct Reply {
        var status: Int
        var headers: [String: String]
        var body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }

        /// The body as a JSON object.
        func json(file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
            try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any], "not a JSON object: \(text)", file: file, line: line)
        }

        /// The `data:` payloads of a server-sent event stream.
        var events: [String] {
            text.components(separatedBy: "\n\n").compactMap { $0.hasPrefix("data: ") ? String($0.dropFirst(6)) : nil }
        }
    }

    /// Whether a TCP socket can be bound on 127.0.0.1 (not in a sandbox without loopback).
    static func loopbackAvailable() -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = address(port: 0)
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    private static func address(port: Int) -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        return addr
    }

    /// A connected socket (60 s receive timeout).
    func connect() throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        var addr = Self.address(port: port)
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Foundation.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard ok else { close(fd); throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .ECONNREFUSED) }
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// Sends all of `bytes` (false when the peer is gone).
    @discardableResult
    static func send(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Foundation.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            sent += n
        }
        return true
    }

    /// The request's head and body as bytes.
    static func encode(_ method: String, _ path: String, headers: [String: String] = [:], body: [UInt8]? = nil) -> [UInt8] {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        if let body, headers["Content-Length"] == nil, headers["Transfer-Encoding"] == nil { head += "Content-Length: \(body.count)\r\n" }
        return Array((head + "\r\n").utf8) + (body ?? [])
    }

    /// Sends one request and reads the whole response.
    func request(_ method: String, _ path: String, headers: [String: String] = [:], body: [UInt8]? = nil) throws -> Reply {
        try send(raw: Self.encode(method, path, headers: headers, body: body))
    }

    /// `POST path` with a JSON body.
    func post(_ path: String, json: Any, headers: [String: String] = [:]) throws -> Reply {
        try request("POST", path, headers: headers.merging(["Content-Type": "application/json"]) { a, _ in a },
                    body: Array(try JSONSerialization.data(withJSONObject: json)))
    }

    /// Sends `bytes` as they are, then reads until the server closes.
    func send(raw bytes: [UInt8]) throws -> Reply {
        let fd = try connect()
        defer { close(fd) }
        Self.send(fd, bytes)
        return try Self.parse(Self.readAll(fd))
    }

    /// Everything until the peer closes (or the receive timeout).
    static func readAll(_ fd: Int32) -> [UInt8] {
        var out: [UInt8] = [], buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return out }
            out += buf[..<n]
        }
    }

    /// Parses a whole response.
    static func parse(_ raw: [UInt8]) throws -> Reply {
        guard let split = raw.indices.first(where: { raw[$0...].starts(with: [13, 10, 13, 10]) }) else {
            throw NSError(domain: "http", code: 1, userInfo: [NSLocalizedDescriptionKey: "no response head in \(raw.count) bytes"])
        }
        let lines = String(decoding: raw[..<split], as: UTF8.self).components(separatedBy: "\r\n")
        let status = Int(lines[0].split(separator: " ").dropFirst().first ?? "") ?? 0
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Array(raw[(split + 4)...])
        if headers["transfer-encoding"]?.lowercased() == "chunked" { body = dechunk(body) }
        return Reply(status: status, headers: headers, body: body)
    }

    /// The payload of a chunked body.
    static func dechunk(_ b: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [], i = 0
        while let eol = b[i...].indices.first(where: { b[$0...].starts(with: [13, 10]) }) {
            let size = Int(String(decoding: b[i..<eol], as: UTF8.self).split(separator: ";").first ?? "", radix: 16) ?? 0
            if size == 0 { break }
            let start = eol + 2
            guard start + size <= b.count else { out += b[start...]; break }
            out += b[start..<(start + size)]
            i = start + size + 2
            if i >= b.count { break }
        }
        return out
    }
}
