import XCTest
import EmeraldCore
import CEmeraldSIMD

/// bfloat16 rounding, 8-bit quantization, and the one-token products generation reads
/// from those copies.
final class BF16Tests: XCTestCase {
    /// Round to nearest, ties to even, on known bit patterns (as torch's `.bfloat16()`).
    func testRounding() {
        XCTAssertEqual(BF16Matrix.round(1), 0x3F80)
        XCTAssertEqual(BF16Matrix.round(-2), 0xC000)
        XCTAssertEqual(BF16Matrix.round(Float(bitPattern: 0x3F80_8000)), 0x3F80, "tie: to the even 0x3F80")
        XCTAssertEqual(BF16Matrix.round(Float(bitPattern: 0x3F81_8000)), 0x3F82, "tie: to the even 0x3F82")
        XCTAssertEqual(BF16Matrix.round(Float(bitPattern: 0x3F80_8001)), 0x3F81, "above the tie rounds up")
        XCTAssertEqual(BF16Matrix.round(Float(bitPattern: 0x3F80_7FFF)), 0x3F80, "below the tie rounds down")
        XCTAssertEqual(BF16Matrix.round(.greatestFiniteMagnitude), 0x7F80, "overflows to +inf")
        XCTAssertEqual(BF16Matrix.round(.infinity), 0x7F80)
        XCTAssertTrue(BF16Matrix.widen(BF16Matrix.round(.nan)).isNaN)
        XCTAssertEqual(BF16Matrix.widen(0x4049), 3.140625)
        for x: Float in [0.1, -7.3e-5, 123_456, 1e-30] {
            XCTAssertEqual(BF16Matrix.widen(BF16Matrix.round(x)), x, accuracy: abs(x) / 256, "\(x)")
        }
    }

    /// The 16-wide rounding gives `round`'s bits for every kind of float, tail included.
    func testRoundingManyEqualsOneAtATime() {
        var rng = SystemRandomNumberGenerator()
        var xs: [Float] = [1, -2, .infinity, -.infinity, .nan, -.nan, .greatestFiniteMagnitude, -.leastNonzeroMagnitude,
                           .leastNormalMagnitude, Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000),
                           Float(bitPattern: 0x7F80_0001), Float(bitPattern: 0xFFC0_1234), Float(bitPattern: 0x7F7F_FFFF), 0, -0.0]
        for _ in 0..<2_000 { xs.append(Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &rng))) }
        for count in [xs.count, 15, 16, 17, 35] {
            var out = [UInt16](repeating: 0, count: count)
            BF16Matrix.round(xs, into: &out, count: count)
            for i in 0..<count where out[i] != BF16Matrix.round(xs[i]) {
                return XCTFail("\(count) floats: \(String(xs[i].bitPattern, radix: 16)) → \(String(out[i], radix: 16)), one at a time \(String(BF16Matrix.round(xs[i]), radix: 16))")
            }
        }
    }

    /// q8_0: every weight within half a step (max|w|/254 of its 32-weight block) of its value,
    /// an all-zero block stays zero, and a row's padding past `cols` reads as nothing.
    func testQ8Quantization() {
        let cols = 70  // two whole blocks and a partial one
        var values = (0..<(3 * cols)).map { Float(sin(Double($0) * 0.37)) * Float($0 % 7 + 1) }
        for p in 32..<64 { values[cols + p] = 0 }
        let w = Tensor(values, shape: [3, cols])
        let q = Q8Matrix(w)
        XCTAssertEqual(q.blocksPerRow, 3)
        XCTAssertEqual(q.byteCount, 3 * 16 * 36, "one panel of 16 rows")
        for row in 0..<3 {
            for b in 0..<3 {
                let range = (b * 32)..<min(cols, b * 32 + 32)
                let amax = range.map { abs(values[row * cols + $0]) }.max()!
                for p in range {
                    XCTAssertEqual(q.value(row: row, col: p), values[row * cols + p], accuracy: amax / 254 * 1.0001 + 1e-7,
                                   "row \(row) col \(p)")
                }
            }
            for p in cols..<96 { XCTAssertEqual(q.quant(row: row, col: p), 0, "padding") }
        }
        XCTAssertEqual(q.scale(row: 1, block: 1), 0, "an all-zero block")
    }

    /// Activations quantize as weights do (within half a step of their block's max|x|/127),
    /// with padding zeroed and a non-finite value making its block's scale NaN.
    func testActivationQuantization() {
        var x: [Float] = (0..<70).map { Float($0 % 13) - 6.5 + Float($0) / 100 }
        x[40] = 0  // block 1 keeps its other values
        var scales = [Float](repeating: 0, count: 3), bytes = [Int8](repeating: 99, count: 96)
        Q8Matrix.quantize(x, count: 70, scales: &scales, bytes: &bytes)
        for p in 0..<70 {
            let b = p / 32, amax = x[(b * 32)..<min(70, b * 32 + 32)].map(abs).max()!
            XCTAssertEqual(scales[b], amax / 127, accuracy: 1e-7)
            XCTAssertEqual(scales[b] * Float(bytes[p]), x[p], accuracy: amax / 254 * 1.0001, "x[\(p)]")
        }
        for p in 70..<96 { XCTAssertEqual(bytes[p], 0, "padding") }
        x[5] = .infinity
        Q8Matrix.quantize(x, count: 70, scales: &scales, bytes: &bytes)
        XCTAssertTrue(scales[0].isNaN)
        XCTAssertFalse(scales[1].isNaN)
    }

    /// The integer q8 products were compiled with the best path the CPU has (the build targets
    /// the CPU it runs on): AVX-512 VNNI, else AVX2. `scripts/q8-paths` checks that every path
    /// gives the same floats.
    func testQ8ProductsUseTheCPUsPath() throws {
        #if arch(x86_64) && os(Linux)
        let cpuinfo = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let flags = Set((cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") } ?? "").split(separator: " "))
        guard flags.contains("avx2") else { throw XCTSkip("no AVX2 on this CPU") }
        XCTAssertEqual(emerald_q8_path(), flags.isSuperset(of: ["avx512f", "avx512bw", "avx512_vnni"]) ? 2 : 1)
        #else
        throw XCTSkip("x86-64 Linux only")
        #endif
    }

    /// `linear` equals x·Wᵀ (+ bias) computed in fp64 on the weights the copy holds (bf16-rounded
    /// or q8-dequantized) and, for int8's integer products, on x as q8_0 too, and each row of x
    /// gets, to the bit, what it gets alone; for 1–4, 7, 8 and 15 rows (int8's groups of 8, 4, 2, 1),
    /// widths around the 128-row chunks and depths around the 16- and 32-wide inner loops, on 1
    /// and 2 threads. int8 with float activations is checked against fp32 x.
    func testLinearMatchesRoundedFP32() {
        var seed: UInt64 = 0x2545_F491_4F6C_DD1D
        func rand() -> Float {
            seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17
            return Float(Int(seed >> 40) - (1 << 23)) / Float(1 << 23)
        }
        let pool = ThreadPool.shared
        defer { ThreadPool.shared = pool }
        for threads in [1, 2] {
            GEMMBenchmark.usePool(threads: threads)
            for (n, k) in [(1, 1), (5, 7), (127, 16), (128, 17), (129, 33), (300, 64), (1000, 96), (700, 100), (256, 32)] {
                for m in [1, 2, 3, 4, 7, 8, 15] {
                    let w = Tensor((0..<(n * k)).map { _ in rand() }, shape: [n, k])
                    let x = (0..<(m * k)).map { _ in rand() }, bias = (0..<n).map { _ in rand() }
                    let q8 = Q8Matrix(w)
                    // x as the integer products see it: each row quantized to q8_0.
                    let bpr = (k + 31) / 32
                    var xq = [Float](repeating: 0, count: m * k)
                    for i in 0..<m {
                        var scales = [Float](repeating: 0, count: bpr), bytes = [Int8](repeating: 0, count: bpr * 32)
                        Q8Matrix.quantize(Array(x[(i * k)..<(i * k + k)]), count: k, scales: &scales, bytes: &bytes)
                        for p in 0..<k { xq[i * k + p] = scales[p / 32] * Float(bytes[p]) }
                    }
                    let copies: [(String, any DecodeWeights, [Float], (Int, Int) -> Float)] = [
                        ("bf16", BF16Matrix(w), x, { j, p in BF16Matrix.widen(BF16Matrix.round(w.data[j * k + p])) }),
                        ("int8", q8, xq, { j, p in q8.value(row: j, col: p) }),
                    ]
                    for (name, copy, xSeen, weight) in copies {
                        func product(_ x: ArraySlice<Float>) -> [Float] {
                            let rows = x.count / k
                            var got = [Float](repeating: .nan, count: rows * n)
                            x.withUnsafeBufferPointer { xp in
                                bias.withUnsafeBufferPointer { bp in
                                    got.withUnsafeMutableBufferPointer { copy.linear(xp.baseAddress!, rows: rows, bias: m % 2 == 0 ? bp.baseAddress : nil, into: $0.baseAddress!) }
                                }
                            }
                            return got
                        }
                        let got = product(x[...])
                        for i in [0, m - 1] where m > 1 {
                            XCTAssertEqual(Array(got[(i * n)..<(i * n + n)]), product(x[(i * k)..<(i * k + k)]),
                                           "\(name) row \(i) of \(m) = that row alone, n \(n) k \(k) threads \(threads)")
                        }
                        for i in 0..<m {
                            for j in 0..<n {
                                var want: Double = m % 2 == 0 ? Double(bias[j]) : 0
                                for p in 0..<k { want += Double(xSeen[i * k + p]) * Double(weight(j, p)) }
                                XCTAssertEqual(Double(got[i * n + j]), want, accuracy: 1e-5 * Double(k).squareRoot() + 1e-6,
                                               "\(name) m \(m) n \(n) k \(k) threads \(threads) at (\(i), \(j))")
                            }
                        }
                    }
                }
            }
        }
    }
}
