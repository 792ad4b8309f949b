#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Per-thread scratch memory that grows and is then reused, so kernels that
/// need temporaries (attention score tiles) allocate nothing in steady state.
public final class Scratch {
    private var slots: [(UnsafeMutablePointer<Float>, Int)] = []

    /// A buffer of at least `count` floats for slot `slot` on the calling thread.
    /// Its contents are undefined; it stays valid until the same slot is asked
    /// for again on this thread.
    public static func buffer(_ slot: Int, count: Int) -> UnsafeMutablePointer<Float> {
        current.take(slot, count)
    }

    private func take(_ slot: Int, _ count: Int) -> UnsafeMutablePointer<Float> {
        while slots.count <= slot { slots.append((UnsafeMutablePointer<Float>.allocate(capacity: 16), 16)) }
        if slots[slot].1 < count {
            slots[slot].0.deallocate()
            slots[slot] = (UnsafeMutablePointer<Float>.allocate(capacity: count), count)
        }
        return slots[slot].0
    }

    deinit { for (p, _) in slots { p.deallocate() } }

    nonisolated(unsafe) private static var key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k) { p in
            guard let p else { return }
            Unmanaged<Scratch>.fromOpaque(p).release()
        }
        return k
    }()

    private static var current: Scratch {
        if let p = pthread_getspecific(key) { return Unmanaged<Scratch>.fromOpaque(p).takeUnretainedValue() }
        let s = Scratch()
        pthread_setspecific(key, Unmanaged.passRetained(s).toOpaque())
        return s
    }
}
