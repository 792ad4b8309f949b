import Emerald

/// libFuzzer entry: a tar archive's bytes → the member walk, every member read to its end.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let reader = BufferedReader(MemoryStream(Array(UnsafeBufferPointer(start: data, count: size))), capacity: 1 << 16)
    var buffer = [UInt8](repeating: 0, count: 4096)
    try? TarReader(reader, name: "fuzz.tar").forEachFile { _, stream in
        while try buffer.withUnsafeMutableBytes({ try stream.read(into: $0) }) > 0 {}
    }
    return 0
}
