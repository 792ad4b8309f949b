#!/usr/bin/env python3
"""Reference ids for Emerald's Llama-style tokenizers (Tests/EmeraldTests/LlamaTokenizerTests.swift).

The Hugging Face hub is not reachable from where these fixtures were made, and the real
vocabularies are large (Llama 3: 128k tokens, 9 MB), so each tokenizer.json here is a small
stand-in: a BPE trained by Hugging Face `tokenizers` on the Oz book (assets/wizard_of_oz.txt)
with the *same configuration* as the real file — normalizer, pre-tokenizer (Split regex,
Digits, ByteLevel, Metaspace), added tokens with their flags, post-processor (BOS templates)
and decoder — then loaded back with `Tokenizer.from_str` to record its ids. Nothing is
downloaded. Setup (once) and run, from the repository root:

    python3 -m venv .venv && .venv/bin/pip install tokenizers
    .venv/bin/python scripts/reference/tokenizer_fixtures.py

Writes Tests/EmeraldTests/Fixtures/llama_tokenizers/{llama3,qwen2,smollm2,tinyllama}.json and
cases.json. cases.json has, for every tokenizer (a file plus an optional "patch" of top-level
sections, model keys and extra added tokens, which the Swift test applies the same way) and
every hard string (UTF-8 as hex): the ids without special tokens ("ids"), with them
("with_special", when different), decode(ids, skip_special_tokens=False) and =True as hex.
It also prints `tokenizers`' time to encode the whole book with each tokenizer.
"""
import json
import os
import time
import unicodedata

import tokenizers
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers, Regex

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BOOK = os.path.join(ROOT, "assets", "wizard_of_oz.txt")
OUT = os.path.join(ROOT, "Tests", "EmeraldTests", "Fixtures", "llama_tokenizers")
VOCAB = 3000

LLAMA3_PAT = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
QWEN2_PAT = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""


def book():
    with open(BOOK, "rb") as f:
        return f.read().decode("utf-8")


def corpus():
    text = book()
    # A little non-English text so that some merges cover multi-byte characters.
    extra = ["naïve café déjà vu, coração não é fácil", "東京は日本の首都です。我喜欢学习中文。", "Дороти и Волшебник",
             "def f(x):\n    return x**2  # comment\n", "1234567890 3.14159"] * 20
    return [line for line in text.splitlines() if line.strip()] + extra


def byte_level_trained(pre, normalizer=None):
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus(), trainer=trainer)
    return json.loads(tok.to_str())


def added(id_, content, special=True, **flags):
    d = {"id": id_, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": special}
    d.update(flags)
    return d


def byte_level(prefix, trim, regex):
    return {"type": "ByteLevel", "add_prefix_space": prefix, "trim_offsets": trim, "use_regex": regex}


def split(pattern):
    return {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False}


def llama3():
    pre = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LLAMA3_PAT), "isolated"),
                                   pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    j = byte_level_trained(pre)
    n = len(j["model"]["vocab"])
    names = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
             "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>", "<|start_header_id|>", "<|end_header_id|>",
             "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"]
    j["added_tokens"] = [added(n + i, s) for i, s in enumerate(names)]
    j["normalizer"] = None
    j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [split(LLAMA3_PAT), byte_level(False, True, False)]}
    bos = {"id": "<|begin_of_text|>", "ids": [n], "tokens": ["<|begin_of_text|>"]}
    j["post_processor"] = {"type": "Sequence", "processors": [
        byte_level(True, False, True),
        {"type": "TemplateProcessing",
         "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
         "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                  {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
         "special_tokens": {"<|begin_of_text|>": bos}}]}
    j["decoder"] = byte_level(True, True, True)
    j["model"]["ignore_merges"] = True
    return j


def qwen2():
    pre = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(QWEN2_PAT), "isolated"),
                                   pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    j = byte_level_trained(pre, normalizers.NFC())
    n = len(j["model"]["vocab"])
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]
    plain = ["<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
             "<|repo_name|>", "<|file_sep|>"]
    j["added_tokens"] = [added(n + i, s) for i, s in enumerate(specials)] + \
                        [added(n + len(specials) + i, s, special=False) for i, s in enumerate(plain)]
    j["normalizer"] = {"type": "NFC"}
    j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [split(QWEN2_PAT), byte_level(False, False, False)]}
    j["post_processor"] = byte_level(False, False, False)
    j["decoder"] = byte_level(False, False, False)
    j["model"]["ignore_merges"] = False
    return j


def smollm2():
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<repo_name>", "<reponame>", "<file_sep>", "<filename>",
                "<gh_stars>", "<issue_start>", "<issue_comment>", "<issue_closed>", "<jupyter_start>", "<jupyter_text>",
                "<jupyter_code>", "<jupyter_output>", "<jupyter_script>", "<empty_output>"]
    pre = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                   pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, min_frequency=2, show_progress=False, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus(), trainer=trainer)
    j = json.loads(tok.to_str())
    j["added_tokens"] = [added(i, s) for i, s in enumerate(specials)]
    j["normalizer"] = None
    j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True},
                                                                 byte_level(False, True, True)]}
    j["post_processor"] = byte_level(True, False, True)
    j["decoder"] = byte_level(True, True, True)
    return j


def tinyllama():
    """Llama 2's layout: <unk> <s> </s>, then <0x00>…<0xFF>, then the pieces; string merges."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    # SentencePiece never merges across words: train on ▁-split words.
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never", split=True)
    trainer = trainers.BpeTrainer(vocab_size=VOCAB - 256, min_frequency=2, show_progress=False,
                                  special_tokens=["<unk>", "<s>", "</s>"], limit_alphabet=120)
    tok.train_from_iterator(corpus(), trainer=trainer)
    t = json.loads(tok.to_str())
    old = t["model"]["vocab"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab["<0x%02X>" % b] = 3 + b
    for piece, i in sorted(old.items(), key=lambda kv: kv[1]):
        if piece not in vocab:
            vocab[piece] = len(vocab)
    merges = [m if isinstance(m, str) else " ".join(m) for m in t["model"]["merges"]]
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")],
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"},
                                                           {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                    {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab, "merges": merges},
    }


# Variants of the files above, tested without shipping more files: "set" replaces top-level
# sections, "model" replaces model keys, "merges_as_pairs" rewrites "a b" merges as ["a", "b"],
# "added" appends added tokens (ids after the vocabulary's largest).
VARIANTS = {
    "tinyllama_metaspace": ("tinyllama", {
        "set": {"normalizer": None,
                "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}},
        "merges_as_pairs": True}),
    "tinyllama_no_fallback": ("tinyllama", {"model": {"byte_fallback": False}}),
    "metaspace_split_always": ("tinyllama", {
        "set": {"normalizer": None,
                "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True},
                "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True}},
        "model": {"byte_fallback": False, "fuse_unk": False}}),
    "qwen2_flags": ("qwen2", {"added": [
        {"content": "<mask>", "lstrip": True},
        {"content": "[R]", "rstrip": True, "special": False},
        {"content": "both", "lstrip": True, "rstrip": True, "special": False},
        {"content": "word", "single_word": True, "special": False},
        {"content": "Å", "normalized": True, "special": False},
        {"content": "ﬁ", "special": False},
    ]}),
    "smollm2_prefix": ("smollm2", {"set": {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": False}, byte_level(True, True, True)]}}}),
    "llama3_bytelevel_only": ("llama3", {"set": {"pre_tokenizer": byte_level(False, True, True)},
                                         "model": {"ignore_merges": False}}),
}


def apply_patch(j, patch):
    j = json.loads(json.dumps(j))
    for k, v in patch.get("set", {}).items():
        j[k] = v
    for k, v in patch.get("model", {}).items():
        j["model"][k] = v
    if patch.get("merges_as_pairs"):
        j["model"]["merges"] = [m.split(" ") if isinstance(m, str) else m for m in j["model"]["merges"]]
    next_id = max(list(j["model"]["vocab"].values()) + [t["id"] for t in j["added_tokens"]]) + 1
    for t in patch.get("added", []):
        # As tokenizers does (and real files are written): a content already in the vocabulary keeps its id.
        flags = {k: v for k, v in t.items() if k not in ("content", "special")}
        known = j["model"]["vocab"].get(t["content"])
        j["added_tokens"].append(added(next_id if known is None else known, t["content"], t.get("special", True), **flags))
        next_id += known is None
    return j


def cases(specials):
    pt = "Ação, coração, não é fácil; pão e café às três."
    s = specials
    return [
        ("empty", ""),
        ("ascii_prose", 'Hello world! It\'s a fine day, isn\'t it? Dorothy said: "We\'re off to see the Wizard."'),
        ("contractions_lower", "don't won't it's I'm we've they're she'll he'd"),
        ("contractions_upper", "DON'T WON'T IT'S I'M WE'VE THEY'RE SHE'LL HE'D"),
        ("contractions_mixed", "It'S He'Ll wE'rE I'M yOu'Ve 'S 'LL 'Ll 'lL ''s '''re x's ' s 'ſ 'K"),
        ("curly_apostrophes", "don\u2019t it\u2019s \u2018quoted\u2019 I\u2019m"),
        ("emoji", "I \u2764\ufe0f \U0001F981 and \U0001F32A\ufe0f! \U0001F600\U0001F601 \U0001F44D\U0001F3FD"),
        ("emoji_zwj", "\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466 family, "
                      "\U0001F469\U0001F3FD\u200d\U0001F4BB coder, \U0001F3F3\ufe0f\u200d\U0001F308 \U0001F1EF\U0001F1F5"),
        ("cjk", "東京は日本の首都です。我喜欢学习中文。한국어 텍스트"),
        ("pt_nfc", unicodedata.normalize("NFC", pt)),
        ("pt_nfd", unicodedata.normalize("NFD", pt)),
        ("combining", "e\u0301 a\u0300\u0302 Z\u0335\u0321 q\u0307\u0323 \u0301start x\u0301y \u212b \u1100\u1161\u11a8"),
        ("arabic", "مرحبا بالعالم، كيف حالك؟ ١٢٣٤٥ دوروثي"),
        ("scripts", "Ελληνικά Русский текст हिन्दी ไทย naïve ßtraße ﬁne İstanbul ǅ Ⅻ ½ ²"),
        ("digits", "1 12 123 1234 12345 3.14159 1,000,000 2024-01-01 \u0663\u0664 \u00bd \u216b 42nd x2y"),
        ("long_digits", "1234567890123456789012345678901 0000000 a9999b"),
        ("whitespace", "a  b   c\t\td \t e\u00a0f\u3000g\n\nh\r\ni \r\n j   \n\n\n  k\u2028l"),
        ("newlines", "\n\n\nx\n \n  y\n\t\n\r\n\r\n"),
        ("leading_spaces", "   leading"),
        ("trailing_spaces", "trailing   "),
        ("only_spaces", "     "),
        ("only_newline", "\n"),
        ("one_space", " "),
        ("tabs", "\t\t\tx\t"),
        ("punctuation_runs", "!!! ??? ...hello (world) \"quoted\" --- *** ###\n\n$$$ a.b.c ,\n"),
        ("code", "def f(x):\n    return x**2 + 1  # comment\n\nif __name__ == '__main__':\n\tprint(f(3))\n"),
        ("controls", "a\x00b\x01c\x1b[0m\x7f end\x0b\x0c\x85x\u200b\u200d\u2060y"),
        ("invalid_looking", "\ufffd\ufffd \uffff \ue000 <0x41> <0xZZ> <unk> \u2581\u2581x \u0120 \u010a \\x00 \\u00e9"),
        ("special_tokens", s[0] + "Hello" + s[1] + " world " + s[0] + s[0] + "\n" + s[1] + " end"),
        ("special_like", s[0][:-1] + " " + s[0].upper() + " <" + s[0] + ">"),
        ("long_word", "a" * 200 + " " + "ab" * 100 + " " + "=" * 80 + " " + "\U0001F981" * 10),
        ("book_2k", book()[20000:22000]),
    ]


SPECIALS = {"llama3": ["<|begin_of_text|>", "<|eot_id|>"], "qwen2": ["<|im_start|>", "<|im_end|>"],
            "smollm2": ["<|im_start|>", "<|im_end|>"], "tinyllama": ["<s>", "</s>"]}
EXTRA = {"qwen2_flags": [("flags", "a <mask> b<mask>c  <mask>  [R]  x [R]y both  both\tboth word words sword word! "
                                   "A\u030a Å \u212b ﬁ fi")]}


def main():
    os.makedirs(OUT, exist_ok=True)
    files = {"llama3": llama3(), "qwen2": qwen2(), "smollm2": smollm2(), "tinyllama": tinyllama()}
    for name, j in files.items():
        with open(os.path.join(OUT, name + ".json"), "w", encoding="utf-8") as f:
            # ASCII escapes: Foundation's JSONSerialization (Linux) drops a raw U+FEFF that starts a
            # string, and the Oz book's byte order mark is a token here.
            json.dump(j, f, ensure_ascii=True, separators=(",", ":"))
    text = book()
    out = {"about": "written by scripts/reference/tokenizer_fixtures.py; see its docstring",
           "tokenizers_version": tokenizers.__version__, "tokenizers": []}
    all_names = [(n, n, {}) for n in files] + [(n, base, patch) for n, (base, patch) in VARIANTS.items()]
    for name, base, patch in all_names:
        j = apply_patch(files[base], patch)
        tok = Tokenizer.from_str(json.dumps(j))
        entries = []
        for case, s in cases(SPECIALS[base]) + EXTRA.get(name, []):
            enc = tok.encode(s, add_special_tokens=False).ids
            e = {"name": case, "utf8": s.encode().hex(), "ids": enc}
            ws = tok.encode(s).ids
            if ws != enc:
                e["with_special"] = ws
            e["decode"] = tok.decode(enc, skip_special_tokens=False).encode().hex()
            skip = tok.decode(enc, skip_special_tokens=True).encode().hex()
            if skip != e["decode"]:
                e["decode_skip"] = skip
            entries.append(e)
        t0 = time.perf_counter()
        n = len(tok.encode(text, add_special_tokens=False).ids)
        dt = time.perf_counter() - t0
        print(f"{name}: book → {n} tokens in {dt * 1000:.0f} ms (tokenizers {tokenizers.__version__}, one call)")
        out["tokenizers"].append({"name": name, "file": base + ".json", "patch": patch, "book_tokens": n, "cases": entries})
    path = os.path.join(OUT, "cases.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    for fn in sorted(os.listdir(OUT)):
        print(fn, os.path.getsize(os.path.join(OUT, fn)), "bytes")


if __name__ == "__main__":
    main()
