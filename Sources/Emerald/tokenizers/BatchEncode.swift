extension ByteLevelBPETokenizer {
    /// Ids for many texts at once, split across the thread pool (each text is
    /// encoded independently, so results equal `encodeOrdinary` one by one).
    public func encodeBatch(_ texts: [String]) -> [[Int32]] {
        var out = [[Int32]](repeating: [], count: texts.count)
        out.withUnsafeMutableBufferPointer { results in
            let r = results.baseAddress!
            parallelFor(texts.count) { range in
                for i in range { (r + i).pointee = encodeOrdinary(texts[i]) }
            }
        }
        return out
    }
}
