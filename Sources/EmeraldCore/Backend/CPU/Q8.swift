import CEmeraldSIMD

/// An 8-bit copy of a weight for generating (see `DecodeWeights`), llama.cpp's q8_0 layout:
/// each run of 32 weights along a row is one 36-byte block, an fp32 scale d = max|w| / 127
/// followed by 32 signed bytes q, with w ≈ d·q (round to nearest). 1.125 bytes per weight;
/// a scale sits next to its weights, so a row is one memory stream.
public final class Q8Matrix: DecodeWeights {
    /// Weights per block.
    public static let block = 32
    /// Bytes per block: the scale, then the weights.
    public static let blockBytes = 4 + block
    /// Rows (output features) and columns (input features) of the (rows, cols) weight.
    public let rows: Int, cols: Int
    /// Blocks per row (the last one zero-padded past `cols`).
    public let blocksPerRow: Int
    /// Row-major blocks.
    public let blocks: UnsafeMutableRawPointer

    /// A quantized copy of a 2-D fp32 tensor.
    public init(_ weight: Tensor) {
        precondition(weight.rank == 2, "Q8Matrix takes a 2-D weight, got \(weight.shape)")
        rows = weight.shape[0]; cols = weight.shape[1]
        let bpr = (cols + Q8Matrix.block - 1) / Q8Matrix.block
        blocksPerRow = bpr
        blocks = .allocate(byteCount: Swift.max(rows * bpr * Q8Matrix.blockBytes, 4), alignment: 64)
        let src = weight.data, base = blocks, c = cols
        parallelFor(rows, grain: 64) { r in
            for row in r {
                for b in 0..<bpr {
                    let lo = b * Q8Matrix.block, blk = base + (row * bpr + b) * Q8Matrix.blockBytes
                    Q8Matrix.quantize(src + row * c + lo, count: Swift.min(Q8Matrix.block, c - lo),
                                      scales: blk.assumingMemoryBound(to: Float.self),
                                      bytes: (blk + 4).assumingMemoryBound(to: Int8.self))
                }
            }
        }
    }

    deinit { blocks.deallocate() }

    /// The scale of block `b` of `row`.
    public func scale(row: Int, block b: Int) -> Float {
        blocks.load(fromByteOffset: (row * blocksPerRow + b) * Q8Matrix.blockBytes, as: Float.self)
    }

    /// The stored byte for column `col` of `row` (`col` may run into the last block's padding).
    public func quant(row: Int, col: Int) -> Int8 {
        blocks.load(fromByteOffset: (row * blocksPerRow + col / Q8Matrix.block) * Q8Matrix.blockBytes + 4 + col % Q8Matrix.block,
                    as: Int8.self)
    }

    /// The weight a product reads in place of W[row, col].
    public func value(row: Int, col: Int) -> Float {
        scale(row: row, block: col / Q8Matrix.block) * Float(quant(row: row, col: col))
    }

    /// 36 bytes per 32 weights.
    public var byteCount: Int { rows * blocksPerRow * Q8Matrix.blockBytes }

    /// See `DecodeWeights.linear`.
    public func linear(_ x: UnsafePointer<Float>, rows m: Int, bias: UnsafePointer<Float>?, into out: UnsafeMutablePointer<Float>) {
        let k = cols, bpr = blocksPerRow, rowBytes = bpr * Q8Matrix.blockBytes, base = UnsafeRawPointer(blocks)
        // x's rows as q8_0 (scales, then bytes), on this thread: k·m values against the
        // k·n weights every product reads.
        let scratch = Scratch.buffer(Q8Matrix.activationSlot, count: m * bpr * (1 + Q8Matrix.block / 4))
        let xd = scratch, xq = UnsafeMutableRawPointer(scratch + m * bpr).assumingMemoryBound(to: Int8.self)
        for i in 0..<m { Q8Matrix.quantize(x + i * k, count: k, scales: xd + i * bpr, bytes: xq + i * bpr * Q8Matrix.block) }
        let xdc = UnsafePointer(xd), xqc = UnsafePointer(xq)
        decodeLinear(n: rows, k: k, rows: m, bias: bias, into: out,
                     dot4: { i, row, ld in
                         var s = SIMD4<Float>()
                         withUnsafeMutableBytes(of: &s) {
                             emerald_q8_dot4(xqc + i * bpr * Q8Matrix.block, xdc + i * bpr, base + row * rowBytes, ld * rowBytes,
                                             bpr, $0.baseAddress!.assumingMemoryBound(to: Float.self))
                         }
                         return s
                     },
                     dot: { i, row in
                         var s: Float = 0
                         for b in 0..<bpr {
                             var t: Int32 = 0
                             for p in 0..<Q8Matrix.block {
                                 t += Int32(xqc[(i * bpr + b) * Q8Matrix.block + p]) * Int32(self.quant(row: row, col: b * Q8Matrix.block + p))
                             }
                             s += self.scale(row: row, block: b) * xdc[i * bpr + b] * Float(t)
                         }
                         return s
                     })
    }

    /// Scratch slot of the quantized activations (`Scratch`).
    static let activationSlot = 6

    /// `count` floats as q8_0 blocks: one scale d = max|x| / 127 per 32 values in `scales`,
    /// 32 bytes round(x / d) per block in `bytes`, the last block zero-padded. Weights (one
    /// block at a time, into their 36-byte blocks) and activations are quantized alike.
    public static func quantize(_ x: UnsafePointer<Float>, count: Int, scales: UnsafeMutablePointer<Float>,
                                bytes: UnsafeMutablePointer<Int8>) {
        let blocks = (count + block - 1) / block
        for b in 0..<blocks {
            let lo = b * block, hi = Swift.min(count, lo + block)
            var amax: Float = 0, finite = true
            for p in lo..<hi {
                let v = abs(x[p])
                finite = finite && v.isFinite
                amax = Swift.max(amax, v)
            }
            // A NaN or infinity makes the block's products NaN, as they would be in fp32.
            let inv: Float = finite && amax > 0 ? 127 / amax : 0
            scales[b] = finite ? amax / 127 : .nan
            for p in 0..<block { bytes[lo + p] = lo + p < hi ? Int8((x[lo + p] * inv).rounded()) : 0 }
        }
    }
}
