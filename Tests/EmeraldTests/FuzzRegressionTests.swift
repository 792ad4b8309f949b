import Emerald
import Foundation
import XCTest

/// Inputs the fuzz targets (Fuzz/, scripts/fuzz) once crashed on, replayed through the same
/// parsers: each must now be a clean error. The files are the committed regression seeds.
final class FuzzRegressionTests: XCTestCase {
    private func seed(_ target: String, _ name: String) throws -> Data {
        let path = TestSupport.repoRoot.appendingPathComponent("Fuzz/corpus/\(target)/\(name)").path
        return try XCTUnwrap(FileManager.default.contents(atPath: path), path)
    }

    func testSpecialTokenIdOutOfRange() throws {
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: try seed("TokenizerJSON", "regression-special-token-id")) as? [String: Any])
        XCTAssertThrowsError(try loadTokenizer(json: json, path: "t.json")) { e in
            XCTAssertTrue("\(e)".contains("outside 0..<10000000"), "\(e)")
        }
    }

    func testTarSizesThatOverflow() throws {
        // A pax record whose length has 40 digits: the record is ignored (it overflowed before).
        var bytes = [UInt8](try seed("Tar", "regression-pax-length-overflow"))
        XCTAssertNoThrow(try TarReader(BufferedReader(MemoryStream(bytes)), name: "t").forEachFile { _, _ in })
        // A negative pax size is a corrupt archive.
        bytes = [UInt8](try seed("Tar", "regression-negative-pax-size"))
        XCTAssertThrowsError(try TarReader(BufferedReader(MemoryStream(bytes)), name: "t").forEachFile { _, _ in }) { e in
            XCTAssertTrue("\(e)".contains("corrupt pax header"), "\(e)")
        }
    }

    func testShardCountPastIntMax() throws {
        let path = TestSupport.tempDir() + "/shard.bin"
        try seed("Shards", "regression-count-overflow").write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try ShardedTokens(paths: [path])) { e in XCTAssertTrue("\(e)".contains("header says"), "\(e)") }
    }
}
