import Foundation

/// What a configuration will allocate, estimated before anything is allocated, so an absurd
/// size (`--batch-size 1000000000000`, `--n-embd 10^12`) is one error line naming the need
/// instead of an out-of-memory crash. Figures are in bytes, as Doubles (no overflow).
public enum MemoryEstimate {
    /// Bytes of physical memory, or nil when unknown.
    public static var physicalBytes: Double? {
        let total = ProcessInfo.processInfo.physicalMemory
        return total > 0 ? Double(total) : nil
    }

    /// Float32 weights of a model.
    public static func weightBytes(_ model: ModelConfig) -> Double { 4 * model.family.parameterCount }

    /// Training: weights, gradients and AdamW's two moments (4× the weights), plus one
    /// micro-batch's activations (the family's estimate per token).
    public static func trainingBytes(_ model: ModelConfig, batchSize: Int, blockSize: Int) -> Double {
        let tokens = Double(batchSize) * Double(blockSize)
        return 4 * weightBytes(model) + 4 * tokens * model.family.activationFloatsPerToken(blockSize: blockSize)
    }

    /// Generation: the weights, a key/value cache of the whole context, one row of logits.
    public static func generationBytes(_ model: ModelConfig) -> Double {
        weightBytes(model) + 4 * model.family.cacheFloats + 4 * Double(model.vocabularySize)
    }

    /// Throws when `bytes` exceeds this machine's memory, naming `what` and both sizes.
    public static func requireFits(_ bytes: Double, _ what: String) throws {
        guard let total = physicalBytes else { return }
        guard bytes.isFinite && bytes <= total else {
            throw EmeraldError.invalidArgument("\(what) needs about \(format(bytes)) of memory, more than this machine's \(format(total)); choose smaller sizes")
        }
    }

    /// "1.5 GiB", "3.2e+15 GiB".
    public static func format(_ bytes: Double) -> String {
        let gib = bytes / 1_073_741_824
        if gib >= 1e6 || !gib.isFinite { return String(format: "%.2g GiB", gib) }
        if gib >= 1 { return String(format: "%.1f GiB", gib) }
        return String(format: "%.0f MiB", bytes / 1_048_576)
    }
}
