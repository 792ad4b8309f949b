import Foundation

/// Parallel work with in-order results and bounded memory.
///
/// A producer thread cuts the input into units (a file, or a tar member's
/// bytes) and queues them; `workers` threads run units and emit items into
/// the unit's own bounded buffer; the calling thread consumes items strictly
/// in unit order. At most `maxUnits` units are alive and each buffers at most
/// `unitByteLimit` bytes of items (plus one item), so memory does not grow
/// with the corpus. Deadlock-free because units are taken in FIFO order: the
/// unit being consumed was always taken before any unit a worker waits on.
final class OrderedPipeline<Item>: @unchecked Sendable {
    /// Sends one item with its approximate size in bytes.
    typealias Emit = (Item, Int) throws -> Void
    /// A unit's work: the worker slot (0..<workers, or `workers` for the producer) and an emitter.
    typealias Job = (Int, Emit) throws -> Void

    private final class Unit {
        var job: Job?
        var items: [(Item, Int)?] = []  // consumed slots are cleared at once, so their memory goes back
        var head = 0
        var bytes = 0
        var finished = false
        var error: Error?
        init(job: Job?) { self.job = job }
    }

    private struct Cancelled: Error {}

    /// Lets the producer add units.
    struct Producer {
        fileprivate let pipeline: OrderedPipeline
        /// Queues a unit for the workers.
        func add(_ job: @escaping Job) throws { _ = try pipeline.addUnit(job) }
        /// Runs a unit on the producer's thread (for input that cannot be handed over, like a huge tar member).
        func inline(_ job: Job) throws {
            let u = try pipeline.addUnit(nil)
            do {
                try job(pipeline.workers) { item, bytes in try pipeline.emit(u, item, bytes) }
                pipeline.finish(u, nil)
            } catch {
                pipeline.finish(u, error)
                throw Cancelled()
            }
        }
    }

    let workers: Int
    private let maxUnits: Int
    private let unitByteLimit: Int
    private let cond = NSCondition()
    private var queue: [Unit] = []
    private var queueHead = 0
    private var order: [Unit] = []
    private var orderHead = 0
    private var producerDone = false
    private var cancelled = false
    private var liveThreads = 0

    init(workers: Int, maxUnits: Int? = nil, unitByteLimit: Int = 8 << 20) {
        self.workers = max(1, workers)
        self.maxUnits = maxUnits ?? 2 * max(1, workers) + 2
        self.unitByteLimit = unitByteLimit
    }

    private func addUnit(_ job: Job?) throws -> Unit {
        cond.lock(); defer { cond.unlock() }
        while order.count - orderHead >= maxUnits && !cancelled { cond.wait() }
        if cancelled { throw Cancelled() }
        let u = Unit(job: job)
        order.append(u)
        if job != nil { queue.append(u) }
        cond.broadcast()
        return u
    }

    private func emit(_ u: Unit, _ item: Item, _ bytes: Int) throws {
        cond.lock(); defer { cond.unlock() }
        while u.bytes > 0 && u.bytes + bytes > unitByteLimit && !cancelled { cond.wait() }
        if cancelled { throw Cancelled() }
        u.items.append((item, bytes))
        u.bytes += bytes
        cond.broadcast()
    }

    private func finish(_ u: Unit, _ error: Error?) {
        cond.lock()
        u.finished = true
        if let error, !(error is Cancelled) { u.error = error }
        cond.broadcast()
        cond.unlock()
    }

    private func spawn(_ body: @escaping () -> Void) {
        cond.lock(); liveThreads += 1; cond.unlock()
        let t = Thread { [self] in
            body()
            cond.lock(); liveThreads -= 1; cond.broadcast(); cond.unlock()
        }
        t.stackSize = 8 << 20
        t.start()
    }

    private func workerLoop(_ slot: Int) {
        while true {
            cond.lock()
            while queueHead == queue.count && !producerDone && !cancelled { cond.wait() }
            if cancelled || queueHead == queue.count { cond.unlock(); return }
            let u = queue[queueHead]
            queueHead += 1
            if queueHead >= 64 { queue.removeFirst(queueHead); queueHead = 0 }
            let job = u.job!
            u.job = nil
            cond.unlock()
            do {
                try job(slot) { item, bytes in try self.emit(u, item, bytes) }
                finish(u, nil)
            } catch {
                finish(u, error)
            }
        }
    }

    /// Runs `produce` on its own thread and the units on `workers` threads,
    /// handing every item to `consume` on this thread in order. The first
    /// error (from any unit, the producer or `consume`) stops everything and is rethrown.
    func run(produce: @escaping (Producer) throws -> Void, consume: (Item) throws -> Void) throws {
        for slot in 0..<workers { spawn { [self] in workerLoop(slot) } }
        spawn { [self] in
            var failure: Error?
            do { try produce(Producer(pipeline: self)) } catch { failure = error }
            cond.lock()
            if let failure, !(failure is Cancelled) {
                let u = Unit(job: nil)
                u.finished = true
                u.error = failure
                order.append(u)
            }
            producerDone = true
            cond.broadcast()
            cond.unlock()
        }
        do {
            while true {
                cond.lock()
                var next: (Item, Int)?
                var failure: Error?
                var done = false
                while true {
                    if orderHead < order.count {
                        let u = order[orderHead]
                        if u.head < u.items.count {
                            next = u.items[u.head]
                            u.items[u.head] = nil
                            u.head += 1
                            u.bytes -= next!.1
                            if u.head >= 64 && u.head * 2 >= u.items.count { u.items.removeFirst(u.head); u.head = 0 }
                            cond.broadcast()
                            break
                        }
                        if u.finished {
                            if let e = u.error { failure = e; break }
                            u.items = []
                            orderHead += 1
                            if orderHead >= 64 { order.removeFirst(orderHead); orderHead = 0 }
                            cond.broadcast()
                            continue
                        }
                    } else if producerDone {
                        done = true
                        break
                    }
                    cond.wait()
                }
                cond.unlock()
                if let failure { throw failure }
                if done { break }
                try consume(next!.0)
            }
        } catch {
            stop()
            throw error
        }
        stop()
    }

    /// Cancels whatever still runs and waits for every thread to leave.
    private func stop() {
        cond.lock()
        cancelled = true
        cond.broadcast()
        while liveThreads > 0 { cond.wait() }
        cond.unlock()
    }
}
