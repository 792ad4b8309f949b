import Foundation
import XCTest

/// The int8 products' three compiled paths (AVX-512 VNNI, AVX2, portable C; CEmeraldQ8.h)
/// give the same floats, so a model decodes the same tokens on every machine: `scripts/q8-paths`
/// builds tests/q8/paths.c once per path this CPU runs and compares the outputs bit for bit.
final class Q8PathsTests: XCTestCase {
    func testEveryPathGivesTheSameFloats() throws {
        let root = TestSupport.repoRoot.path
        let child = try Child("/bin/bash", [root + "/scripts/q8-paths"], in: TestSupport.tempDir("q8paths"), stderrToStdout: true)
        XCTAssertTrue(child.wait(timeout: 300), "scripts/q8-paths ran past 300 s")
        let out = String(decoding: child.stdout, as: UTF8.self)
        if child.exitStatus == 77 { throw XCTSkip(out) }
        XCTAssertEqual(child.exitStatus, 0, out)
        XCTAssertTrue(out.contains("identical"), out)
        print(out, terminator: "")
    }
}
