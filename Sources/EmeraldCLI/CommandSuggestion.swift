import ArgumentParser

/// The version `emerald --version` prints.
let emeraldVersion = "0.9.0"

/// "; did you mean 'train'?" for a mistyped subcommand.
enum CommandSuggestion {
    /// A hint when the first argument looks like a subcommand name but is none.
    static func hint(for arguments: [String], commands: [ParsableCommand.Type]) -> String? {
        guard let first = arguments.first, !first.hasPrefix("-") else { return nil }
        let names = commands.map { $0._commandName }
        guard !names.contains(first) else { return nil }
        let best = names.map { ($0, distance(first, $0)) }.min { $0.1 < $1.1 }
        guard let (name, d) = best, d <= Swift.max(2, first.count / 3) else {
            return "; commands: \(names.joined(separator: ", "))"
        }
        return "; did you mean '\(name)'?"
    }

    /// Levenshtein distance, transpositions counted as one edit ("trian" → "train").
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty || b.isEmpty { return a.count + b.count }
        var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                d[i][j] = Swift.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] { d[i][j] = Swift.min(d[i][j], d[i - 2][j - 2] + 1) }
            }
        }
        return d[a.count][b.count]
    }
}
