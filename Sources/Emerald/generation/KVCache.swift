import EmeraldCore

/// Keys and values of every attention layer of a model for one sequence's positions so far:
/// each new token then costs one position of work instead of the whole context. Made by
/// `LanguageModel.makeCache()`, passed to the model's forward, which extends it.
public final class KVCache {
    /// One cache per attention layer, in layer order.
    public let layers: [LayerKVCache]

    /// `count` layers' caches of `kvHeads` heads of `headSize` channels, `capacity` positions,
    /// in `storage`, on `backend`'s device (the model's).
    public init(layers count: Int, kvHeads: Int, headSize: Int, capacity: Int, storage: KVStorage = .fp32,
                on backend: any Backend = Backends.cpu) {
        layers = (0..<count).map { _ in
            LayerKVCache(kvHeads: kvHeads, headSize: headSize, capacity: capacity, storage: storage, on: backend)
        }
    }

    /// The storage a model decoding with `precision` on `backend` keeps keys and values in:
    /// bf16 beside int8 weights on the CPU (half the bytes; int8 decoding is approximate
    /// anyway), else fp32, so fp32 and bf16 decoding stay as exact as they were.
    public static func storage(for precision: DecodePrecision, on backend: any Backend) -> KVStorage {
        precision == .int8 && backend.device == .cpu ? .bf16 : .fp32
    }

    /// Positions the cache can hold (the model's context).
    public var capacity: Int { layers.first?.capacity ?? 0 }
    /// Positions filled: where the next token sits.
    public var length: Int { layers.first?.length ?? 0 }

    /// Forgets every position.
    public func reset() { for layer in layers { layer.reset() } }
}
