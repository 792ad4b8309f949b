import Foundation

/// The token pass of `emerald prepare`: documents → tokens → shards, in one
/// read of the inputs.
extension CorpusPreparer {
    /// One document's result, from a worker to the writer.
    struct Outcome {
        enum Status { case ok, empty, invalid, malformed }
        var status: Status
        /// Token ids; for a char vocabulary built on the way, the scalars (U+0003 removed).
        var tokens: [UInt32]
        var bytes: Int
        var repaired: Bool
    }

    typealias ShardList = [(file: String, tokens: Int)]

    /// A worker sends its outcomes in batches of about this many bytes: one
    /// hand-over (lock, wake-up) per document cost ~6% of the CPU time.
    static let batchLimit = 1 << 20

    /// The pass's writers; with `chars`, shards are provisional (see `CharIDs`).
    struct TokenPass {
        var train: ShardWriter
        var val: ShardWriter
        var chars: CharIDs?
    }

    /// Runs the pass. `tokenizer` nil: build the char vocabulary on the way
    /// (`CharIDs`) and leave provisional shards for `ProvisionalShards.finish`.
    static func writeShards(_ files: [String], tokenizer: (any Tokenizer)?, options: PrepareOptions, counter: ByteCounter,
                            totalBytes: Int, summary: inout PrepareSummary) throws -> TokenPass {
        let policy = options.invalidUTF8, badLines = options.badLines, tail = options.valSplit == .tail
        // Characters map through a flat table; other tokenizers encode strings.
        var table: [Int32]?
        if let c = tokenizer as? CharTokenizer {
            var t = [Int32](repeating: -1, count: 0x110000)
            for (i, s) in c.vocabulary.enumerated() { t[Int(s.value)] = Int32(i) }
            table = t
        }
        let chars = tokenizer == nil ? CharIDs() : nil
        let charVocab = tokenizer?.vocabularySize ?? 0
        let states = (0...options.threads).map { _ in SlotState() }
        let lookup = table
        let tokenizerName = options.tokenizer
        let width = chars == nil ? summary.tokenWidth : 2
        let train = ShardWriter(directory: options.output, split: "train", width: width,
                                shardTokens: options.shardTokens, vocabularySize: summary.vocabularySize)
        let val = ShardWriter(directory: options.output, split: "val", width: width,
                              shardTokens: options.shardTokens, vocabularySize: summary.vocabularySize)
        train.provisional = chars != nil
        val.provisional = chars != nil
        let progress = PrepareProgress(label: "tokens", options: options, counter: counter, totalBytes: totalBytes)
        let pipeline = OrderedPipeline<[Outcome]>(workers: options.threads)
        var index = 0
        var eot = [UInt32(bitPattern: summary.eotID)]
        // Kept documents held back until `chars` freezes its guess.
        var held: [(tokens: [UInt32], isVal: Bool)] = []
        var heldTokens = 0
        let seed = options.seed, rate = options.sampleRate, fraction = options.valFraction, guessTokens = options.charGuessTokens
        var s = summary

        /// Writes a char document through `chars` (after the freeze).
        func writeChars(_ scalars: [UInt32], _ w: ShardWriter, _ chars: CharIDs) throws {
            let (ids, maxID) = scalars.withUnsafeBufferPointer { chars.map($0) }
            if chars.count > 65536 && train.width == 2 {  // ids no longer fit UInt16
                try train.widen()
                try val.widen()
            }
            try w.append(ids, maxID: maxID)
            try eot.withUnsafeBufferPointer { try w.append($0, maxID: $0[0]) }
        }
        func freeze(_ chars: CharIDs) throws {
            chars.freeze()
            eot[0] = chars.endOfTextID
            for h in held { try writeChars(h.tokens, h.isVal ? val : train, chars) }
            held = []
        }

        /// One document, in input order: counts, the sample/split decision, the shards.
        func consume(_ o: Outcome) throws {
            defer { index += 1 }
            s.documentsRead += 1
            s.textBytes += o.bytes
            switch o.status {
            case .empty: s.emptyDocuments += 1; progress.tick(documents: 1, bytes: o.bytes, tokens: 0); return
            case .invalid: s.invalidUTF8Documents += 1; progress.tick(documents: 1, bytes: o.bytes, tokens: 0); return
            case .malformed: s.badLines += 1; progress.tick(documents: 1, bytes: o.bytes, tokens: 0); return
            case .ok: if o.repaired { s.invalidUTF8Documents += 1 }
            }
            guard DocumentSplit.isSampled(index: index, seed: seed, rate: rate) else {
                o.tokens.withUnsafeBufferPointer { chars?.register($0) }  // the vocabulary covers every document
                s.sampledOut += 1
                progress.tick(documents: 1, bytes: o.bytes, tokens: 0)
                return
            }
            // Whole documents to one split, or (tail) each document's end to validation.
            var parts: [(tokens: [UInt32], isVal: Bool)]
            if tail {
                let cut = Int((Double(o.tokens.count) * (1 - fraction)).rounded(.down))
                parts = [(Array(o.tokens[..<cut]), false), (Array(o.tokens[cut...]), true)].filter { !$0.tokens.isEmpty }
            } else {
                parts = [(o.tokens, DocumentSplit.isValidation(index: index, seed: seed, fraction: fraction))]
            }
            for (tokens, isVal) in parts {
                let w = isVal ? val : train
                if let chars {
                    if chars.frozen {
                        try writeChars(tokens, w, chars)
                    } else {
                        tokens.withUnsafeBufferPointer { chars.register($0) }
                        held.append((tokens, isVal))
                        heldTokens += tokens.count + 1
                        if heldTokens >= guessTokens { try freeze(chars) }
                    }
                } else {
                    try tokens.withUnsafeBufferPointer { try w.append($0) }
                    try eot.withUnsafeBufferPointer { try w.append($0) }
                }
                if isVal { s.valDocuments += 1 } else { s.trainDocuments += 1 }
            }
            s.keptDocuments += 1
            progress.tick(documents: 1, bytes: o.bytes, tokens: o.tokens.count + parts.count)
        }

        do {
            try pipeline.run(produce: { producer in
                try produceUnits(files, counter: counter, producer: producer) { doc, slot, emit in
                    let state = states[slot]
                    func send(_ o: Outcome, _ bytes: Int) throws {
                        state.batch.append(o)
                        state.batchBytes += bytes
                        if state.batchBytes >= batchLimit { try flush() }
                    }
                    func flush() throws {
                        let b = state.batch, n = state.batchBytes
                        state.batch = []
                        state.batchBytes = 0
                        if !b.isEmpty { try emit(b, n) }
                    }
                    guard let doc else { return try flush() }  // the unit's end
                    if let why = doc.malformed {
                        if badLines == .error { throw EmeraldError.io(why + " (`bad_lines` skip drops such lines)") }
                        return try send(Outcome(status: .malformed, tokens: [], bytes: 0, repaired: false), 64)
                    }
                    doc.bytes.withUnsafeBufferPointer { state.decoder.decode($0) }
                    let dec = state.decoder
                    let n = doc.bytes.count
                    if dec.scalars.isEmpty { return try send(Outcome(status: .empty, tokens: [], bytes: n, repaired: false), 64) }
                    if dec.invalidCount > 0 {
                        if policy == .error { throw EmeraldError.invalidUTF8(path: doc.name, byteOffset: dec.firstInvalidOffset) }
                        if policy == .skip { return try send(Outcome(status: .invalid, tokens: [], bytes: n, repaired: false), 64) }
                    }
                    var tokens: [UInt32]
                    if lookup != nil || tokenizer == nil {
                        var bad: UInt32?
                        tokens = dec.scalars.withUnsafeBufferPointer { charTokens($0, lookup, &bad) }
                        if let bad {
                            throw EmeraldError.unknownCharacter(
                                "\(doc.name): character \(describeScalar(Unicode.Scalar(bad)!)) is not in the vocabulary of \(charVocab) characters of \(tokenizerName)")
                        }
                    } else {
                        var view = String.UnicodeScalarView()
                        for c in dec.scalars { view.append(Unicode.Scalar(c)!) }
                        do {
                            tokens = try tokenizer!.encode(String(view)).map { UInt32(bitPattern: $0) }
                        } catch EmeraldError.unknownCharacter(let m) {
                            throw EmeraldError.unknownCharacter("\(doc.name): \(m)")
                        }
                    }
                    try send(Outcome(status: .ok, tokens: tokens, bytes: n, repaired: dec.invalidCount > 0), tokens.count * 4 + 64)
                }
            }, consume: { batch in
                for o in batch { try consume(o) }
            })
            if let chars, !chars.frozen { try freeze(chars) }
            try train.finish()
            try val.finish()
        } catch {
            train.discard()
            val.discard()
            throw error
        }
        s.trainTokens = train.totalTokens
        s.valTokens = val.totalTokens
        progress.finish()
        summary = s
        return TokenPass(train: train, val: val, chars: chars)
    }

    /// A document's char tokens: ids through `table`, or (nil) the scalars
    /// themselves; U+0003 is dropped (it only separates documents). Stops at
    /// the first scalar missing from `table`, setting `bad`.
    static func charTokens(_ sc: UnsafeBufferPointer<UInt32>, _ table: [Int32]?, _ bad: inout UInt32?) -> [UInt32] {
        var missing: UInt32?
        let out = [UInt32](unsafeUninitializedCapacity: sc.count) { out, kept in
            kept = 0
            guard let table else {
                for c in sc where c != 3 { out[kept] = c; kept += 1 }
                return
            }
            table.withUnsafeBufferPointer { t in
                for c in sc where c != 3 {
                    let id = t[Int(c)]
                    if id < 0 { missing = c; break }
                    out[kept] = UInt32(id)
                    kept += 1
                }
            }
        }
        bad = missing
        return out
    }
}
