import CEmeraldSIMD

/// An 8-bit copy of a weight for generating (see `DecodeWeights`), llama.cpp's q8_0 numbers:
/// each run of 32 weights along a row has an fp32 scale d = max|w| / 127 and 32 signed bytes q,
/// w ≈ d·q (round to nearest), 1.125 bytes per weight. Stored in panels of 16 rows (the last
/// one zero-padded) so that a product reads one weight register for several rows of x: each
/// panel block is 16 scales, then the 16 rows' bytes q + 128, 4 columns at a time (CEmeraldQ8.h).
public final class Q8Matrix: DecodeWeights {
    /// Weights per block.
    public static let block = 32
    /// Weight rows per panel.
    public static let panelRows = 16
    /// Bytes of one panel block: 16 scales, then 16 × 32 bytes.
    public static let panelBlockBytes = panelRows * (4 + block)
    /// Rows (output features) and columns (input features) of the (rows, cols) weight.
    public let rows: Int, cols: Int
    /// Blocks per row (the last one zero-padded past `cols`).
    public let blocksPerRow: Int
    /// Panels of 16 rows.
    public let panels: Int
    /// The panels, one after another.
    public let blocks: UnsafeMutableRawPointer

    /// A quantized copy of a 2-D fp32 tensor.
    public init(_ weight: Tensor) {
        precondition(weight.rank == 2, "Q8Matrix takes a 2-D weight, got \(weight.shape)")
        rows = weight.shape[0]; cols = weight.shape[1]
        let bpr = (cols + Q8Matrix.block - 1) / Q8Matrix.block, panelCount = (rows + Q8Matrix.panelRows - 1) / Q8Matrix.panelRows
        blocksPerRow = bpr; panels = panelCount
        let bytes = Swift.max(panelCount * bpr * Q8Matrix.panelBlockBytes, 4)
        blocks = .allocate(byteCount: bytes, alignment: 64)
        blocks.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        let src = weight.data, base = blocks, c = cols, n = rows
        parallelFor(panelCount, grain: 4) { range in
            var scale: Float = 0
            let q = UnsafeMutablePointer<Int8>.allocate(capacity: Q8Matrix.block)
            defer { q.deallocate() }
            for p in range {
                for r in 0..<Swift.min(Q8Matrix.panelRows, n - p * Q8Matrix.panelRows) {
                    let row = p * Q8Matrix.panelRows + r
                    for b in 0..<bpr {
                        let lo = b * Q8Matrix.block, blk = base + (p * bpr + b) * Q8Matrix.panelBlockBytes
                        Q8Matrix.quantize(src + row * c + lo, count: Swift.min(Q8Matrix.block, c - lo), scales: &scale, bytes: q)
                        blk.storeBytes(of: scale, toByteOffset: 4 * r, as: Float.self)
                        for t in 0..<Q8Matrix.block {
                            blk.storeBytes(of: UInt8(bitPattern: q[t]) ^ 0x80, toByteOffset: Q8Matrix.offset(row: r, column: t), as: UInt8.self)
                        }
                    }
                }
            }
        }
    }

    deinit { blocks.deallocate() }

    /// Where column `t` (< 32) of panel row `r` sits in a panel block.
    @inline(__always)
    static func offset(row r: Int, column t: Int) -> Int { 4 * panelRows + 4 * panelRows * (t / 4) + 4 * r + t % 4 }

    /// The panel block holding block `b` of `row`.
    private func panelBlock(row: Int, block b: Int) -> UnsafeMutableRawPointer {
        blocks + (row / Q8Matrix.panelRows * blocksPerRow + b) * Q8Matrix.panelBlockBytes
    }

    /// The scale of block `b` of `row`.
    public func scale(row: Int, block b: Int) -> Float {
        panelBlock(row: row, block: b).load(fromByteOffset: 4 * (row % Q8Matrix.panelRows), as: Float.self)
    }

    /// The stored byte for column `col` of `row` (`col` may run into the last block's padding).
    public func quant(row: Int, col: Int) -> Int8 {
        let stored = panelBlock(row: row, block: col / Q8Matrix.block)
            .load(fromByteOffset: Q8Matrix.offset(row: row % Q8Matrix.panelRows, column: col % Q8Matrix.block), as: UInt8.self)
        return Int8(bitPattern: stored ^ 0x80)
    }

    /// The weight a product reads in place of W[row, col].
    public func value(row: Int, col: Int) -> Float {
        scale(row: row, block: col / Q8Matrix.block) * Float(quant(row: row, col: col))
    }

    /// 36 bytes per 32 weights, rows padded to whole panels.
    public var byteCount: Int { panels * blocksPerRow * Q8Matrix.panelBlockBytes }

    /// See `DecodeWeights.linear`. Each 128-row chunk of the output (8 panels) on one thread,
    /// every row of x against a panel before the next (the panel stays in cache).
    public func linear(_ x: UnsafePointer<Float>, rows m: Int, bias: UnsafePointer<Float>?, into out: UnsafeMutablePointer<Float>) {
        let k = cols, n = rows, bpr = blocksPerRow, base = UnsafeRawPointer(blocks)
        let panelBytes = bpr * Q8Matrix.panelBlockBytes, ldx = bpr * Q8Matrix.block
        // x's rows as q8_0 (scales, sums, then bytes), on this thread: k·m values against the
        // k·n weights every product reads.
        let scratch = Scratch.buffer(Q8Matrix.activationSlot, count: m * bpr * (2 + Q8Matrix.block / 4))
        let xd = scratch, xs = UnsafeMutableRawPointer(scratch + m * bpr).assumingMemoryBound(to: Int32.self)
        let xq = UnsafeMutableRawPointer(scratch + 2 * m * bpr).assumingMemoryBound(to: Int8.self)
        for i in 0..<m { emerald_q8_quantize(x + i * k, k, xd + i * bpr, xq + i * ldx, xs + i * bpr) }
        let xdc = UnsafePointer(xd), xsc = UnsafePointer(xs), xqc = UnsafePointer(xq)
        GEMMDriver.forEachColumnChunk(n: n, k: k, threads: ThreadPool.shared.availableThreads) { chunk in
            let r0 = chunk.lowerBound, count = (chunk.count + Q8Matrix.panelRows - 1) / Q8Matrix.panelRows
            emerald_q8_panels(xqc, ldx, xdc, xsc, bpr, m, base + r0 / Q8Matrix.panelRows * panelBytes, count, bpr,
                              bias.map { $0 + r0 }, chunk.count, out + r0, n)
        }
    }

    /// Scratch slot of the quantized activations (`Scratch`).
    static let activationSlot = 6

    /// `count` floats as q8_0 blocks: one scale d = max|x| / 127 per 32 values in `scales`,
    /// 32 bytes round(x / d) per block in `bytes`, the last block zero-padded; a NaN or an
    /// infinity makes its block's scale NaN. Weights and activations are quantized alike
    /// (`emerald_q8_quantize`).
    public static func quantize(_ x: UnsafePointer<Float>, count: Int, scales: UnsafeMutablePointer<Float>,
                                bytes: UnsafeMutablePointer<Int8>) {
        emerald_q8_quantize(x, count, scales, bytes, nil)
    }
}
