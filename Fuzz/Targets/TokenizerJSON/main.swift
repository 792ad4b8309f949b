import Emerald
import Foundation

/// libFuzzer entry: a tokenizer.json (Hugging Face's or Emerald's char form) → load, then a
/// round trip of a fixed text through whatever loaded.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard let json = try? JSONSerialization.jsonObject(with: Data(bytes: data, count: size)) as? [String: Any],
          let tok = try? loadTokenizer(json: json, path: "fuzz.json") else { return 0 }
    if let ids = try? tok.encode("Hello wörld 🦁\n  the end") { _ = tok.decode(ids) }
    if let ids = try? tok.encode("<s><|begin_of_text|> It'S 12345\r\n\t x", addSpecialTokens: true) {
        var stream = TextStream(tok)
        for id in ids { _ = stream.push(id) }
        _ = stream.finish()
    }
    _ = tok.decode([0, 1, 2, -1, Int32.max])
    return 0
}
