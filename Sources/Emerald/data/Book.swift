import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The guide's corpus: *Dorothy and the Wizard in Oz*, Project Gutenberg ebook 22566.
public enum Book {
    /// Plain-text UTF-8 edition.
    public static let url = URL(string: "https://www.gutenberg.org/cache/epub/22566/pg22566.txt")!

    /// `$XDG_CACHE_HOME/emerald` or `~/.cache/emerald`.
    public static var cacheDirectory: String {
        let env = ProcessInfo.processInfo.environment
        if let x = env["XDG_CACHE_HOME"], !x.isEmpty { return x + "/emerald" }
        return (env["HOME"] ?? NSTemporaryDirectory()) + "/.cache/emerald"
    }

    /// Path of the cached book, downloading it on first use.
    public static func path(log: (String) -> Void = { _ in }) throws -> String {
        let path = cacheDirectory + "/dorothy_and_the_wizard_in_oz.txt"
        if FileManager.default.fileExists(atPath: path) { return path }
        log("downloading the book (Project Gutenberg #22566) into \(cacheDirectory)…")
        final class Box: @unchecked Sendable { var result: Result<Data, Error> = .failure(EmeraldError.download("no response")) }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        var request = URLRequest(url: url)
        request.timeoutInterval = 30
        URLSession.shared.dataTask(with: request) { data, response, error in
            if let error { box.result = .failure(error) }
            else if let http = response as? HTTPURLResponse, http.statusCode != 200 {
                box.result = .failure(EmeraldError.download("HTTP \(http.statusCode)"))
            } else if let data, !data.isEmpty { box.result = .success(data) }
            done.signal()
        }.resume()
        done.wait()
        guard case .success(let data) = box.result else {
            throw EmeraldError.download("cannot download the book from \(url) (offline?); pass a UTF-8 text file with --data FILE")
        }
        _ = try TextCorpus.decode(data, path: url.absoluteString)
        try FileManager.default.createDirectory(atPath: cacheDirectory, withIntermediateDirectories: true)
        try AtomicFile.write(data, to: path)
        return path
    }
}
