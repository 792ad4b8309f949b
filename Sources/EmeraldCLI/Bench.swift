import ArgumentParser
import Emerald
import Foundation
import Synchronization

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks (not tests): kernels and training steps.",
        subcommands: [BenchGEMM.self, BenchTrain.self, BenchGenerate.self, BenchMemory.self])
}

struct BenchGEMM: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gemm", abstract: "GEMM GFLOP/s on GPT-2's training shapes, next to the FMA peak measured after every run.")
    @Option(help: "Thread counts to measure, comma-separated.") var threads: String = "1,2"
    @Option(help: "Timed repetitions per case (median reported).") var iterations: Int = 15
    @Option(help: "Shapes as \"M,N,K;M,N,K\" (default: five of GPT-2 124M's products at 256 tokens: attention and MLP projections, a 384-wide layer at 4096 tokens, the LM head).") var shapes: String?
    @Option(help: ArgumentHelp("Also time other path-choosing rules, alternating run by run: pack-a (pack A even when it can be read in place), private-b (each row task packs its own B), more-tasks (twice as many threaded tasks, half the size), no-direct (tiny products take the blocked path too), packed-small (small one-thread products are packed too), packed-few-rows (x·Wᵀ products of 5–48 rows pack W like larger ones) or static-skinny (products of a few rows get threads by their flops, in one fixed column range each).",
                               valueName: "rules")) var versus: String?
    @Flag(help: "One JSON object per line instead of a table.") var json = false

    func run() throws {
        try EmeraldCommand.guarded {
            let variant = try GEMMTuning.variant(versus)
            let counts = threads.split(separator: ",").compactMap { Int($0) }
            try require(!counts.isEmpty && counts.allSatisfy { $0 > 0 }, "--threads must list positive counts")
            var list = [(256, 768, 768), (256, 3072, 768), (256, 768, 3072), (4096, 384, 384), (256, 50304, 768)]
            if let shapes {
                list = try shapes.split(separator: ";").map { s in
                    let d = s.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
                    try require(d.count == 3 && d.allSatisfy { $0 > 0 && $0 <= 1 << 24 }, "--shapes wants M,N,K triples of integers in 1...\(1 << 24), got \(s)")
                    let floats = Double(d[0]) * Double(d[2]) + Double(d[2]) * Double(d[1]) + 2 * Double(d[0]) * Double(d[1])
                    try MemoryEstimate.requireFits(4 * floats, "the product \(d[0])×\(d[1])×\(d[2])")
                    return (d[0], d[1], d[2])
                }
            }
            let layouts: [(String, Bool, Bool)] = [("NN", false, false), ("NT", false, true), ("TN", true, false)]
            if !json {
                print("GEMM, fp32, median of \(iterations); op: NN = A·B, NT = A·Bᵀ, TN = Aᵀ·B (the backward pass's layouts)")
                print("   M      N     K  op  threads   GFLOP/s    peak  % peak" + (versus.map { String(format: "  %10@   ratio", $0) } ?? ""))
            }
            for (m, n, k) in list {
                for (name, ta, tb) in layouts {
                    for t in counts {
                        let r = GEMMBenchmark.run(m: m, n: n, k: k, transA: ta, transB: tb, threads: t,
                                                  iterations: iterations, versus: variant, pairedPeak: true)
                        let peak = r.peakGflops ?? .nan
                        if json {
                            let v = r.variantGflops.map { String(format: ",\"variant\":\"%@\",\"variant_gflops\":%.1f", versus!, $0) } ?? ""
                            print("{\"m\":\(m),\"n\":\(n),\"k\":\(k),\"op\":\"\(name)\",\"threads\":\(t),\"gflops\":\(String(format: "%.1f", r.gflops))"
                                  + String(format: ",\"peak_gflops\":%.1f,\"fraction_of_peak\":%.3f", peak, r.gflops / peak) + "\(v)}")
                        } else {
                            let v = r.variantGflops.map { String(format: "  %10.1f  %6.3f", $0, r.gflops / $0) } ?? ""
                            print(String(format: "%5d %6d %5d  %@  %7d  %8.1f  %6.1f  %5.1f%%", m, n, k, name, t, r.gflops, peak,
                                         100 * r.gflops / peak) + v)
                        }
                    }
                }
            }
        }
    }
}

extension GEMMTuning {
    /// The rules `bench gemm --versus NAME` compares with the current ones: each turns one
    /// measured rule off (figures in docs/benchmarks-log.md).
    static func variant(_ name: String?) throws -> GEMMTuning? {
        guard let name else { return nil }
        var t = GEMMTuning.current
        switch name {
        case "pack-a": t.unpackedA = false
        case "private-b": t.sharedBMaxFloats = 0
        case "more-tasks": t.maxTasksPerThread *= 2; t.minPanelsPerTask = max(1, t.minPanelsPerTask / 2)
        case "no-direct": t.smallThreshold = 0
        case "packed-small": t.unpackedMaxWork = 0
        case "packed-few-rows": t.fewRowsMax = 0
        case "static-skinny": t.skinnyRows = 0
        default:
            throw EmeraldError.invalidArgument("--versus takes pack-a, private-b, more-tasks, no-direct, packed-small, packed-few-rows or static-skinny, got \(name)")
        }
        return t
    }
}

struct BenchMemory: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "memory",
        abstract: "Streaming read bandwidth (GB/s): the ceiling of fp32 decode, which reads every weight once per token.")
    @Option(help: "Thread counts to measure, comma-separated.") var threads: String = "1,2"
    @Option(help: "Buffer size in MiB (well above the last-level cache).") var megabytes: Int = 512
    @Option(help: "Timed passes per thread count (median reported).") var iterations: Int = 9
    @Flag(help: "One JSON object per line instead of a table.") var json = false

    func run() throws {
        try EmeraldCommand.guarded {
            let counts = threads.split(separator: ",").compactMap { Int($0) }
            try require(!counts.isEmpty && counts.allSatisfy { $0 > 0 }, "--threads must list positive counts")
            try require(megabytes >= 64 && megabytes <= 1 << 16, "--megabytes must be in 64...65536, got \(megabytes)")
            try require(iterations > 0, "--iterations must be positive")
            let n = megabytes << 18, chunkFloats = 1 << 18, chunks = n / chunkFloats
            let next = Atomic<Int>(0)
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: n)
            defer { buffer.deallocate() }
            buffer.initialize(repeating: 1, count: n)
            if !json { print("threads   GB/s (read, median of \(iterations))") }
            for t in counts {
                GEMMBenchmark.usePool(threads: t)
                var sums = [Float](repeating: 0, count: t)
                var rates: [Double] = []
                for _ in 0...iterations {
                    let start = DispatchTime.now().uptimeNanoseconds
                    sums.withUnsafeMutableBufferPointer { out in
                        let out = out
                        next.store(0, ordering: .relaxed)
                        ThreadPool.shared.parallelFor(t) { r in
                            for w in r {
                                // 1 MiB chunks from a counter (a slowed core takes fewer), each read as
                                // four streams a quarter apart, like decode's four rows of W at a time;
                                // one accumulator per stream: the loop is bound by loads, not adds.
                                var a = F8(), b = F8(), c = F8(), d = F8()
                                while true {
                                    let chunk = next.wrappingAdd(1, ordering: .relaxed).oldValue
                                    if chunk >= chunks { break }
                                    let q = chunkFloats / 4, base = buffer + chunk * chunkFloats
                                    var i = 0
                                    while i < q {
                                        a += load8(base + i); b += load8(base + q + i)
                                        c += load8(base + 2 * q + i); d += load8(base + 3 * q + i)
                                        i += 8
                                    }
                                }
                                out[w] = hsum8((a + b) + (c + d))
                            }
                        }
                    }
                    rates.append(Double(n * 4) / Double(DispatchTime.now().uptimeNanoseconds - start))
                }
                try require(sums.reduce(0, +) > 0, "bandwidth pass summed nothing")
                let gbs = median(Array(rates.dropFirst()))  // the first pass warms the pages
                if json { print("{\"threads\":\(t),\"read_gb_per_s\":\(String(format: "%.1f", gbs))}") }
                else { print(String(format: "%7d   %6.1f", t, gbs)) }
            }
        }
    }
}
