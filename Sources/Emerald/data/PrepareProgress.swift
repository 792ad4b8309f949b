import Foundation

/// Progress lines for long `emerald prepare` passes: file MB read and MB/s,
/// documents, tokens and tokens/s, and an ETA from the share of input bytes read.
final class PrepareProgress {
    private let label: String
    private let log: ((String) -> Void)?
    private let interval: Double
    private let counter: ByteCounter
    private let totalBytes: Int
    private let startBytes: Int
    private let start = Date()
    private var last = Date()
    private var documents = 0, textBytes = 0, tokens = 0, ticks = 0

    init(label: String, options: PrepareOptions, counter: ByteCounter, totalBytes: Int) {
        self.label = label
        log = options.log
        interval = options.progressInterval
        self.counter = counter
        self.totalBytes = totalBytes
        startBytes = counter.value
    }

    /// Counts one consumed item; prints a line at most every `interval` seconds.
    func tick(documents d: Int, bytes: Int, tokens t: Int) {
        documents += d; textBytes += bytes; tokens += t
        ticks += 1
        guard log != nil, ticks & 63 == 0 else { return }
        let now = Date()
        guard now.timeIntervalSince(last) >= interval else { return }
        last = now
        log?(line(now, done: false))
    }

    /// Prints the pass's closing line.
    func finish() { log?(line(Date(), done: true)) }

    private func line(_ now: Date, done: Bool) -> String {
        let elapsed = max(now.timeIntervalSince(start), 1e-3)
        let read = counter.value - startBytes
        var s = "prepare \(label): \(Self.mb(read)) read (\(Self.mb(Double(read) / elapsed))/s)"
        s += ", text \(Self.mb(textBytes)) (\(Self.mb(Double(textBytes) / elapsed))/s)"
        s += ", \(documents) documents"
        if tokens > 0 { s += ", \(Self.count(Double(tokens))) tokens (\(Self.count(Double(tokens) / elapsed))/s)" }
        if done {
            s += ", done in \(Self.duration(elapsed))"
        } else if read > 0 && totalBytes > read {
            s += ", ETA \(Self.duration(elapsed * Double(totalBytes - read) / Double(read)))"
        }
        return s
    }

    static func mb<T: BinaryInteger>(_ bytes: T) -> String { mb(Double(bytes)) }
    static func mb(_ bytes: Double) -> String {
        bytes >= 1e9 ? String(format: "%.2f GB", bytes / 1e9) : String(format: "%.1f MB", bytes / 1e6)
    }
    static func count(_ v: Double) -> String {
        v >= 1e9 ? String(format: "%.2fB", v / 1e9) : v >= 1e6 ? String(format: "%.1fM", v / 1e6)
            : v >= 1e3 ? String(format: "%.1fk", v / 1e3) : String(format: "%.0f", v)
    }
    static func duration(_ s: Double) -> String {
        let t = Int(s.rounded())
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return t >= 3600 ? "\(t / 3600)h\(two(t / 60 % 60))m" : t >= 60 ? "\(t / 60)m\(two(t % 60))s" : "\(t)s"
    }
}
