/// xoshiro256** generator: fast, seedable, and its state can be saved in a checkpoint.
public struct RandomGenerator: RandomNumberGenerator, Sendable, Codable, Equatable {
    /// The four state words.
    public var state: [UInt64]

    /// Seeds via SplitMix64 so nearby seeds give unrelated streams.
    public init(seed: UInt64) {
        var z = seed
        var s = [UInt64](repeating: 0, count: 4)
        for i in 0..<4 {
            z &+= 0x9E37_79B9_7F4A_7C15
            var x = z
            x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
            x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
            s[i] = x ^ (x >> 31)
        }
        state = s
    }

    /// Next 64 random bits.
    public mutating func next() -> UInt64 {
        var s = (state[0], state[1], state[2], state[3])
        let result = Self.step(&s)
        state[0] = s.0; state[1] = s.1; state[2] = s.2; state[3] = s.3
        return result
    }

    /// One xoshiro256** step on state words held in registers.
    @inline(__always) private static func step(_ s: inout (UInt64, UInt64, UInt64, UInt64)) -> UInt64 {
        let result = rotl(s.1 &* 5, 7) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = rotl(s.3, 45)
        return result
    }

    @inline(__always) private static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// `nextDouble()`'s conversion of one step's output.
    @inline(__always) private static func unitDouble(_ x: UInt64) -> Double { Double(x >> 11) * (1.0 / 9_007_199_254_740_992.0) }

    /// Uniform in [0, 1) with 24 bits of precision.
    public mutating func nextFloat() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// Uniform in [0, 1) with 53 bits of precision.
    public mutating func nextDouble() -> Double { Self.unitDouble(next()) }

    /// Standard normal sample (Box–Muller).
    public mutating func nextNormal() -> Float {
        let u1 = nextDouble(), u2 = nextDouble()
        return Self.boxMuller(u1, u2)
    }

    /// The normal sample of two uniforms (Box–Muller's cosine half).
    @inline(__always) private static func boxMuller(_ u1: Double, _ u2: Double) -> Float {
        Float((-2 * _log(max(u1, 1e-300))).squareRoot() * _cos(2 * Double.pi * u2))
    }

    /// `count` samples `mean + std·nextNormal()` into `out`: the same values, and the same
    /// state afterwards, as calling `nextNormal()` `count` times. The uniforms are drawn in
    /// order on this thread; the logarithms and cosines, nearly all of the time (6 s of
    /// GPT-2's initialisation), run on every thread, a chunk at a time.
    public mutating func fillNormals(_ out: UnsafeMutablePointer<Float>, count: Int, mean: Float = 0, std: Float = 1) {
        let chunk = 1 << 16
        let u = UnsafeMutablePointer<Double>.allocate(capacity: 2 * Swift.min(count, chunk))
        defer { u.deallocate() }
        var done = 0, s = (state[0], state[1], state[2], state[3])
        defer { state = [s.0, s.1, s.2, s.3] }
        while done < count {
            let n = Swift.min(chunk, count - done)
            for i in 0..<(2 * n) { u[i] = Self.unitDouble(Self.step(&s)) }
            let o = out + done
            parallelFor(n, grain: 4096) { range in
                for i in range { o[i] = mean + std * Self.boxMuller(u[2 * i], u[2 * i + 1]) }
            }
            done += n
        }
    }

    /// Uniform integer in `0..<n`.
    public mutating func nextInt(below n: Int) -> Int { Int(next() % UInt64(n)) }
}

#if canImport(Glibc)
import Glibc
@inline(__always) func _log(_ x: Double) -> Double { Glibc.log(x) }
@inline(__always) func _cos(_ x: Double) -> Double { Glibc.cos(x) }
#else
import Darwin
@inline(__always) func _log(_ x: Double) -> Double { Darwin.log(x) }
@inline(__always) func _cos(_ x: Double) -> Double { Darwin.cos(x) }
#endif
