import CEmeraldAssets
import Foundation

/// A file from the repository's `assets/` folder, compiled into the binary (see assets/README.md).
public struct ShippedAsset: @unchecked Sendable {
    /// Its path in the repository, used in messages.
    public let name: String
    /// Its bytes (static memory of the binary, not copied until used).
    public let bytes: UnsafeBufferPointer<UInt8>

    init(_ name: String, _ asset: emerald_asset) {
        self.name = name
        bytes = UnsafeBufferPointer(start: asset.bytes, count: asset.count)
    }

    /// The bytes as `Data`, without copying.
    public var data: Data { Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: bytes.baseAddress!), count: bytes.count, deallocator: .none) }

    /// The course's book.
    public static let book = ShippedAsset("assets/wizard_of_oz.txt", emerald_asset_book())
    /// GPT-2's `encoder.json`.
    public static let gpt2Encoder = ShippedAsset("assets/gpt2/encoder.json", emerald_asset_gpt2_encoder())
    /// GPT-2's `vocab.bpe`.
    public static let gpt2Merges = ShippedAsset("assets/gpt2/vocab.bpe", emerald_asset_gpt2_merges())
}

/// The guide's corpus: *Dorothy and the Wizard in Oz* (L. Frank Baum, 1908), shipped with
/// Emerald; training commands use it when no `--data` is given.
public enum Book {
    /// How messages and run settings name the shipped book.
    public static let name = "the shipped book (assets/wizard_of_oz.txt)"

    /// The book as `TextCorpus.load` reads any file: BOM dropped, CRLF → LF.
    public static func text() throws -> String { try TextCorpus.decode(ShippedAsset.book.data, path: ShippedAsset.book.name) }

    /// `$XDG_CACHE_HOME/emerald` or `~/.cache/emerald`: downloaded hub models.
    public static var cacheDirectory: String {
        let env = ProcessInfo.processInfo.environment
        if let x = env["XDG_CACHE_HOME"], !x.isEmpty { return x + "/emerald" }
        return (env["HOME"] ?? NSTemporaryDirectory()) + "/.cache/emerald"
    }
}
