import Foundation
import XCTest

/// A child process started with posix_spawn and reaped with waitpid. Foundation's `Process`
/// tracks children through a CFSocket whose wake-up pair needs the loopback interface: in a
/// network namespace without one (`unshare -n`) it never sees the child exit and the test
/// hangs. Standard streams go through files, so large outputs cannot block on a pipe.
final class Child {
    let pid: pid_t
    private let outPath: String, errPath: String
    private var status: Int32?

    /// Starts `executable args…` in `directory` with `stdin` as its input (written to a file
    /// first); `environment` is added to this process's.
    /// With `terminal`, stdin and stdout are that file descriptor (a pseudo-terminal's slave) instead.
    /// `stdinPath` reads that file instead (`/dev/zero`); `closeStdin` starts the child with fd 0 closed.
    init(_ executable: String, _ args: [String], in directory: String, stdin: [UInt8] = [],
         environment: [String: String] = [:], stderrToStdout: Bool = false, terminal: Int32? = nil,
         stdinPath: String? = nil, closeStdin: Bool = false) throws {
        let id = UUID().uuidString
        let inPath = directory + "/.stdin-\(id)"
        outPath = directory + "/.stdout-\(id)"
        errPath = stderrToStdout ? outPath : directory + "/.stderr-\(id)"
        _ = FileManager.default.createFile(atPath: inPath, contents: Data(stdin))
        defer { unlink(inPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let terminal {
            posix_spawn_file_actions_adddup2(&actions, terminal, 0)
            posix_spawn_file_actions_adddup2(&actions, terminal, 1)
        } else {
            if closeStdin { posix_spawn_file_actions_addclose(&actions, 0) }
            else { posix_spawn_file_actions_addopen(&actions, 0, stdinPath ?? inPath, O_RDONLY, 0) }
            posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        }
        if stderrToStdout {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        }
        guard Child.addChdir(&actions, directory) == 0 else { throw NSError(domain: "spawn", code: 1) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // A clean signal mask and default SIGINT handling, whatever the test runner set.
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none); sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        var defaults = sigset_t()
        sigemptyset(&defaults); sigaddset(&defaults, SIGINT); sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let env = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { "\($0.key)=\($0.value)" }
        let argv = [executable] + args
        var p: pid_t = 0
        let rc = withCStrings(argv) { cargv in
            withCStrings(env) { cenv in posix_spawn(&p, executable, &actions, &attributes, cargv, cenv) }
        }
        guard rc == 0 else { throw NSError(domain: "spawn", code: Int(rc), userInfo: [NSLocalizedDescriptionKey: "cannot start \(executable): \(String(cString: strerror(rc)))"]) }
        pid = p
    }

    /// glibc's posix_spawn_file_actions_addchdir_np (2.29+), which Swift's Glibc module does not export.
    private static let addChdir: @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32 = {
        let sym = dlsym(nil, "posix_spawn_file_actions_addchdir_np")  // nil: RTLD_DEFAULT
        return unsafeBitCast(sym!, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32).self)
    }()

    /// Whether the child has exited (reaping it if so).
    var isRunning: Bool {
        if status != nil { return false }
        var s: Int32 = 0
        var usage = rusage()
        if wait4(pid, &s, WNOHANG, &usage) == pid { status = s; peakKilobytes = Int(usage.ru_maxrss); return false }
        return true
    }

    /// The child's peak resident set size in KiB, once it has exited.
    private(set) var peakKilobytes = 0

    /// Waits up to `timeout` seconds; true when the child exited, false when it still runs.
    @discardableResult
    func wait(timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while isRunning {
            if Date() >= deadline { return false }
            usleep(5_000)
        }
        return true
    }

    /// Sends `signal`.
    func send(_ signal: Int32) { kill(pid, signal) }

    /// Exit code, or the signal number when killed (see `signaled`).
    var exitStatus: Int32 {
        guard let s = status else { return -1 }
        return s & 0x7F == 0 ? (s >> 8) & 0xFF : s & 0x7F
    }

    /// Whether the child ended by a signal.
    var signaled: Bool { status.map { $0 & 0x7F != 0 } ?? false }

    /// What the child wrote to stdout so far.
    var stdout: [UInt8] { [UInt8](FileManager.default.contents(atPath: outPath) ?? Data()) }

    /// What the child wrote to stderr so far.
    var stderr: String { String(decoding: FileManager.default.contents(atPath: errPath) ?? Data(), as: UTF8.self) }

    deinit {
        if isRunning { kill(pid, SIGKILL); var s: Int32 = 0; waitpid(pid, &s, 0) }
        unlink(outPath); unlink(errPath)
    }
}

/// Runs `body` with a NULL-terminated C array of `strings`.
private func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
    var c = strings.map { strdup($0) }
    c.append(nil)
    defer { c.forEach { free($0) } }
    return body(c)
}

/// A pseudo-terminal: `slave` is what a child sees as its terminal, `master` what a test types
/// into and reads from.
final class PseudoTerminal {
    let master: Int32, slave: Int32

    init() throws {
        // posix_openpt, unlockpt and ptsname by hand (Swift's Glibc module does not export them).
        master = open("/dev/ptmx", O_RDWR | O_NOCTTY)
        var unlock: Int32 = 0, number: UInt32 = 0
        let TIOCSPTLCK: UInt = 0x4004_5431, TIOCGPTN: UInt = 0x8004_5430
        guard master >= 0, ioctl(master, TIOCSPTLCK, &unlock) == 0, ioctl(master, TIOCGPTN, &number) == 0 else {
            throw NSError(domain: "pty", code: Int(errno))
        }
        slave = open("/dev/pts/\(number)", O_RDWR | O_NOCTTY)
        guard slave >= 0 else { throw NSError(domain: "pty", code: Int(errno)) }
        _ = fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK)
    }

    /// Types `bytes`.
    func type(_ bytes: [UInt8]) { _ = bytes.withUnsafeBytes { write(master, $0.baseAddress, $0.count) } }

    /// Everything the child wrote until `marker` appears (or `timeout` passes).
    func read(until marker: String, timeout: TimeInterval = 30) -> String {
        var got: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        var buf = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline {
            let n = buf.withUnsafeMutableBytes { Foundation.read(master, $0.baseAddress, $0.count) }
            if n > 0 { got += buf[..<n] } else { usleep(2000) }
            if String(decoding: got, as: UTF8.self).contains(marker) { break }
        }
        return String(decoding: got, as: UTF8.self)
    }

    deinit { close(master); close(slave) }
}
