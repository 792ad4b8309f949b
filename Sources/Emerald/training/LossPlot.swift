import Foundation

/// Renders train/val loss per evaluation as a small self-contained SVG.
public enum LossPlot {
    /// The SVG document for `records`.
    public static func svg(_ records: [EvalRecord], width: Double = 640, height: Double = 400) -> String {
        let left = 60.0, right = 20.0, top = 30.0, bottom = 45.0
        let pw = width - left - right, ph = height - top - bottom
        let steps = records.map { Double($0.step) }
        let losses = records.flatMap { [Double($0.train_loss), Double($0.val_loss)] }.filter(\.isFinite)
        let x0 = steps.min() ?? 0, x1 = Swift.max(steps.max() ?? 1, x0 + 1)
        var y0 = losses.min() ?? 0, y1 = losses.max() ?? 1
        if y1 - y0 < 1e-6 { y0 -= 0.5; y1 += 0.5 }
        let pad = (y1 - y0) * 0.05
        y0 -= pad; y1 += pad
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * pw }
        func py(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * ph }
        func path(_ ys: [Double]) -> String {
            zip(steps, ys).filter { $0.1.isFinite }.map { String(format: "%.1f,%.1f", px($0.0), py($0.1)) }.joined(separator: " ")
        }
        var s = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(left)" y="18" font-size="14">Loss per evaluation</text>
        <rect x="\(left)" y="\(top)" width="\(pw)" height="\(ph)" fill="none" stroke="#888"/>

        """
        for i in 0...4 {
            let y = y0 + (y1 - y0) * Double(i) / 4
            s += String(format: "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>", left, left + pw, py(y), py(y))
            s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.3f</text>\n", left - 6, py(y) + 4, y)
            let x = x0 + (x1 - x0) * Double(i) / 4
            s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.0f</text>\n", px(x), top + ph + 16, x)
        }
        s += "<text x=\"\(left + pw / 2)\" y=\"\(height - 8)\" text-anchor=\"middle\">step</text>\n"
        s += "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"\(path(records.map { Double($0.train_loss) }))\"/>\n"
        s += "<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\" points=\"\(path(records.map { Double($0.val_loss) }))\"/>\n"
        let lx = left + pw - 110
        s += "<line x1=\"\(lx)\" x2=\"\(lx + 20)\" y1=\"\(top + 15)\" y2=\"\(top + 15)\" stroke=\"#1f77b4\" stroke-width=\"2\"/><text x=\"\(lx + 26)\" y=\"\(top + 19)\">train</text>\n"
        s += "<line x1=\"\(lx)\" x2=\"\(lx + 20)\" y1=\"\(top + 32)\" y2=\"\(top + 32)\" stroke=\"#d62728\" stroke-width=\"2\"/><text x=\"\(lx + 26)\" y=\"\(top + 36)\">val</text>\n"
        if let best = records.min(by: { $0.val_loss < $1.val_loss }) {
            s += String(format: "<text x=\"%.1f\" y=\"%.1f\">best val %.4f @ %d</text>\n", lx - 40, top + 52, best.val_loss, best.step)
        }
        return s + "</svg>\n"
    }
}
