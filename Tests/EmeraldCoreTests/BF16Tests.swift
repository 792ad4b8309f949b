import XCTest
import EmeraldCore

/// bfloat16 rounding and the bfloat16 one-token products generation reads.
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

    /// `linear` equals x·Wᵀ (+ bias) computed in fp32 on the rounded weights, for 1–4 rows,
    /// widths around the 128-row chunks and the 16-wide inner loop, on 1 and 2 threads.
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
            for (n, k) in [(1, 1), (5, 7), (127, 16), (128, 17), (129, 33), (300, 64), (1000, 96), (700, 100)] {
                for m in 1...4 {
                    let w = Tensor((0..<(n * k)).map { _ in rand() }, shape: [n, k])
                    let x = (0..<(m * k)).map { _ in rand() }, bias = (0..<n).map { _ in rand() }
                    let w16 = BF16Matrix(w)
                    var got = [Float](repeating: .nan, count: m * n)
                    x.withUnsafeBufferPointer { xp in
                        bias.withUnsafeBufferPointer { bp in
                            got.withUnsafeMutableBufferPointer { w16.linear(xp.baseAddress!, rows: m, bias: m % 2 == 0 ? bp.baseAddress : nil, into: $0.baseAddress!) }
                        }
                    }
                    for i in 0..<m {
                        for j in 0..<n {
                            var want: Double = m % 2 == 0 ? Double(bias[j]) : 0
                            for p in 0..<k { want += Double(x[i * k + p]) * Double(BF16Matrix.widen(BF16Matrix.round(w.data[j * k + p]))) }
                            XCTAssertEqual(Double(got[i * n + j]), want, accuracy: 1e-5 * Double(k).squareRoot() + 1e-6,
                                           "m \(m) n \(n) k \(k) threads \(threads) at (\(i), \(j))")
                        }
                    }
                }
            }
        }
    }
}
