import ArgumentParser
import Emerald
import Foundation

/// The standard error of a silenced process (not process 0 of a job), for an error only it meets.
nonisolated(unsafe) var quietStandardError: Int32 = -1

/// `--distributed` of train and finetune.
enum DistributedMode: String, ExpressibleByArgument, CaseIterable {
    case mpi
}

/// Training across processes: `mpirun -np N [-H host1,host2] emerald train …`.
struct DistributedOptions: ParsableArguments {
    @Option(help: "Train across processes started by mpirun: mpi (implied under mpirun). Each process computes its slice of every batch (--batch-size must be a multiple of the process count), gradients are summed with MPI_Allreduce, process 0 evaluates and writes.")
    var distributed: DistributedMode?

    /// The job's process group (nil: this process trains alone). Every process but the
    /// first is silenced (process 0 prints for the job), and each takes its share of this
    /// machine's cores unless `--threads` says otherwise.
    func join(threads: Int?) throws -> ProcessGroup? { try Self.join(distributed, threads: threads) }

    /// `join` for `mode` (nil: only when launched by mpirun).
    static func join(_ mode: DistributedMode?, threads: Int?) throws -> ProcessGroup? {
        guard mode == .mpi || ProcessGroup.launchedByMPI else { try applyThreads(threads); return nil }
        let group = try ProcessGroup.mpi()
        if !group.isMain {
            quietStandardError = dup(2)
            freopen("/dev/null", "w", stdout)
            freopen("/dev/null", "w", stderr)
        }
        try applyThreads(threads ?? Swift.max(1, ProcessInfo.processInfo.activeProcessorCount / ProcessGroup.localSize))
        return group
    }
}
