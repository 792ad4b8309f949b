/// Where a tensor's memory lives and its ops run.
public enum Device: Hashable, Sendable, CustomStringConvertible {
    /// Host memory, the CPU kernels (`CPUBackend`).
    case cpu
    /// NVIDIA GPU number N (a backend registers itself for it; none ships yet).
    case cuda(Int)

    /// "cpu", "cuda" (GPU 0) or "cuda:N"; nil for anything else.
    public init?(_ text: String) {
        switch text {
        case "cpu": self = .cpu
        case "cuda": self = .cuda(0)
        default:
            guard text.hasPrefix("cuda:"), let n = Int(text.dropFirst(5)), n >= 0 else { return nil }
            self = .cuda(n)
        }
    }

    /// "cpu" or "cuda:N".
    public var description: String {
        switch self {
        case .cpu: return "cpu"
        case .cuda(let n): return "cuda:\(n)"
        }
    }
}
