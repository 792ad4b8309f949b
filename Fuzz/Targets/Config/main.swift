import Emerald
import Foundation

/// libFuzzer entry: a config.json → Emerald's and Hugging Face's parsers, and the memory
/// estimate a loader checks before allocating (no model is built).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard let json = try? JSONSerialization.jsonObject(with: Data(bytes: data, count: size)) as? [String: Any] else { return 0 }
    if let c = try? ModelConfig(json: json, path: "config.json") {
        _ = MemoryEstimate.weightBytes(c)
        _ = try? c.requireFits(storedParameters: 1e6, in: "model.safetensors", configPath: "config.json")
    }
    if let g = try? GPTConfig(huggingFace: json, path: "config.json") { _ = try? g.huggingFaceJSON(endOfTextID: 0) }
    return 0
}
