import Foundation

/// How `GEMM.sgemm` chooses among its paths and sizes its blocks: one immutable value of
/// rules measured on the development machines (figures in docs/benchmarks-log.md).
/// `GEMMTuning.current` is what every product uses; tests build other values to reach each
/// path and split (`GEMM.sgemm(…, tuning:)`). Nothing here changes while Emerald runs.
public struct GEMMTuning: Sendable, Equatable {
    /// Register tiles.
    public enum Kernel: String, Sendable, CaseIterable {
        /// 8×32 tile, SIMD16<Float> accumulators (AVX-512).
        case avx512x8x32 = "avx512"
        /// 6×16 tile, SIMD8<Float> accumulators (AVX2 + FMA).
        case avx2x6x16 = "avx2"
    }

    /// True when the CPU reports AVX-512F (Linux `/proc/cpuinfo`).
    public static let cpuHasAVX512: Bool = {
        #if os(Linux)
        if let s = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
           let flags = s.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) {
            return flags.split(separator: " ").contains("avx512f")
        }
        return false
        #else
        return false
        #endif
    }()

    /// The rules every product uses: the micro-kernel from the CPU, the measured thresholds.
    public static let current = GEMMTuning()

    /// The micro-kernel.
    public var kernel: Kernel = GEMMTuning.cpuHasAVX512 ? .avx512x8x32 : .avx2x6x16
    /// Products with m·n·k below this go to the direct (unpacked) path.
    public var smallThreshold = 32 * 1024
    /// Minimum flops (2·m·n·k) per thread before a GEMM is split across threads.
    public var minFlopsPerThread = 1 << 21
    /// Read non-transposed A in place instead of packing it when n fits one column block
    /// (`bench gemm`, pack-a: +6–10% at n = 128, −5–10% at n ≥ 384 packed).
    public var unpackedA = true
    /// Packed A per thread (floats): a row block's whole depth, or one depth slice of many rows.
    public var aMaxFloats = 2 << 20
    /// A threaded call is cut into at most this many tasks per thread (taken dynamically, so
    /// a slowed core takes fewer; the last task's tail is the imbalance)…
    public var maxTasksPerThread = 4
    /// …of at least this many MR- or NR-wide panels each.
    public var minPanelsPerTask = 4
    /// Largest B (floats, packed) that a row-split call packs once for all its threads.
    public var sharedBMaxFloats = 4 << 20
    /// Products of at most this many multiply-adds (a quarter of it with Bᵀ, which is copied)
    /// on one thread skip packing (see `GEMMDriver.unpacked`); 0 turns that path off.
    /// Unpacked vs packed: 1.1–1.5× up to 64×128×64, 0.7–0.95× from 128³.
    public var unpackedMaxWork = 1 << 19
    /// Products of at most this many rows with ≥ 64k weights are split by column chunks
    /// across all threads (see `GEMMDriver.skinnyChunks`); 0 turns that off (then the flop
    /// count decides the threads, and the columns are cut in one half per thread).
    public var skinnyRows = 4
    /// x·Wᵀ products of more rows than that, up to this many, with a weight-sized W, take dot
    /// products of rows in place instead of packing W (see `GEMMDriver.fewRows`); 0 turns
    /// that off. Against packed W at GPT-2's shapes: 1.1–2.1× for 8–32 rows, 1.06–1.10× at
    /// 48, 0.95–1.03× at 64, 0.93–0.99× at 96.
    public var fewRowsMax = 48
    /// Depth block KC: a micro-panel of A (MR×512 floats) stays in L1.
    public var kc = 512
    /// Column block NC: a KC×NC block of B in L2 (AVX2: 512×128×4 = 256 KiB; AVX-512:
    /// 512×256×4 = 512 KiB). Measured best of KC 256–768 × NC 96–384 on the AVX2 machine.
    public var nc: Int { kernel == .avx2x6x16 ? 128 : 256 }

    /// The current rules.
    public init() {}
}
