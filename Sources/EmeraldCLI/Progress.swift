import ArgumentParser
import Emerald
import Foundation

extension LossPlot.Scale: ExpressibleByArgument {}

/// How a training command shows its progress.
struct ProgressOptions: ParsableArguments {
    @Option(help: "Progress on stderr: bar (redrawn in place; the default on a terminal), lines (a plain line every --progress-interval seconds; the default otherwise) or none.")
    var progress: ProgressStyle?
    @Option(help: "Seconds between progress lines when not drawing a bar.") var progressInterval: Double = 10
    @Option(help: "The loss axis of loss.svg: auto (log when the losses span more than 10×), linear or log.")
    var lossScale: LossPlot.Scale = .auto
}

/// `--progress`.
enum ProgressStyle: String, ExpressibleByArgument, CaseIterable {
    case bar, lines, none
}

/// A training run's output: results (setup, evaluations, summary) as lines on stdout, live
/// progress on stderr — a bar redrawn in place on a terminal, plain lines at a steady
/// interval otherwise.
final class RunOutput {
    private let style: ProgressStyle
    private let interval: Double
    private var lastDraw = Date.distantPast
    private var barShown = false

    init(options: ProgressOptions) {
        style = options.progress ?? (isatty(2) == 1 ? .bar : .lines)
        interval = options.progressInterval
        // Plain lines start one interval in: the first steps' rate (warm-up) says little.
        if style == .lines { lastDraw = Date() }
    }

    /// A line of the run's record, on stdout.
    func result(_ line: String) {
        clearBar()
        print(line)
        fflush(stdout)
    }

    /// Trains with this display attached.
    func run(_ trainer: Trainer, stopAfter: Int? = nil) throws {
        trainer.log = { [unowned self] in result($0) }
        trainer.onStep = { [unowned self] in update($0) }
        defer { clearBar() }
        try trainer.run(stopAfter: stopAfter)
    }

    /// Shows `p` if the interval since the last showing has passed.
    func update(_ p: TrainProgress) {
        let now = Date()
        switch style {
        case .none: return
        case .bar:
            guard now.timeIntervalSince(lastDraw) >= 0.1 || p.step == p.steps else { return }
            FileHandle.standardError.write(Data(("\r\u{1B}[2K" + RunOutput.bar(p, columns: terminalColumns())).utf8))
            barShown = true
        case .lines:
            guard now.timeIntervalSince(lastDraw) >= interval else { return }
            FileHandle.standardError.write(Data((RunOutput.line(p) + "\n").utf8))
        }
        lastDraw = now
    }

    private func clearBar() {
        guard barShown else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8))
        barShown = false
        lastDraw = .distantPast
    }

    /// "step  120/2500 | loss 2.3456 |  21.9k tok/s | 1:02 elapsed, ETA 20:11": fixed widths,
    /// so successive lines align.
    static func line(_ p: TrainProgress) -> String {
        let w = String(p.steps).count
        return "step \(pad(String(p.step), w))/\(p.steps) | loss \(String(format: "%.4f", p.loss)) | "
            + "\(pad(formatCount(p.tokensPerSecond), 6)) tok/s | \(pad(formatDuration(p.elapsed), 7)) elapsed, ETA \(formatDuration(p.eta))"
    }

    /// "[#####-----]  4.8% 120/2500 loss 2.3456 21.9k tok/s ETA 20:11", fitted to `columns`.
    static func bar(_ p: TrainProgress, columns: Int) -> String {
        let frac = Double(p.step) / Double(Swift.max(p.steps, 1))
        let tail = String(format: " %5.1f%% %@/%d loss %.4f %@ tok/s ETA %@", frac * 100, pad(String(p.step), String(p.steps).count),
                          p.steps, p.loss, formatCount(p.tokensPerSecond), formatDuration(p.eta))
        let width = Swift.min(40, columns - tail.count - 3)
        guard width >= 5 else { return String(tail.dropFirst().prefix(Swift.max(columns - 1, 0))) }
        let filled = Int((frac * Double(width)).rounded(.down))
        return "[" + String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled) + "]" + tail
    }

    private func terminalColumns() -> Int {
        var w = winsize()
        return ioctl(2, UInt(TIOCGWINSZ), &w) == 0 && w.ws_col > 0 ? Int(w.ws_col) : 80
    }
}
