import Emerald
import Foundation

/// The file each input is written to (one per process: libFuzzer runs inputs one at a time).
let shardPath = NSTemporaryDirectory() + "emerald-fuzz-shard-\(getpid()).bin"

/// libFuzzer entry: a token shard's bytes → mapping (header, size, ids against a vocabulary of
/// 300), then every token read.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard FileManager.default.createFile(atPath: shardPath, contents: Data(bytes: data, count: size)) else { return 0 }
    if let s = try? ShardedTokens(paths: [shardPath], vocabularySize: 300), s.count <= 1 << 20 {
        _ = s.allTokens()
    }
    return 0
}
