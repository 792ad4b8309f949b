import CEmeraldMPI
import Foundation

/// The processes of one data-parallel training job, started by MPI (`mpirun -np N emerald
/// train …`): each computes the gradients of its slice of every batch, and the gradients are
/// summed across all of them before each update (llm.c's scheme). Open MPI's library is
/// loaded at run time, so a binary not launched under MPI never touches it.
public final class ProcessGroup {
    /// This process's index, 0 ..< size.
    public let rank: Int
    /// Processes in the job.
    public let size: Int
    /// Seconds spent in all-reduce so far (the communication share of a step).
    public private(set) var allReduceSeconds = 0.0
    /// Floats per all-reduce call: gradients travel in buckets of this size.
    public static let bucketFloats = 1 << 22
    /// The host buffer buckets go through, kept from step to step.
    private var bucket: UnsafeMutableBufferPointer<Float> = .init(start: nil, count: 0)

    /// The one process.
    public var isMain: Bool { rank == 0 }

    private init(rank: Int, size: Int) { self.rank = rank; self.size = size }

    deinit { bucket.deallocate() }

    /// Whether Open MPI's launcher started this process (`OMPI_COMM_WORLD_SIZE` is set).
    public static var launchedByMPI: Bool { ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] != nil }

    /// Processes of this job on this machine (Open MPI's `OMPI_COMM_WORLD_LOCAL_SIZE`), 1 otherwise.
    public static var localSize: Int {
        ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap { Int($0) }.map { Swift.max($0, 1) } ?? 1
    }

    nonisolated(unsafe) private static var joined: ProcessGroup?

    /// The group this process joined, if any.
    public static var current: ProcessGroup? { joined }

    /// Loads Open MPI (`library`, or libmpi.so.40) and joins the job; the same group on later calls.
    /// - Throws: `EmeraldError.invalidArgument` naming what is missing when MPI cannot load.
    public static func mpi(library: String? = nil) throws -> ProcessGroup {
        if let joined { return joined }
        var err = [CChar](repeating: 0, count: 512)
        guard emerald_mpi_load(library, &err, err.count) == 0 else {
            let reason = String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw EmeraldError.invalidArgument("cannot load Open MPI (\(reason)); install openmpi-bin (scripts/setup does) and launch with mpirun")
        }
        var rank: Int32 = 0, size: Int32 = 1
        guard emerald_mpi_init(&rank, &size) == 0 else { throw EmeraldError.io("MPI_Init failed") }
        let group = ProcessGroup(rank: Int(rank), size: Int(size))
        joined = group
        return group
    }

    /// Sequences `rank`'s slice of a batch of `batchSize` (which the size divides).
    public func rows(of batchSize: Int) -> Range<Int> {
        let n = batchSize / size
        return (rank * n)..<((rank + 1) * n)
    }

    /// Throws, naming both, unless the job's size divides `batchSize`.
    public func requireDivides(batchSize: Int) throws {
        try require(batchSize % size == 0, field: "batch_size",
                    "\(batchSize) does not split over \(size) processes: choose a multiple of \(size)")
    }

    /// Sums every tensor over all processes, in place (each process ends with the same sums).
    /// The tensors travel in buckets of `bucketFloats` through one host buffer.
    public func allReduceSum(_ tensors: [Tensor]) {
        let start = Date()
        defer { allReduceSeconds += Date().timeIntervalSince(start) }
        let needed = Swift.max(1, Swift.min(tensors.reduce(0) { $0 + $1.count }, Self.bucketFloats))
        if bucket.count < needed {
            bucket.deallocate()
            bucket = .allocate(capacity: needed)
        }
        let bucket = self.bucket.baseAddress!
        var pending: [(Tensor, Int, Int)] = []  // (tensor, first element, count) in the bucket
        var filled = 0
        func flush() {
            guard filled > 0 else { return }
            if emerald_mpi_allreduce_float(bucket, filled) != 0 { abort(1) }
            var at = 0
            for (t, first, n) in pending {
                let src = bucket + at
                t.withHostBuffer { dst in (dst.baseAddress! + first).update(from: src, count: n) }
                at += n
            }
            pending.removeAll(keepingCapacity: true)
            filled = 0
        }
        for t in tensors {
            var first = 0
            while first < t.count {
                let n = Swift.min(t.count - first, Self.bucketFloats - filled)
                t.withHostBuffer { (bucket + filled).update(from: $0.baseAddress! + first, count: n) }
                pending.append((t, first, n))
                filled += n
                first += n
                if filled == Self.bucketFloats { flush() }
            }
        }
        flush()
    }

    /// Sums `values` over all processes, in float.
    public func allReduceSum(_ values: [Float]) -> [Float] {
        var v = values
        if emerald_mpi_allreduce_float(&v, v.count) != 0 { abort(1) }
        return v
    }

    /// Sums `values` over all processes.
    public func allReduceSum(_ values: [Double]) -> [Double] {
        var v = values
        if emerald_mpi_allreduce_double(&v, v.count) != 0 { abort(1) }
        return v
    }

    /// Waits for every process.
    public func barrier() { _ = emerald_mpi_barrier() }

    /// Ends every process of the job with `code` (after an error on one of them, so none is
    /// left waiting in a collective).
    public func abort(_ code: Int32) -> Never {
        emerald_mpi_abort(code)
        exit(code)
    }

    /// Leaves the job (MPI_Finalize).
    public func finish() { _ = emerald_mpi_finalize() }
}

