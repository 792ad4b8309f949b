import Foundation

/// Renders train/val loss as a small self-contained SVG: the evaluations as solid lines, the
/// mean training loss between them as a light line, round ticks, the legend beside the plot.
public enum LossPlot {
    /// The loss axis.
    public enum Scale: String, CaseIterable, Sendable {
        /// Log when the losses span more than 10×, else linear.
        case auto
        /// Evenly spaced losses.
        case linear
        /// Evenly spaced orders of magnitude.
        case log
    }

    /// The SVG document for `records` and the finer `stepLosses`.
    public static func svg(_ records: [EvalRecord], stepLosses: [StepLoss] = [], scale: Scale = .auto,
                           width: Double = 720, height: Double = 400) -> String {
        let left = 64.0, right = 130.0, top = 30.0, bottom = 45.0
        let pw = width - left - right, ph = height - top - bottom
        let points = records.map { Double($0.step) } + stepLosses.map { Double($0.step) }
        let losses = (records.flatMap { [Double($0.train_loss), Double($0.val_loss)] } + stepLosses.map { Double($0.loss) })
            .filter { $0.isFinite }
        let xTicks = niceTicks(0, Swift.max(points.max() ?? 1, 1), count: 6)
        let x0 = 0.0, x1 = xTicks.last!
        var lo = losses.min() ?? 0, hi = losses.max() ?? 1
        let log = lo > 0 && (scale == .log || (scale == .auto && hi / lo > 10))
        let yTicks: [Double]
        let y0: Double, y1: Double
        if log {
            yTicks = logTicks(lo, hi)
            y0 = Foundation.log10(Swift.min(lo, yTicks.first!)); y1 = Foundation.log10(Swift.max(hi, yTicks.last!))
        } else {
            if hi - lo < 1e-6 { lo -= 0.5; hi += 0.5 }
            let margin = (hi - lo) * 0.05
            // A loss is never negative: the axis stops at zero.
            yTicks = niceTicks(Swift.max(0, lo - margin), hi + margin, count: 5)
            y0 = yTicks.first!; y1 = yTicks.last!
        }
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * pw }
        func py(_ y: Double) -> Double {
            let v = log ? Foundation.log10(y) : y
            return top + (1 - (v - y0) / Swift.max(y1 - y0, 1e-12)) * ph
        }
        func path(_ xy: [(Double, Double)]) -> String {
            xy.filter { $0.1.isFinite && (!log || $0.1 > 0) }
                .map { String(format: "%.1f,%.1f", px($0.0), py($0.1)) }.joined(separator: " ")
        }
        var s = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(left)" y="18" font-size="14">Training and validation loss\(log ? " (log scale)" : "")</text>

        """
        for y in yTicks {
            s += String(format: "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>", left, left + pw, py(y), py(y))
            s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%@</text>\n", left - 6, py(y) + 4, label(y))
        }
        for x in xTicks {
            s += String(format: "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>", px(x), px(x), top, top + ph)
            s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%@</text>\n", px(x), top + ph + 16, label(x))
        }
        s += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(pw)\" height=\"\(ph)\" fill=\"none\" stroke=\"#888\"/>\n"
        s += "<text x=\"\(left + pw / 2)\" y=\"\(height - 8)\" text-anchor=\"middle\">step</text>\n"
        s += String(format: "<text transform=\"translate(16,%.1f) rotate(-90)\" text-anchor=\"middle\">loss (nats per token)</text>\n",
                    top + ph / 2)
        let train = "#1f77b4", val = "#d62728"
        if !stepLosses.isEmpty {
            s += "<polyline fill=\"none\" stroke=\"\(train)\" stroke-opacity=\"0.35\" stroke-width=\"1\" points=\"\(path(stepLosses.map { (Double($0.step), Double($0.loss)) }))\"/>\n"
        }
        s += "<polyline fill=\"none\" stroke=\"\(train)\" stroke-width=\"2\" points=\"\(path(records.map { (Double($0.step), Double($0.train_loss)) }))\"/>\n"
        s += "<polyline fill=\"none\" stroke=\"\(val)\" stroke-width=\"2\" points=\"\(path(records.map { (Double($0.step), Double($0.val_loss)) }))\"/>\n"
        // The legend, right of the plot area: never over the data.
        let lx = left + pw + 12
        var ly = top + 12
        func entry(_ color: String, _ text: String, opacity: Double = 1, width: Double = 2) {
            s += "<line x1=\"\(lx)\" x2=\"\(lx + 20)\" y1=\"\(ly)\" y2=\"\(ly)\" stroke=\"\(color)\" stroke-opacity=\"\(opacity)\" stroke-width=\"\(width)\"/>"
            s += "<text x=\"\(lx + 26)\" y=\"\(ly + 4)\">\(text)</text>\n"
            ly += 18
        }
        entry(train, "train (eval)")
        if !stepLosses.isEmpty { entry(train, "train (steps)", opacity: 0.35, width: 1) }
        entry(val, "val")
        if let best = records.filter({ $0.val_loss.isFinite }).min(by: { $0.val_loss < $1.val_loss }) {
            s += String(format: "<text x=\"%.1f\" y=\"%.1f\">best val %.4f</text>\n", lx, ly + 8, best.val_loss)
            s += String(format: "<text x=\"%.1f\" y=\"%.1f\">at step %d</text>\n", lx, ly + 24, best.step)
        }
        return s + "</svg>\n"
    }

    /// Round tick values (1, 2 or 5 × 10ⁿ apart) covering [lo, hi], about `count` of them.
    public static func niceTicks(_ lo: Double, _ hi: Double, count: Int) -> [Double] {
        let span = Swift.max(hi - lo, 1e-9)
        let raw = span / Double(Swift.max(count - 1, 1))
        let mag = pow(10, (Foundation.log10(raw)).rounded(.down))
        let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        let first = (lo / step).rounded(.down) * step, last = (hi / step).rounded(.up) * step
        let n = Int(((last - first) / step).rounded())
        return (0...Swift.max(n, 1)).map { first + Double($0) * step }
    }

    /// Ticks at 1, 2 and 5 × 10ⁿ from the one at or below `lo` to the one at or above `hi`.
    public static func logTicks(_ lo: Double, _ hi: Double) -> [Double] {
        var ticks: [Double] = []
        var e = Foundation.log10(lo).rounded(.down)
        while ticks.last.map({ $0 < hi }) ?? true {
            for m in [1.0, 2, 5] {
                let t = m * pow(10, e)
                if t * 2.5 < lo && m != 5 && t * 5 <= lo { continue }
                if ticks.last.map({ $0 >= hi }) ?? false { break }
                ticks.append(t)
            }
            e += 1
        }
        // Keep one tick at or below lo.
        while ticks.count > 1 && ticks[1] <= lo { ticks.removeFirst() }
        return ticks
    }

    /// A tick label: no trailing zeros, no float noise.
    public static func label(_ v: Double) -> String {
        if v == v.rounded() && abs(v) < 1e7 { return String(Int(v)) }
        var s = String(format: "%.4f", v)
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
        return s
    }
}
