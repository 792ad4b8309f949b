import Foundation
import XCTest

/// The layering rules of docs/architecture.md, checked on the sources themselves.
final class ArchitectureTests: XCTestCase {
    private let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// (path relative to the root, lines) of every Swift file under `folder`.
    private func sources(_ folder: String) throws -> [(path: String, lines: [Substring])] {
        let base = root + "/" + folder
        let files = try XCTUnwrap(FileManager.default.subpathsOfDirectory(atPath: base)).filter { $0.hasSuffix(".swift") }.sorted()
        XCTAssertFalse(files.isEmpty, "no sources under \(folder)")
        return try files.map { f in
            (folder + "/" + f, try String(contentsOfFile: base + "/" + f, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false))
        }
    }

    /// Code lines (not comments) matching `pattern`, as "path:line: text".
    private func matches(_ pattern: String, in files: [(path: String, lines: [Substring])],
                         except allowed: (String, Substring) -> Bool = { _, _ in false }) throws -> [String] {
        let re = try NSRegularExpression(pattern: pattern)
        var hits: [String] = []
        for (path, lines) in files {
            for (i, line) in lines.enumerated() where !line.trimmingCharacters(in: .whitespaces).hasPrefix("//") {
                let s = String(line)
                if re.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil && !allowed(path, line) {
                    hits.append("\(path):\(i + 1): \(line.trimmingCharacters(in: .whitespaces))")
                }
            }
        }
        return hits
    }

    /// Above the engine, a tensor's memory is reached only through `withHostBuffer` (and only
    /// in io/): no `.data` pointer.
    func testNoRawTensorMemoryAboveTheEngine() throws {
        let files = try sources("Sources/Emerald") + sources("Sources/EmeraldCLI")
        // `.data` of things that are not tensors: file contents, run settings, assets.
        let notTensors = ["JSONSerialization.data", "stored.data", "settings.data", "self.data", "vocabulary.data",
                          "merges.data", "ShippedAsset.book.data"]
        let hits = try matches(#"\.data\b"#, in: files) { _, line in notTensors.contains { line.contains($0) } }
        XCTAssertEqual(hits, [], "raw tensor memory above the engine")
        let raw = try matches(#"withHostBuffer"#, in: files) { path, _ in path.hasPrefix("Sources/Emerald/io/") }
        XCTAssertEqual(raw, [], "host access outside io/")
    }

    /// Generation, scoring and loading work through `LanguageModel` and the registries.
    func testNoGPTDowncastsOutsideItsFile() throws {
        let hits = try matches(#"(as[?!]|is) GPT\b"#, in: sources("Sources")) { path, _ in path.hasSuffix("models/GPT.swift") }
        XCTAssertEqual(hits, [])
    }

    /// The library never knows about the command line, or the HTTP server (Hummingbird, NIO).
    func testLibraryDoesNotImportTheCommandLine() throws {
        let lib = try sources("Sources/Emerald") + sources("Sources/EmeraldCore")
        XCTAssertEqual(try matches(#"^import (ArgumentParser|EmeraldTerminal|EmeraldServer|Hummingbird|NIO)"#, in: lib), [])
        // Library errors name settings (`batch_size`), never flags.
        let flagInString = #""[^"]*(^|[ (])--[a-z][a-z-]+"#
        XCTAssertEqual(try matches(flagInString, in: lib), [], "a library message names a command-line flag")
    }

    /// Short files: none over 600 lines.
    func testNoSourceFileOver600Lines() throws {
        var long: [String] = []
        for folder in ["Sources/Emerald", "Sources/EmeraldCore", "Sources/EmeraldCLI", "Sources/EmeraldTerminal", "Sources/EmeraldServer"] {
            for (path, lines) in try sources(folder) where lines.count > 600 { long.append("\(path): \(lines.count) lines") }
        }
        XCTAssertEqual(long, [])
    }
}
