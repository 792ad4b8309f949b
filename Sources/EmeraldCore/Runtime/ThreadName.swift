#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Names the calling thread for `top -H`, `perf` and /proc (Linux keeps 15 bytes), so a
/// profile or a benchmark can tell compute threads from I/O ones. Foundation's `Thread.name`
/// does not reach the kernel on Linux, and Glibc's module hides `pthread_setname_np`; the
/// kernel takes the name from /proc/thread-self/comm instead.
public func nameCurrentThread(_ name: String) {
    let short = Array(name.utf8.prefix(15))
    #if os(Linux)
    let fd = open("/proc/thread-self/comm", O_WRONLY)
    guard fd >= 0 else { return }  // no /proc: the name is only cosmetic
    _ = short.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
    #elseif canImport(Darwin)
    _ = pthread_setname_np(String(decoding: short, as: UTF8.self))
    #endif
}
