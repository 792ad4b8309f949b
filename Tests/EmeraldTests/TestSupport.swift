import Emerald
import Foundation
import XCTest

/// Paths and small builders shared by the tests.
enum TestSupport {
    /// The repository root (tests live in Tests/EmeraldTests).
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The guide's book in ../shared/data, beside the checkout.
    static var bookPath: String { repoRoot.deletingLastPathComponent().appendingPathComponent("shared/data/wizard_of_oz.txt").path }

    /// A fresh temporary folder.
    static func tempDir(_ name: String = #function) -> String {
        let d = NSTemporaryDirectory() + "emerald-tests-\(getpid())-\(name.filter(\.isLetter))-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    /// A tiny GPT config for fast tests.
    static func tinyGPT(vocab: Int = 11, block: Int = 16, norm: NormPlacement = .pre, tie: Bool = true,
                        dropout: Float = 0, activation: Activation = .gelu) -> GPTConfig {
        GPTConfig(vocabSize: vocab, blockSize: block, nLayer: 2, nHead: 2, nEmbd: 16, dropout: dropout,
                  activation: activation, norm: norm, tieWeights: tie)
    }

    /// Deterministic pseudo-text ids.
    static func ids(_ n: Int, vocab: Int, seed: UInt64 = 7) -> [Int32] {
        var rng = RandomGenerator(seed: seed)
        return (0..<n).map { _ in Int32(rng.nextInt(below: vocab)) }
    }

    /// max |a − b|.
    static func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        return zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }
}
