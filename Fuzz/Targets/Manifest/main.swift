import Emerald
import Foundation

/// A prepared corpus whose manifest.json each input replaces: a char tokenizer and two shards.
let corpus: String = {
    let dir = NSTemporaryDirectory() + "emerald-fuzz-corpus-\(getpid())"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    var o = PrepareOptions(inputs: [dir + ".txt"], output: dir)
    _ = FileManager.default.createFile(atPath: dir + ".txt", contents: Data(String(repeating: "Dorothy and Toto.\n", count: 20).utf8))
    o.valSplit = .tail
    o.threads = 1
    _ = try! CorpusPreparer.run(o)
    return dir
}()

/// libFuzzer entry: a manifest.json → opening the prepared corpus (vocabulary, ids, shard
/// list and counts checked against the files).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard FileManager.default.createFile(atPath: corpus + "/manifest.json", contents: Data(bytes: data, count: size)) else { return 0 }
    if let c = try? PreparedCorpus(directory: corpus), c.train.count + c.val.count <= 1 << 20 {
        _ = c.train.allTokens()
    }
    return 0
}
