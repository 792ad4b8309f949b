import Emerald
import Foundation

/// libFuzzer entry: `encoder.json` and `vocab.bpe` bytes, separated by the first 0x00 byte →
/// GPT-2-style loading, then an encode and decode.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let cut = bytes.firstIndex(of: 0) ?? size
    let vocabulary = Data(bytes[..<cut]), merges = Data(bytes[Swift.min(cut + 1, size)...])
    guard let tok = try? ByteLevelBPETokenizer.load(vocabularyJSON: vocabulary, merges: merges, name: "fuzz") else { return 0 }
    let ids = tok.encode("Hello world, hello wörld")
    _ = tok.decode(ids)
    return 0
}
