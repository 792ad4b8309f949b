#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The CPU's elementwise, shape, reduction, indexing, normalisation and softmax kernels.
extension CPUBackend {
    public func fill(_ x: UnsafeMutablePointer<Float>, count: Int, value: Float) { x.update(repeating: value, count: count) }

    public func copyRows(_ src: UnsafePointer<Float>, srcStride: Int, to dst: UnsafeMutablePointer<Float>, dstStride: Int,
                         rows: Int, cols: Int, accumulate: Bool) {
        for r in 0..<rows {
            if accumulate { Kernels.axpy(1, src + r * srcStride, dst + r * dstStride, cols) }
            else { (dst + r * dstStride).update(from: src + r * srcStride, count: cols) }
        }
    }

    // MARK: Elementwise

    public func unary(_ op: UnaryOp, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count n: Int) {
        switch op {
        case .exp: Kernels.unaryForward(ExpKernel.self, x, y, n)
        case .log: Kernels.unaryForward(LogKernel.self, x, y, n)
        case .sqrt: Kernels.unaryForward(SqrtKernel.self, x, y, n)
        case .square: Kernels.unaryForward(SquareKernel.self, x, y, n)
        case .tanh: Kernels.unaryForward(TanhKernel.self, x, y, n)
        case .sigmoid: Kernels.unaryForward(SigmoidKernel.self, x, y, n)
        case .relu: Kernels.unaryForward(ReLUKernel.self, x, y, n)
        case .silu: Kernels.unaryForward(SiLUKernel.self, x, y, n)
        case .gelu: Kernels.geluForward(x, y, n)
        }
    }

    public func unaryBackward(_ op: UnaryOp, x: UnsafePointer<Float>, y: UnsafePointer<Float>, g: UnsafePointer<Float>,
                              into dx: UnsafeMutablePointer<Float>, count n: Int) {
        switch op {
        case .exp: Kernels.unaryBackward(ExpKernel.self, x, y, g, dx, n)
        case .log: Kernels.unaryBackward(LogKernel.self, x, y, g, dx, n)
        case .sqrt: Kernels.unaryBackward(SqrtKernel.self, x, y, g, dx, n)
        case .square: Kernels.unaryBackward(SquareKernel.self, x, y, g, dx, n)
        case .tanh: Kernels.unaryBackward(TanhKernel.self, x, y, g, dx, n)
        case .sigmoid: Kernels.unaryBackward(SigmoidKernel.self, x, y, g, dx, n)
        case .relu: Kernels.unaryBackward(ReLUKernel.self, x, y, g, dx, n)
        case .silu: Kernels.unaryBackward(SiLUKernel.self, x, y, g, dx, n)
        case .gelu: Kernels.geluBackward(x, g, dx, n)
        }
    }

    public func binary(_ op: BinaryOp, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into c: UnsafeMutablePointer<Float>,
                       count n: Int) {
        switch op {
        case .add: Kernels.add(a, b, into: c, count: n)
        case .subtract: Kernels.zip(a, b, c, n) { $0 - $1 }
        case .multiply: Kernels.zip(a, b, c, n) { $0 * $1 }
        case .divide: Kernels.zip(a, b, c, n) { $0 / $1 }
        }
    }

    public func binaryBackward(_ op: BinaryOp, side: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, g: UnsafePointer<Float>,
                               into d: UnsafeMutablePointer<Float>, count n: Int) {
        switch (op, side) {
        case (.add, _), (.subtract, 0): Kernels.zip3(a, b, g, d, n) { _, _, g in g }
        case (.subtract, _): Kernels.zip3(a, b, g, d, n) { _, _, g in -g }
        case (.multiply, 0): Kernels.zip3(a, b, g, d, n) { _, b, g in g * b }
        case (.multiply, _): Kernels.zip3(a, b, g, d, n) { a, _, g in g * a }
        case (.divide, 0): Kernels.zip3(a, b, g, d, n) { _, b, g in g / b }
        case (.divide, _): Kernels.zip3(a, b, g, d, n) { a, b, g in -g * a / (b * b) }
        }
    }

    public func addRows(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into c: UnsafeMutablePointer<Float>, rows: Int, count m: Int) {
        for r in 0..<rows { Kernels.add(a + r * m, b, into: c + r * m, count: m) }
    }

    public func scale(_ x: UnsafePointer<Float>, by s: Float, into y: UnsafeMutablePointer<Float>, count: Int) {
        Kernels.map(x, y, count) { $0 * s }
    }

    public func shift(_ x: UnsafePointer<Float>, by s: Float, into y: UnsafeMutablePointer<Float>, count: Int) {
        Kernels.map(x, y, count) { $0 + s }
    }

    public func broadcast(_ x: UnsafePointer<Float>, from shape: [Int], into y: UnsafeMutablePointer<Float>, to outShape: [Int]) {
        let count = shape.reduce(1, *), total = outShape.reduce(1, *)
        if count == 1 {
            y.update(repeating: x[0], count: total)
        } else if Array(outShape.suffix(shape.count)) == shape {
            for r in 0..<(total / count) { (y + r * count).update(from: x, count: count) }
        } else {
            forEachBroadcast(outShape, broadcastStrides(shape, in: outShape)) { o, s in y[o] = x[s] }
        }
    }

    public func reduceBroadcast(_ x: UnsafePointer<Float>, from shape: [Int], into y: UnsafeMutablePointer<Float>, to target: [Int]) {
        let tCount = target.reduce(1, *), count = shape.reduce(1, *)
        y.update(repeating: 0, count: tCount)
        if Array(shape.suffix(target.count)) == target {
            for r in 0..<(count / Swift.max(tCount, 1)) { Kernels.axpy(1, x + r * tCount, y, tCount) }
        } else {
            forEachBroadcast(shape, broadcastStrides(target, in: shape)) { o, t in y[t] += x[o] }
        }
    }

    public func permute(_ x: UnsafePointer<Float>, shape: [Int], perm: [Int], into y: UnsafeMutablePointer<Float>) {
        var inStrides = [Int](repeating: 1, count: shape.count)
        for i in stride(from: shape.count - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * shape[i + 1] }
        forEachBroadcast(perm.map { shape[$0] }, perm.map { inStrides[$0] }) { o, s in y[o] = x[s] }
    }

    public func maskedFill(_ x: UnsafePointer<Float>, mask: UnsafePointer<Float>, period m: Int, value: Float,
                           into y: UnsafeMutablePointer<Float>, count: Int) {
        y.update(from: x, count: count)
        for r in 0..<(count / Swift.max(m, 1)) {
            for i in 0..<m where mask[i] != 0 { y[r * m + i] = value }
        }
    }

    public func dropout(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int, p: Float, seed: UInt32, offset: Int) {
        Kernels.dropout(x, y, count, p: p, seed: seed, offset: offset)
    }

    public func rotary(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, rows: Int, time: Int, heads: Int, half: Int,
                       cos: [Float], sin: [Float], sign: Float) {
        Kernels.rotate(x, into: y, rows: rows, time: time, heads: heads, half: half, cos: cos, sin: sin, sign: sign)
    }

    // MARK: Reductions

    public func sum(_ x: UnsafePointer<Float>, count: Int) -> Float { Kernels.sum(x, count) }

    public func sumAxis(_ x: UnsafePointer<Float>, outer: Int, n: Int, inner: Int, into y: UnsafeMutablePointer<Float>) {
        y.update(repeating: 0, count: outer * inner)
        for o in 0..<outer {
            for i in 0..<n { Kernels.axpy(1, x + (o * n + i) * inner, y + o * inner, inner) }
        }
    }

    public func sumRows(_ x: UnsafePointer<Float>, rows: Int, cols: Int, into y: UnsafeMutablePointer<Float>, beta: Float) {
        Kernels.sumRows(x, rows: rows, cols: cols, into: y, beta: beta)
    }

    public func maxAxis(_ x: UnsafePointer<Float>, outer: Int, n: Int, inner: Int, into y: UnsafeMutablePointer<Float>) -> [Int] {
        var arg = [Int](repeating: 0, count: outer * inner)
        for o in 0..<outer {
            for j in 0..<inner {
                var best = x[o * n * inner + j], bi = 0
                for i in 1..<n where x[(o * n + i) * inner + j] > best { best = x[(o * n + i) * inner + j]; bi = i }
                y[o * inner + j] = best
                arg[o * inner + j] = bi
            }
        }
        return arg
    }

    public func maxAxisBackward(_ g: UnsafePointer<Float>, arg: [Int], outer: Int, n: Int, inner: Int,
                                into dx: UnsafeMutablePointer<Float>) {
        for o in 0..<outer { for j in 0..<inner { dx[(o * n + arg[o * inner + j]) * inner + j] += g[o * inner + j] } }
    }

    public func argmax(_ x: UnsafePointer<Float>, rows: Int, columns n: Int) -> [Int] {
        (0..<rows).map { r in
            let row = x + r * n
            var bi = 0
            for i in 1..<n where row[i] > row[bi] { bi = i }
            return bi
        }
    }

    // MARK: Indexing

    public func gatherRows(_ table: UnsafePointer<Float>, columns cols: Int, ids: [Int32], into out: UnsafeMutablePointer<Float>) {
        for (i, id) in ids.enumerated() { (out + i * cols).update(from: table + Int(id) * cols, count: cols) }
    }

    public func scatterAddRows(_ g: UnsafePointer<Float>, columns cols: Int, ids: [Int32], into table: UnsafeMutablePointer<Float>) {
        for (i, id) in ids.enumerated() { Kernels.axpy(1, g + i * cols, table + Int(id) * cols, cols) }
    }

    public func gatherColumns(_ x: UnsafePointer<Float>, n: Int, index: [Int32], into out: UnsafeMutablePointer<Float>) {
        for (r, i) in index.enumerated() { out[r] = x[r * n + Int(i)] }
    }

    public func scatterAddColumns(_ g: UnsafePointer<Float>, n: Int, index: [Int32], into dx: UnsafeMutablePointer<Float>) {
        for (r, i) in index.enumerated() { dx[r * n + Int(i)] += g[r] }
    }

    // MARK: Normalisation and softmax

    public func layerNormForward(_ x: UnsafePointer<Float>, weight w: UnsafePointer<Float>, bias b: UnsafePointer<Float>?,
                                 into yd: UnsafeMutablePointer<Float>, stats st: UnsafeMutablePointer<Float>, rows: Int, c: Int,
                                 eps: Float) {
        parallelFor(rows, grain: Swift.max(1, 16384 / c)) { r in
            for row in r {
                let xr = x + row * c, yr = yd + row * c
                let mean = Kernels.sum(xr, c) / Float(c)
                var acc = F16(repeating: 0)
                var i = 0
                while i + 16 <= c { let d = load16(xr + i) - mean; acc += d * d; i += 16 }
                var v = acc.sum()
                while i < c { let d = xr[i] - mean; v += d * d; i += 1 }
                let rstd = 1 / (v / Float(c) + eps).squareRoot()
                st[2 * row] = mean; st[2 * row + 1] = rstd
                i = 0
                while i + 16 <= c {
                    var o = (load16(xr + i) - mean) * rstd * load16(w + i)
                    if let b { o += load16(b + i) }
                    store16(o, yr + i); i += 16
                }
                while i < c { yr[i] = (xr[i] - mean) * rstd * w[i] + (b?[i] ?? 0); i += 1 }
            }
        }
    }

    public func layerNormBackward(_ x: UnsafePointer<Float>, g gd: UnsafePointer<Float>, weight w: UnsafePointer<Float>,
                                  stats st: UnsafePointer<Float>, dx dxd: UnsafeMutablePointer<Float>?,
                                  dw: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>, rows: Int, c: Int) {
        // Rows split across threads; each sums its rows' dw, db into its own partial
        // (2·c floats), merged after: one pass over x and g.
        let parts = Swift.max(1, Swift.min(ThreadPool.shared.availableThreads, rows * c / 16384))
        let partial = Tensor(uninitialized: [parts, 2 * c])
        let pd = partial.data
        parallelFor(parts) { r in
            for part in r {
                let dwp = pd + part * 2 * c, dbp = dwp + c
                dwp.initialize(repeating: 0, count: 2 * c)
                for row in (rows * part / parts)..<(rows * (part + 1) / parts) {
                    Kernels.layerNormBackwardRow(x + row * c, gd + row * c, w, c, mean: st[2 * row],
                                                 rstd: st[2 * row + 1], dx: dxd.map { $0 + row * c },
                                                 dw: dwp, db: dbp)
                }
            }
        }
        dw.update(from: pd, count: c)
        db.update(from: pd + c, count: c)
        for part in 1..<parts {
            Kernels.axpy(1, pd + part * 2 * c, dw, c)
            Kernels.axpy(1, pd + part * 2 * c + c, db, c)
        }
    }

    public func softmax(_ x: UnsafePointer<Float>, into yd: UnsafeMutablePointer<Float>, rows: Int, n: Int) {
        parallelFor(rows, grain: Swift.max(1, 8192 / Swift.max(n, 1))) { r in
            for row in r { SoftmaxKernel.forward(x + row * n, yd + row * n, n) }
        }
    }

    public func softmaxBackward(y: UnsafePointer<Float>, g: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>, rows: Int, n: Int) {
        for row in 0..<rows {
            let yr = y + row * n, gr = g + row * n, d = dx + row * n
            let s = Kernels.dot(yr, gr, n)
            for i in 0..<n { d[i] = yr[i] * (gr[i] - s) }
        }
    }

    public func logSoftmax(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, rows: Int, n: Int) {
        for row in 0..<rows {
            let xr = x + row * n, yr = y + row * n
            let lse = SoftmaxKernel.logSumExp(xr, n)
            for i in 0..<n { yr[i] = xr[i] - lse }
        }
    }

    public func logSoftmaxBackward(y: UnsafePointer<Float>, g: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>, rows: Int, n: Int) {
        for row in 0..<rows {
            let yr = y + row * n, gr = g + row * n, d = dx + row * n
            let s = Kernels.sum(gr, n)
            for i in 0..<n { d[i] = gr[i] - _expf(yr[i]) * s }
        }
    }

    public func crossEntropyBackward(_ p: UnsafeMutablePointer<Float>, rows: Int, columns v: Int, targets: [Int32], scale: Float) {
        for (row, t) in targets.enumerated() { p[row * v + Int(t)] -= 1 }
        Kernels.map(p, p, rows * v) { $0 * scale }
    }

    public func rowLosses(_ x: UnsafePointer<Float>, rows: Int, columns v: Int, targets: [Int32?]) -> [Float] {
        (0..<rows).map { r in
            guard let t = targets[r] else { return .nan }
            let row = x + r * v
            return SoftmaxKernel.logSumExp(row, v) - row[Int(t)]
        }
    }

    public func allFinite(_ x: UnsafePointer<Float>, count: Int) -> Bool { Sampling.allFinite(x, count) }
}
