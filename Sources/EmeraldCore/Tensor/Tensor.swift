/// A row-major, contiguous float32 N-d array that can take part in autograd.
///
/// Every tensor is contiguous: ops that would make strided views (transpose,
/// slicing) copy instead. That keeps every kernel a plain loop over memory and
/// the autograd rules short. `reshape` is free: it shares the storage.
public final class Tensor {
    /// Dimensions, outermost first.
    public let shape: [Int]
    /// Number of elements.
    public let count: Int
    /// The memory this tensor reads from (shared with reshaped views).
    public private(set) var storage: Storage
    /// First element of this tensor inside `storage`.
    public private(set) var offset: Int
    /// Gradient of the loss with respect to this tensor, after `backward()`.
    public var grad: Tensor?
    /// Whether gradients flow to (and are stored for) this tensor.
    public var requiresGrad: Bool
    /// How to send this tensor's gradient to its inputs; nil for leaves.
    var gradFn: GradFn?

    /// Wraps existing storage.
    public init(shape: [Int], storage: Storage, offset: Int = 0, requiresGrad: Bool = false) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.count = shape.reduce(1, *)
        precondition(offset + count <= storage.count, "view exceeds storage")
        self.storage = storage
        self.offset = offset
        self.requiresGrad = requiresGrad
    }

    /// Uninitialised tensor from the buffer pool (kernels fill it).
    public convenience init(uninitialized shape: [Int]) {
        self.init(shape: shape, storage: Storage(count: shape.reduce(1, *)))
    }

    /// Uninitialised tensor on `backend`'s device (host memory from the pool on the CPU).
    public convenience init(uninitialized shape: [Int], on backend: any Backend) {
        let n = shape.reduce(1, *)
        self.init(shape: shape, storage: backend.device == .cpu ? Storage(count: n) : Storage(count: n, on: backend))
    }

    /// Tensor holding `values` (row-major) with the given shape.
    public convenience init(_ values: [Float], shape: [Int], requiresGrad: Bool = false) {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values do not fill shape \(shape)")
        self.init(uninitialized: shape)
        values.withUnsafeBufferPointer { src in data.update(from: src.baseAddress!, count: values.count) }
        self.requiresGrad = requiresGrad
    }

    /// The first element's address on the tensor's device: the engine's kernels read it;
    /// above the engine only I/O does, through `withHostBuffer` (on the CPU it is a host
    /// pointer).
    @inlinable public var data: UnsafeMutablePointer<Float> { storage.base + offset }

    /// Where the elements live.
    public var device: Device { storage.device }

    /// The backend that runs this tensor's ops.
    public var backend: any Backend {
        device == .cpu ? Backends.cpu : Backends.backend(for: device)!
    }

    /// Runs `body` with the elements in host memory — explicit host access for I/O and
    /// printing. Off the CPU they are downloaded first and uploaded back after `body`.
    public func withHostBuffer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        if device == .cpu { return try body(UnsafeMutableBufferPointer(start: data, count: count)) }
        let host = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(count, 1))
        defer { host.deallocate() }
        backend.download(data, to: host, count: count)
        let r = try body(UnsafeMutableBufferPointer(start: host, count: count))
        backend.upload(host, to: data, count: count)
        return r
    }

    /// Overwrites the elements with `source`'s (same element count; any devices), without
    /// recording a gradient.
    public func assign(from source: Tensor) {
        precondition(source.count == count, "assign: \(source.count) elements into \(count)")
        switch (source.device, device) {
        case (.cpu, .cpu): data.update(from: source.data, count: count)
        case (.cpu, _): backend.upload(source.data, to: data, count: count)
        case (_, .cpu): source.backend.download(source.data, to: data, count: count)
        default: source.withHostBuffer { h in backend.upload(h.baseAddress!, to: data, count: count) }
        }
    }

    /// Moves this leaf's elements to `device` in place (a model's parameters: the modules
    /// keep their tensors); its gradient is dropped.
    public func move(to device: Device) {
        precondition(gradFn == nil, "only a leaf tensor moves in place")
        guard device != self.device else { return }
        let moved = to(device)
        storage = moved.storage
        offset = 0
        grad = nil
    }

    /// A copy on `device` (this tensor itself when it is there already).
    public func to(_ device: Device) -> Tensor {
        if device == self.device { return self }
        guard let target = Backends.backend(for: device) else { preconditionFailure("no backend for \(device)") }
        let out = Tensor(shape: shape, storage: Storage(count: count, on: target))
        out.assign(from: self)
        return out
    }

    /// Number of dimensions.
    public var rank: Int { shape.count }

    /// Size of dimension `axis` (negative counts from the end).
    public func size(_ axis: Int) -> Int { shape[normalize(axis: axis)] }

    /// Maps a possibly negative axis to `0..<rank`.
    public func normalize(axis: Int) -> Int {
        let a = axis < 0 ? axis + rank : axis
        precondition(a >= 0 && a < Swift.max(rank, 1), "axis \(axis) out of range for shape \(shape)")
        return a
    }

    /// Copies the elements out (to the host).
    public var scalars: [Float] { withHostBuffer { Array($0) } }

    /// The single element of a one-element tensor.
    public var item: Float {
        precondition(count == 1, "item needs a single element, shape is \(shape)")
        return withHostBuffer { $0[0] }
    }

    /// A leaf copy sharing nothing with the graph.
    public func detached() -> Tensor { Tensor(shape: shape, storage: storage, offset: offset) }

    /// A contiguous copy of the data (no graph).
    public func copy() -> Tensor {
        let backend = self.backend
        let out = Tensor(uninitialized: shape, on: backend)
        backend.copy(data, to: out.data, count: count)
        return out
    }
}

extension Tensor: CustomStringConvertible {
    /// Shape and the first few values.
    public var description: String {
        let head = scalars.prefix(8).map { String(format: "%.4f", $0) }.joined(separator: ", ")
        return "Tensor\(shape)[\(head)\(count > 8 ? ", …" : "")]"
    }
}

import Foundation
