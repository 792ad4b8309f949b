import Emerald
import Foundation

/// libFuzzer entry: a config.json → Emerald's and Hugging Face's parsers, and the memory
/// estimate a loader checks before allocating (no model is built).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Data(bytes: data, count: size)
    if let c = try? ModelConfig(jsonData: bytes, path: "config.json") {
        _ = MemoryEstimate.weightBytes(c)
        _ = try? c.requireFits(storedParameters: 1e6, in: "model.safetensors", configPath: "config.json")
    }
    if let hf = try? GPT2HuggingFaceConfig(jsonData: bytes, path: "config.json"),
       let g = try? GPTConfig(huggingFace: hf, path: "config.json") {
        _ = try? g.huggingFaceConfig(endOfTextID: 0).jsonData()
    }
    return 0
}
