import EmeraldCore
import EmeraldTestSupport
import XCTest

final class BackendTests: XCTestCase {
    func testDeviceNames() {
        XCTAssertEqual(Device("cpu"), .cpu)
        XCTAssertEqual(Device("cuda"), .cuda(0))
        XCTAssertEqual(Device("cuda:3"), .cuda(3))
        XCTAssertNil(Device("cuda:-1"))
        XCTAssertNil(Device("gpu"))
        XCTAssertEqual(Device.cuda(2).description, "cuda:2")
    }

    func testCPUBackendIsItsOwnReference() {
        BackendConformance.check(Backends.cpu)
    }

    /// A registered backend receives the ops of tensors on its device (and nothing
    /// else), and passes the conformance checks.
    func testRegisteredBackendRunsItsDevicesOps() {
        let twin = HostTwinBackend(.cuda(7))
        XCTAssertNil(Backends.backend(for: .cuda(7)))
        Backends.register(twin)
        XCTAssertTrue(Backends.backend(for: .cuda(7)) === twin)
        XCTAssertTrue(Backends.devices.contains(.cuda(7)))
        BackendConformance.check(twin)
        for op in ["gemm", "attentionForward", "attentionBackward", "cachedAttention", "softmaxCrossEntropy", "adamW",
                   "sumOfSquares", "sample", "quantize", "upload", "download", "allocate"] {
            XCTAssertGreaterThan(twin.calls[op] ?? 0, 0, "\(op) never reached the backend")
        }
        let before = twin.calls["gemm"] ?? 0
        _ = Tensor.ones([2, 3]).linear(weight: .ones([4, 3]), bias: nil)
        XCTAssertEqual(twin.calls["gemm"] ?? 0, before, "a CPU tensor's product went to another device")
    }
}
