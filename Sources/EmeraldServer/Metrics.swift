import Emerald
import Foundation
import Synchronization

/// Request counts by endpoint and status, shown with the decoder's statistics at `GET /metrics`
/// in Prometheus' text format (version 0.0.4), written by hand.
final class Metrics: Sendable {
    private struct Key: Hashable { var endpoint: String; var status: Int }
    private let counts = Mutex<[Key: Int]>([:])

    /// Counts one answered request. Unknown paths count as "other", so clients cannot grow the table.
    func record(endpoint: String, status: Int) {
        let known = ["/", "/health", "/metrics", "/v1/models", "/v1/completions", "/v1/chat/completions"]
        let key = Key(endpoint: known.contains(endpoint) ? endpoint : "other", status: status)
        counts.withLock { $0[key, default: 0] += 1 }
    }

    /// The exposition text.
    func render(_ s: BatchDecoderStatistics) -> String {
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: String)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (labels, value) in samples { out += name + (labels.isEmpty ? "" : "{\(labels)}") + " " + value + "\n" }
        }
        let requests = counts.withLock { $0 }.sorted { ($0.key.endpoint, $0.key.status) < ($1.key.endpoint, $1.key.status) }
        metric("emerald_http_requests_total", "counter", "HTTP requests answered, by endpoint and status.",
               requests.map { ("endpoint=\"\($0.key.endpoint)\",status=\"\($0.key.status)\"", String($0.value)) })
        metric("emerald_generation_requests_total", "counter", "Generation requests accepted by the decoder.", [("", String(s.requests))])
        metric("emerald_prompt_tokens_total", "counter", "Prompt tokens read.", [("", String(s.promptTokens))])
        metric("emerald_generated_tokens_total", "counter", "Tokens generated.", [("", String(s.generatedTokens))])
        metric("emerald_decode_steps_total", "counter", "Decode steps run.", [("", String(s.steps))])
        metric("emerald_tokens_per_second", "gauge", "Generated tokens per second, recently.", [("", String(format: "%.3f", s.tokensPerSecond))])
        metric("emerald_queue_depth", "gauge", "Requests waiting for a batch slot.", [("", String(s.queued))])
        metric("emerald_active_sequences", "gauge", "Sequences being decoded.", [("", String(s.active))])
        metric("emerald_last_batch_size", "gauge", "Sequences in the last decode step.", [("", String(s.lastBatchSize))])
        return out
    }
}
