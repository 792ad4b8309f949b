import Emerald
import Foundation
import XCTest

/// Training across processes with Open MPI on this machine: 2 processes against one, resume
/// after a killed process, bad job sizes. Skipped, with the reason, where mpirun is missing
/// (scripts/setup installs openmpi-bin when it can) or cannot start (e.g. no loopback).
final class MPITests: XCTestCase {
    private var work = ""
    private let rootEnvironment = ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                                   "OMPI_MCA_rmaps_base_oversubscribe": "1"]
    // A small run: the same data and settings for every launch.
    private let run = ["train", "--data", TestSupport.bookPath, "--n-layer", "1", "--n-head", "2", "--n-embd", "32",
                       "--block-size", "32", "--batch-size", "8", "--lr", "2e-3", "--dropout", "0.1", "--steps", "120",
                       "--eval-interval", "40", "--eval-iters", "2", "--warmup-steps", "4"]

    override func setUpWithError() throws {
        XCTAssertNotNil(EmeraldExecutable.path, "build with --build-tests")
        work = TestSupport.tempDir("mpi")
    }

    override func tearDown() {
        if !work.isEmpty { try? FileManager.default.removeItem(atPath: work) }
    }

    /// mpirun's path, after a trivial 2-process job ran; else the test is skipped with the reason.
    private func mpirun() throws -> String {
        guard let path = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("mpirun not found: install openmpi-bin (scripts/setup does when it can)")
        }
        let probe = try Child(path, ["-np", "2", "/bin/true"], in: work, environment: rootEnvironment)
        guard probe.wait(timeout: 60), probe.exitStatus == 0 else {
            throw XCTSkip("mpirun cannot start 2 processes here: \(probe.stderr.split(separator: "\n").prefix(3).joined(separator: " / "))")
        }
        return path
    }

    private func launch(_ np: Int, _ args: [String]) throws -> Child {
        try Child(try mpirun(), ["-np", String(np), EmeraldExecutable.path!] + args, in: work, environment: rootEnvironment)
    }

    private func metrics(_ dir: String) throws -> [[String: Double]] {
        let text = String(decoding: try XCTUnwrap(FileManager.default.contents(atPath: work + "/" + dir + "/metrics.jsonl")), as: UTF8.self)
        return try text.split(separator: "\n").map { line in
            let o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return o.compactMapValues { $0 as? Double }.filter { ["step", "train_loss", "val_loss", "lr", "grad_norm"].contains($0.key) }
        }
    }

    private func assertClose(_ a: [[String: Double]], _ b: [[String: Double]], _ what: String) {
        XCTAssertEqual(a.count, b.count, what)
        for (x, y) in zip(a, b) {
            for (k, v) in x { XCTAssertEqual(v, y[k] ?? .nan, accuracy: 1e-5 * Swift.max(1, abs(v)), "\(what): \(k) at step \(x["step"] ?? -1)") }
        }
    }

    /// Two processes with one thread each take the same steps as one process: the same
    /// evaluated losses, learning rates and gradient norms (≤ 1e-5), and process 0 alone writes.
    func testTwoProcessesTrainLikeOne() throws {
        // One process splitting each batch in two on two threads: the same slices the two processes take.
        let one = try Child(EmeraldExecutable.path!, run + ["--out", "one", "--threads", "2", "--shards", "2"], in: work)
        XCTAssertTrue(one.wait(timeout: 300)); XCTAssertEqual(one.exitStatus, 0, one.stderr)
        let two = try launch(2, run + ["--out", "two"])
        XCTAssertTrue(two.wait(timeout: 300)); XCTAssertEqual(two.exitStatus, 0, two.stderr)
        let out = String(decoding: two.stdout, as: UTF8.self)
        XCTAssertTrue(out.contains("in each of 2 processes (MPI)"), out)
        XCTAssertEqual(out.components(separatedBy: "best val loss").count, 2, "one process prints for the job: \(out)")
        assertClose(try metrics("one"), try metrics("two"), "1 process vs 2")
        XCTAssertEqual(try metrics("two").count, 4)

        // Fine-tuning that model the same two ways.
        let tune = ["finetune", "--from", "two", "--steps", "20", "--eval-interval", "10", "--eval-iters", "2", "--batch-size", "4"]
        let tuneOne = try Child(EmeraldExecutable.path!, tune + ["--out", "ft-one", "--threads", "2", "--shards", "2"], in: work)
        XCTAssertTrue(tuneOne.wait(timeout: 300)); XCTAssertEqual(tuneOne.exitStatus, 0, tuneOne.stderr)
        let tuneTwo = try launch(2, tune + ["--out", "ft-two"])
        XCTAssertTrue(tuneTwo.wait(timeout: 300)); XCTAssertEqual(tuneTwo.exitStatus, 0, tuneTwo.stderr)
        assertClose(try metrics("ft-one"), try metrics("ft-two"), "fine-tuning, 1 process vs 2")
        XCTAssertEqual(try metrics("ft-two").count, 3)
    }

    /// A process killed mid-run ends the job within 30 s with an error; the last checkpoint
    /// loads, and `--resume` under MPI ends exactly where the uninterrupted job does.
    func testKilledProcessEndsTheJobAndResumeMatches() throws {
        let whole = try launch(2, run + ["--out", "whole"])
        XCTAssertTrue(whole.wait(timeout: 300)); XCTAssertEqual(whole.exitStatus, 0, whole.stderr)

        let cut = try launch(2, run + ["--out", "cut"])
        let firstSave = work + "/cut/checkpoint/model.safetensors"
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: firstSave) && Date() < deadline && cut.isRunning { usleep(20_000) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: firstSave), "no checkpoint before the kill")
        let victim = try XCTUnwrap(rank(1, under: cut.pid), "process 1 not found")
        kill(victim, SIGKILL)
        let killedAt = Date()
        XCTAssertTrue(cut.wait(timeout: 30), "the job outlived a killed process by 30 s")
        XCTAssertLessThan(Date().timeIntervalSince(killedAt), 30)
        XCTAssertNotEqual(cut.exitStatus, 0)
        XCTAssertNoThrow(try Checkpoint.load(from: work + "/cut"), "the last checkpoint loads")

        let resumed = try launch(2, ["train", "--resume", "cut"])
        XCTAssertTrue(resumed.wait(timeout: 300)); XCTAssertEqual(resumed.exitStatus, 0, resumed.stderr)
        assertClose(try metrics("whole"), try metrics("cut"), "resumed vs uninterrupted")
        XCTAssertEqual(FileManager.default.contents(atPath: work + "/cut/checkpoint/model.safetensors"),
                       FileManager.default.contents(atPath: work + "/whole/checkpoint/model.safetensors"), "final weights")
    }

    /// A job size that does not divide the batch: one error line from process 0, every
    /// process ended, nothing written.
    func testJobSizeMustDivideTheBatch() throws {
        let job = try launch(2, run.map { $0 == "8" ? "9" : $0 } + ["--out", "odd"])
        XCTAssertTrue(job.wait(timeout: 60)); XCTAssertNotEqual(job.exitStatus, 0)
        XCTAssertTrue(job.stderr.hasPrefix("error: --batch-size 9 does not split over 2 processes"), job.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: work + "/odd"))
    }

    /// One process in each of two network namespaces joined by a veth pair, over Open MPI's
    /// TCP transport (its launcher pointed at a wrapper that runs `ip netns exec` instead of
    /// ssh): the same losses as one process. Needs root and iproute2.
    func testAcrossTwoNetworkNamespaces() throws {
        try withNamespacePair { job, _ in
            let one = try Child(EmeraldExecutable.path!, run + ["--out", "alone", "--threads", "2", "--shards", "2"], in: work)
            XCTAssertTrue(one.wait(timeout: 300)); XCTAssertEqual(one.exitStatus, 0, one.stderr)
            let seconds = try job("hosts")
            assertClose(try metrics("alone"), try metrics("hosts"), "1 process vs 2 namespaces")
            print(String(format: "two namespaces over TCP: %.1f ms per step (120 steps, evaluations included)", seconds * 1000 / 120))
        }
    }

    /// The same job with 5 ms of latency and a 1 Gbit/s limit on the link (`tc netem`; where
    /// the kernel has no netem, the limit alone with `tbf`, said in the output): still the
    /// same losses, and the time per step reported.
    func testAcrossTwoNetworkNamespacesOnASlowLink() throws {
        try withNamespacePair { job, shell in
            var shaping = "5 ms latency and 1 Gbit/s (netem)"
            let netem = shell("tc -n {a} qdisc add dev v{a} root netem delay 5ms rate 1gbit && tc -n {b} qdisc add dev v{b} root netem delay 5ms rate 1gbit")
            if !netem.ok {
                let tbf = shell("tc -n {a} qdisc add dev v{a} root tbf rate 1gbit burst 64kb latency 50ms && tc -n {b} qdisc add dev v{b} root tbf rate 1gbit burst 64kb latency 50ms")
                guard tbf.ok else { throw XCTSkip("neither tc netem nor tbf works here: \(netem.err.split(separator: "\n").first ?? "")") }
                shaping = "1 Gbit/s only (tbf: this kernel has no netem, so no added latency)"
            }
            let fast = try Child(EmeraldExecutable.path!, run + ["--out", "alone", "--threads", "2", "--shards", "2"], in: work)
            XCTAssertTrue(fast.wait(timeout: 300)); XCTAssertEqual(fast.exitStatus, 0, fast.stderr)
            let seconds = try job("slow")
            assertClose(try metrics("alone"), try metrics("slow"), "1 process vs 2 namespaces on a slow link")
            print(String(format: "two namespaces, %@: %.1f ms per step (120 steps, evaluations included)", shaping, seconds * 1000 / 120))
        }
    }

    /// Makes two network namespaces joined by a veth pair (10.77.0.1 and .2), then runs `body`
    /// with `job(out)` — the test's run as a 2-process job across them, returning its seconds —
    /// and a shell runner whose `{a}` and `{b}` stand for the namespaces. Deleted after.
    private func withNamespacePair(_ body: (_ job: (String) throws -> Double,
                                            _ shell: (String) -> (ok: Bool, err: String)) throws -> Void) throws {
        let mpirun = try mpirun()
        guard geteuid() == 0 else { throw XCTSkip("network namespaces need root") }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") || FileManager.default.isExecutableFile(atPath: "/sbin/ip") else {
            throw XCTSkip("iproute2's ip is not installed")
        }
        let id = String(getpid() % 100_000), a = "ema\(id)", b = "emb\(id)"
        func shell(_ command: String) -> (ok: Bool, err: String) {
            let c = command.replacingOccurrences(of: "{a}", with: a).replacingOccurrences(of: "{b}", with: b)
            guard let child = try? Child("/bin/sh", ["-c", c], in: work), child.wait(timeout: 30) else { return (false, "timeout") }
            return (child.exitStatus == 0, child.stderr)
        }
        let made = shell("""
            ip netns add {a} && ip netns add {b} && ip link add v{a} type veth peer name v{b} && \
            ip link set v{a} netns {a} && ip link set v{b} netns {b} && \
            ip -n {a} addr add 10.77.0.1/24 dev v{a} && ip -n {b} addr add 10.77.0.2/24 dev v{b} && \
            ip -n {a} link set v{a} up && ip -n {b} link set v{b} up && ip -n {a} link set lo up && ip -n {b} link set lo up
            """)
        defer { _ = shell("ip netns del {a}; ip netns del {b}") }
        guard made.ok else { throw XCTSkip("cannot make network namespaces here: \(made.err.split(separator: "\n").first ?? "")") }
        // The launcher's "ssh HOST COMMAND": COMMAND inside HOST's namespace, under its own host name.
        let agent = work + "/netns-rsh"
        try """
            #!/bin/sh
            host=$1; shift
            case "$host" in 10.77.0.2) ns=\(b);; *) ns=\(a);; esac
            exec ip netns exec "$ns" unshare --uts sh -c "hostname $ns; $*"
            """.write(toFile: agent, atomically: true, encoding: .utf8)
        chmod(agent, 0o755)
        let env = rootEnvironment.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        func job(_ out: String) throws -> Double {
            // One thread per process: the two "hosts" share this machine's two cores.
            let args = (run + ["--out", out, "--threads", "1"]).map { "'\($0)'" }.joined(separator: " ")
            let command = "\(env) ip netns exec \(a) unshare --uts sh -c \"hostname \(a); \(mpirun) -np 2 -H 10.77.0.1:1,10.77.0.2:1 "
                + "--mca plm_rsh_agent \(agent) --mca btl tcp,self --mca btl_tcp_if_include 10.77.0.0/24 "
                + "--mca oob_tcp_if_include 10.77.0.0/24 \(EmeraldExecutable.path!) \(args)\""
            let start = Date()
            let child = try Child("/bin/sh", ["-c", command], in: work)
            XCTAssertTrue(child.wait(timeout: 300), "the two-namespace job hung")
            XCTAssertEqual(child.exitStatus, 0, child.stderr + String(decoding: child.stdout, as: UTF8.self))
            return Date().timeIntervalSince(start)
        }
        try body(job, shell)
    }

    /// The emerald process of `rank` among the descendants of `root`.
    private func rank(_ r: Int, under root: pid_t) -> pid_t? {
        let procs = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap { pid_t($0) } ?? []
        for p in procs where p != root {
            guard let env = FileManager.default.contents(atPath: "/proc/\(p)/environ") else { continue }
            let vars = env.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if vars.contains("OMPI_COMM_WORLD_RANK=\(r)") && vars.contains(where: { $0.hasPrefix("OMPI_COMM_WORLD_SIZE=") })
                && (try? String(contentsOfFile: "/proc/\(p)/cmdline", encoding: .utf8))?.contains("emerald") == true {
                return p
            }
        }
        return nil
    }
}
