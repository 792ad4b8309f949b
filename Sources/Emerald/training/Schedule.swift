import Foundation

/// Learning rate per step: linear warmup, then cosine decay to `minLR`
/// (constant when `minLR == maxLR`), as in nanoGPT.
public struct LRSchedule: Sendable, Equatable {
    /// Peak learning rate.
    public var maxLR: Float
    /// Floor reached at `decaySteps`.
    public var minLR: Float
    /// Steps of linear warmup.
    public var warmupSteps: Int
    /// Step at which the cosine reaches `minLR`.
    public var decaySteps: Int

    /// A schedule.
    public init(maxLR: Float, minLR: Float, warmupSteps: Int, decaySteps: Int) {
        self.maxLR = maxLR; self.minLR = minLR; self.warmupSteps = warmupSteps; self.decaySteps = decaySteps
    }

    /// The rate for `step` (0-based).
    public func callAsFunction(_ step: Int) -> Float {
        if step < warmupSteps { return maxLR * Float(step + 1) / Float(warmupSteps) }
        if step >= decaySteps { return minLR }
        let ratio = Double(step - warmupSteps) / Double(Swift.max(1, decaySteps - warmupSteps))
        let coeff = 0.5 * (1 + cos(Double.pi * ratio))
        return minLR + Float(coeff) * (maxLR - minLR)
    }
}
