import NIOCore

/// Runs a task's jobs on one channel's event loop (SE-0417 task executor preference).
///
/// A generation's task wakes once per token. On Swift's global executor that wake lands on a
/// cooperative thread, whose write then hops to the event loop (a second wake), and on 2 cores
/// every wake preempts a compute thread, which stalls the other at its next join. On the
/// channel's own loop the token's text is formatted and written in one wake, with no hop.
final class EventLoopExecutor: TaskExecutor, @unchecked Sendable {
    private let loop: any EventLoop

    /// An executor over `loop`.
    init(_ loop: any EventLoop) { self.loop = loop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
