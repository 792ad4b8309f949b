// Train a tiny GPT on the shipped book through Emerald's public API, then sample from it.
import Emerald

// The data: the book, its characters as the vocabulary, the guide's 90/10 split.
let text = try Book.text()
let tokenizer = CharTokenizer(training: text)
let (train, val) = trainValSplit(try tokenizer.encode(text))

// The model: nanoGPT's config as a value type.
let config = GPTConfig(vocabSize: tokenizer.vocabularySize, blockSize: 64, nLayer: 2, nHead: 4, nEmbd: 64, dropout: 0.1)
var rng = RandomGenerator(seed: 1337)
let model = GPT(config, rng: &rng)
print("\(model.parameterCount) parameters, vocabulary \(tokenizer.vocabularySize)")

// The loop: the GPT recipe (AdamW, cosine schedule, clipping), shortened.
var settings = Recipe.gpt
settings.steps = 300
settings.batchSize = 16
settings.blockSize = config.blockSize
settings.warmupSteps = Recipe.cappedWarmup(settings.warmupSteps, steps: settings.steps)
settings.evalInterval = 100
let trainer = try Trainer(model: model, tokenizer: tokenizer, train: train, val: val, config: settings)
trainer.log = { print($0) }
try trainer.run()

// Generation: the prompt, then 200 sampled characters streamed as they come.
var sampling = RandomGenerator(seed: 7)
let prompt = try tokenizer.encode("Dorothy")
print("Dorothy", terminator: "")
try Generator.generate(model: model, prompt: prompt, maxNewTokens: 200,
                       options: SamplingOptions(temperature: 0.8, topK: 40), rng: &sampling) { id in
    print(tokenizer.decode([id]), terminator: "")
    return true
}
print()
