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
    public static func weightBytes(_ model: ModelConfig) -> Double {
        switch model {
        case .bigram(let c): return 4 * Double(c.vocabSize) * Double(c.vocabSize)
        case .gpt(let c):
            let w = Double(c.nEmbd), v = Double(c.vocabSize), t = Double(c.blockSize), l = Double(c.nLayer)
            return 4 * (12 * l * w * w + 13 * l * w + (v + t) * w + (c.tieWeights ? 0 : v * w))
        }
    }

    /// Training: weights, gradients and AdamW's two moments (4× the weights), plus one
    /// micro-batch's activations — per layer about (16·C + 2·H·T) floats per token (q, k, v,
    /// attention output, the 4·C MLP both sides, LayerNorms, residuals, the attention
    /// probabilities), and the logits with their softmax and gradient (3·V per token).
    public static func trainingBytes(_ model: ModelConfig, batchSize: Int, blockSize: Int) -> Double {
        let tokens = Double(batchSize) * Double(blockSize)
        let activations: Double
        switch model {
        case .bigram(let c): activations = 3 * Double(c.vocabSize)
        case .gpt(let c):
            activations = Double(c.nLayer) * (16 * Double(c.nEmbd) + 2 * Double(c.nHead) * Double(blockSize)) + 3 * Double(c.vocabSize)
        }
        return 4 * weightBytes(model) + 4 * tokens * activations
    }

    /// Generation: the weights, a key/value cache of the whole context, one row of logits.
    public static func generationBytes(_ model: ModelConfig) -> Double {
        guard case .gpt(let c) = model else { return weightBytes(model) }
        return weightBytes(model) + 4 * 2 * Double(c.nLayer) * Double(c.blockSize) * Double(c.nEmbd) + 4 * Double(c.vocabSize)
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
