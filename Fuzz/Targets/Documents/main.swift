import Emerald

/// libFuzzer entry: a file's bytes → `prepare`'s document reader (xz/gzip/tar by content, then
/// JSON lines by name), every document decoded as `prepare` decodes it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let reader = BufferedReader(MemoryStream(Array(UnsafeBufferPointer(start: data, count: size))), capacity: 1 << 16)
    var decoder = DocumentDecoder()
    try? DocumentReader.read(reader, name: "fuzz.jsonl") { doc in
        doc.bytes.withUnsafeBufferPointer { decoder.decode($0) }
    }
    return 0
}
