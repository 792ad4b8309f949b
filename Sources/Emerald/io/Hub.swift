import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Turns `--model` values into local folders: a path is used as is; a Hugging Face hub
/// id (`gpt2`, `openai-community/gpt2`) is looked up in Emerald's cache, then in
/// `transformers`' cache, and downloaded into Emerald's cache when online.
public enum Hub {
    /// Files fetched for a model when present upstream; `config.json` and weights are required.
    static let optionalFiles = ["generation_config.json", "tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json"]

    /// `~/.cache/emerald/hub` (or under `$XDG_CACHE_HOME`).
    public static var cacheDirectory: String { Book.cacheDirectory + "/hub" }

    /// A local folder for `spec`.
    public static func resolve(_ spec: String, log: (String) -> Void = { _ in }) throws -> String {
        let fm = FileManager.default
        if fm.fileExists(atPath: spec) { return spec }
        guard isHubID(spec) else { throw EmeraldError.fileNotFound(spec) }
        let local = cacheDirectory + "/" + spec.replacingOccurrences(of: "/", with: "--")
        if fm.fileExists(atPath: local + "/config.json") { return local }
        if let snapshot = transformersSnapshot(spec) { return snapshot }
        let env = ProcessInfo.processInfo.environment
        let howTo = "download the folder elsewhere (config.json, model.safetensors, tokenizer.json) and pass its path as `model`: path/to/\(spec)"
        if env["HF_HUB_OFFLINE"] == "1" || env["EMERALD_OFFLINE"] == "1" {
            throw EmeraldError.download("no folder \(spec), and as a hub model id it is not cached and offline mode is set (HF_HUB_OFFLINE/EMERALD_OFFLINE); \(howTo)")
        }
        log("downloading \(spec) from huggingface.co into \(local)…")
        do { try download(spec, into: local, log: log) } catch let e as EmeraldError {
            throw EmeraldError.download("no folder \(spec), and downloading it from huggingface.co failed (\(e.description)); offline? \(howTo)")
        }
        return local
    }

    /// `name` or `owner/name` with the hub's characters.
    static func isHubID(_ s: String) -> Bool {
        let parts = s.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { return false }
        return parts.allSatisfy { p in
            !p.isEmpty && p.first != "." && p.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
        }
    }

    /// A complete snapshot in `transformers`' cache (`models--OWNER--NAME/snapshots/REV`).
    static func transformersSnapshot(_ id: String) -> String? {
        let env = ProcessInfo.processInfo.environment
        let root = env["HF_HUB_CACHE"] ?? ((env["HF_HOME"] ?? ((env["HOME"] ?? "") + "/.cache/huggingface")) + "/hub")
        let repo = root + "/models--" + id.replacingOccurrences(of: "/", with: "--")
        let fm = FileManager.default
        var revisions: [String] = []
        if let ref = fm.contents(atPath: repo + "/refs/main") {
            revisions.append(String(decoding: ref, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        revisions += ((try? fm.contentsOfDirectory(atPath: repo + "/snapshots")) ?? []).sorted()
        for r in revisions {
            let dir = repo + "/snapshots/" + r
            if fm.fileExists(atPath: dir + "/config.json")
                && (fm.fileExists(atPath: dir + "/model.safetensors") || fm.fileExists(atPath: dir + "/model.safetensors.index.json")) {
                return dir
            }
        }
        return nil
    }

    /// Fetches a model into `dir` through a temporary sibling folder renamed at the end.
    static func download(_ id: String, into dir: String, log: (String) -> Void) throws {
        let fm = FileManager.default
        let tmp = dir + ".download-\(getpid())"
        try? fm.removeItem(atPath: tmp)
        try fm.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        do { try fetchAll(id, into: tmp, log: log) } catch {
            try? fm.removeItem(atPath: tmp)  // a failed download leaves nothing behind
            throw error
        }
        try? fm.removeItem(atPath: dir)
        try fm.createDirectory(atPath: parentFolder(dir), withIntermediateDirectories: true)
        guard rename(tmp, dir) == 0 else {
            try? fm.removeItem(atPath: tmp)
            throw EmeraldError.io("cannot move \(tmp) to \(dir)")
        }
    }

    /// Every file of a model into `tmp`.
    private static func fetchAll(_ id: String, into tmp: String, log: (String) -> Void) throws {
        func fetch(_ file: String, required: Bool) throws -> Bool {
            let url = URL(string: "https://huggingface.co/\(id)/resolve/main/\(file)")!
            switch fetchFile(url, to: tmp + "/" + file) {
            case .ok: log("  \(file)"); return true
            case .missing where !required: return false
            case .missing: throw EmeraldError.download("\(file) not found (HTTP 404)")
            case .failed(let why): throw EmeraldError.download(why)
            }
        }
        _ = try fetch("config.json", required: true)
        if try !fetch("model.safetensors", required: false) {
            guard try fetch("model.safetensors.index.json", required: false) else {
                throw EmeraldError.download("\(id) has no model.safetensors (Emerald does not read pytorch_model.bin)")
            }
            let index = try AtomicFile.readJSON(tmp + "/model.safetensors.index.json")
            for shard in Set(((index["weight_map"] as? [String: String]) ?? [:]).values).sorted() {
                _ = try fetch(shard, required: true)
            }
        }
        for f in optionalFiles { _ = try fetch(f, required: false) }
    }

    enum FetchResult { case ok, missing, failed(String) }

    /// One blocking download to `path`.
    static func fetchFile(_ url: URL, to path: String) -> FetchResult {
        final class Box: @unchecked Sendable { var result = FetchResult.failed("no response") }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        var request = URLRequest(url: url)
        request.timeoutInterval = 60
        if let token = ProcessInfo.processInfo.environment["HF_TOKEN"] { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        URLSession.shared.downloadTask(with: request) { file, response, error in
            defer { done.signal() }
            if let error { box.result = .failed(error.localizedDescription); return }
            let status = (response as? HTTPURLResponse)?.statusCode ?? 0
            if status == 404 { box.result = .missing; return }
            guard status == 200, let file else { box.result = .failed("HTTP \(status)"); return }
            try? FileManager.default.removeItem(atPath: path)
            do { try FileManager.default.moveItem(at: file, to: URL(fileURLWithPath: path)); box.result = .ok }
            catch { box.result = .failed("cannot save \(path)") }
        }.resume()
        done.wait()
        return box.result
    }
}

extension Checkpoint {
    /// A model named the way commands take `--model`: a folder (Emerald checkpoint, training
    /// run, Hugging Face GPT-2), or a hub id found in the caches or downloaded (see `Hub`).
    public static func load(model spec: String, log: (String) -> Void = { _ in }) throws -> Checkpoint {
        try load(from: Hub.resolve(spec, log: log))
    }
}
