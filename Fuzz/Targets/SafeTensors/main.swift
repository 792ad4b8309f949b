import Emerald

/// libFuzzer entry: a safetensors file's bytes → the header parser (sizes, offsets, tiling).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    _ = try? SafeTensors.Header(UnsafeRawBufferPointer(start: data, count: size), path: "fuzz.safetensors")
    return 0
}
