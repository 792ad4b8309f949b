#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One recorded op: its inputs and how to push an output gradient into them.
final class GradFn {
    let inputs: [Tensor]
    /// Receives the output's gradient; accumulates into the inputs' grads.
    let backward: (Tensor) -> Void
    init(_ inputs: [Tensor], _ backward: @escaping (Tensor) -> Void) {
        self.inputs = inputs
        self.backward = backward
    }
}

/// The autograd switch, per thread: data-parallel shards record their graphs at once, and
/// a `withNoGrad` in one (broadcasting ops use one inside) must not stop the others recording.
public enum Autograd {
    /// False inside `withNoGrad` on this thread: ops record nothing.
    public static var isEnabled: Bool {
        get { pthread_getspecific(key) == nil }
        set { pthread_setspecific(key, newValue ? nil : UnsafeRawPointer(bitPattern: 1)) }
    }

    nonisolated(unsafe) private static var key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()
}

/// Runs `body` without recording a graph (evaluation, sampling).
public func withNoGrad<R>(_ body: () throws -> R) rethrows -> R {
    let saved = Autograd.isEnabled
    Autograd.isEnabled = false
    defer { Autograd.isEnabled = saved }
    return try body()
}

extension Tensor {
    /// Attaches a backward rule when any input needs gradients.
    @discardableResult
    func record(_ inputs: [Tensor], _ backward: @escaping (Tensor) -> Void) -> Tensor {
        if Autograd.isEnabled && inputs.contains(where: { $0.requiresGrad }) {
            requiresGrad = true
            gradFn = GradFn(inputs, backward)
        }
        return self
    }

    /// The gradient backward accumulates into on this thread: `grad`, or for a leaf while
    /// a data-parallel shard's `GradientSink` is installed, the sink's copy.
    private var gradSlot: Tensor? {
        get {
            if gradFn == nil, let sink = GradientSink.current { return sink[self] }
            return grad
        }
        set {
            if gradFn == nil, let sink = GradientSink.current { sink[self] = newValue } else { grad = newValue }
        }
    }

    /// Adds `g` into this tensor's gradient (allocating it on first use).
    public func accumulateGrad(_ g: Tensor) {
        precondition(g.count == count, "gradient shape \(g.shape) does not match \(shape)")
        guard requiresGrad else { return }
        let backend = self.backend
        if let grad = gradSlot {
            backend.binary(.add, grad.data, g.data, into: grad.data, count: count)
        } else {
            let c = Tensor(uninitialized: shape, on: backend)
            backend.copy(g.data, to: c.data, count: count)
            gradSlot = c
        }
    }

    /// Adds `g` into the gradient, allocating a zeroed one if needed, and lets
    /// `body` write into it directly (avoids a temporary for scatter-style rules).
    func withGrad(_ body: (UnsafeMutablePointer<Float>) -> Void) {
        guard requiresGrad else { return }
        if let grad = gradSlot { body(grad.data); return }
        let fresh = Tensor.full(shape, 0, on: backend)
        gradSlot = fresh
        body(fresh.data)
    }

    /// Lets `body` write the gradient GEMM-style: with beta 0 into a new, uninitialised
    /// buffer it must overwrite (no zero fill), with beta 1 into the existing one.
    func withGrad(beta body: (UnsafeMutablePointer<Float>, Float) -> Void) {
        guard requiresGrad else { return }
        if let grad = gradSlot {
            body(grad.data, 1)
        } else {
            let fresh = Tensor(uninitialized: shape, on: backend)
            body(fresh.data, 0)
            gradSlot = fresh
        }
    }

    /// Like `accumulateGrad`, for a gradient tensor made just for this call
    /// and referenced nowhere else: on first use it becomes the gradient
    /// without a copy.
    func adoptGrad(_ fresh: Tensor) {
        guard requiresGrad else { return }
        if gradSlot == nil && fresh.shape == shape && fresh.offset == 0 && fresh.storage.count == fresh.count {
            gradSlot = fresh
        } else {
            accumulateGrad(fresh)
        }
    }

    /// Reverse-mode differentiation from this scalar (or from `seed` for non-scalars).
    /// `onLeafReady` is called with each leaf (a parameter) as soon as its gradient is
    /// complete — when backward reaches it, after every op that reads it — so a caller can
    /// send finished gradients while the rest of backward runs.
    public func backward(seed: Tensor? = nil, onLeafReady: ((Tensor) -> Void)? = nil) {
        precondition(seed != nil || count == 1, "backward() without a seed needs a scalar, shape is \(shape)")
        // Topological order by iterative DFS (graphs are thousands of nodes deep).
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (t, expanded) = stack.popLast() {
            if expanded { order.append(t); continue }
            if !visited.insert(ObjectIdentifier(t)).inserted { continue }
            stack.append((t, true))
            for p in t.gradFn?.inputs ?? [] where p.requiresGrad && !visited.contains(ObjectIdentifier(p)) {
                stack.append((p, false))
            }
        }
        accumulateGrad(seed ?? .ones(shape))
        for t in order.reversed() {
            if t.gradFn == nil, let onLeafReady, t !== self { onLeafReady(t); continue }
            guard let fn = t.gradFn, let g = t.grad else { continue }
            fn.backward(g)
            // Intermediate gradients are not needed once propagated.
            t.grad = nil
            t.gradFn = nil
        }
    }

    /// Drops the gradient.
    public func zeroGrad() { grad = nil }
}
