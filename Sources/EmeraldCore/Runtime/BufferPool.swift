#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Float memory on one device, allocated by that device's backend and given back to it on
/// deinit. On the CPU: 64-byte aligned, recycled through `BufferPool` (training steps
/// allocate the same shapes every step, so an exact-size cache makes the steady state
/// allocation-free without any planning by callers).
public final class Storage: @unchecked Sendable {
    /// First element, an address on `device` (a host pointer only on the CPU).
    public let base: UnsafeMutablePointer<Float>
    /// Number of floats.
    public let count: Int
    /// Where the memory lives.
    public let device: Device
    /// Who gives it back; nil for memory owned elsewhere.
    private let owner: (any Backend)?

    /// Host memory from the pool, uninitialised.
    public init(count: Int) {
        self.count = count
        self.base = BufferPool.shared.take(count)
        self.device = .cpu
        self.owner = Backends.cpu
    }

    /// Memory on `device` from its backend, uninitialised.
    public init(count: Int, on backend: any Backend) {
        self.count = count
        self.base = backend.allocate(count: count)
        self.device = backend.device
        self.owner = backend
    }

    /// Wraps host memory owned elsewhere (e.g. a memory-mapped file); never freed here.
    public init(unowned base: UnsafeMutablePointer<Float>, count: Int) {
        self.base = base
        self.count = count
        self.device = .cpu
        self.owner = nil
    }

    deinit { owner?.deallocate(base, count: count) }
}

/// Exact-size cache of aligned buffers.
public final class BufferPool: @unchecked Sendable {
    /// The process-wide pool.
    public static let shared = BufferPool()
    private var free: [Int: [UnsafeMutablePointer<Float>]] = [:]
    private var lock = pthread_mutex_t()
    /// Bytes currently cached (not in use).
    public private(set) var cachedBytes = 0
    /// Number of fresh system allocations so far (a steady-state step adds none).
    public private(set) var systemAllocations = 0

    init() { pthread_mutex_init(&lock, nil) }

    func take(_ count: Int) -> UnsafeMutablePointer<Float> {
        pthread_mutex_lock(&lock)
        // Popped in place: copying the list out and back would copy it on every take.
        if let p = free[count]?.popLast() {
            cachedBytes -= count * 4
            pthread_mutex_unlock(&lock)
            return p
        }
        systemAllocations += 1
        pthread_mutex_unlock(&lock)
        var raw: UnsafeMutableRawPointer?
        let bytes = max(64, (count * 4 + 63) & ~63)
        guard posix_memalign(&raw, 64, bytes) == 0, let raw else {
            fatalError("out of memory allocating \(bytes) bytes")
        }
        return raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    func give(_ p: UnsafeMutablePointer<Float>, _ count: Int) {
        pthread_mutex_lock(&lock)
        free[count, default: []].append(p)
        cachedBytes += count * 4
        pthread_mutex_unlock(&lock)
    }

    /// Returns every cached buffer to the system.
    public func trim() {
        pthread_mutex_lock(&lock)
        for (_, list) in free { for p in list { Foundation_free(p) } }
        free.removeAll()
        cachedBytes = 0
        pthread_mutex_unlock(&lock)
    }
}

@inline(__always) private func Foundation_free(_ p: UnsafeMutablePointer<Float>) { free(p) }
