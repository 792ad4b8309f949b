#!/usr/bin/env python3
"""Reference ids for Emerald's byte-level BPE (Tests/EmeraldTests/BPETests.swift).

Writes Tests/EmeraldTests/Fixtures/bpe_gpt2.json and bpe_trained_oz.json from
OpenAI's GPT-2 files in assets/gpt2 and the Oz book in assets/wizard_of_oz.txt
(shipped in the repository). Nothing is downloaded: tiktoken's
gpt2 Encoding is built from the local files.

Setup (once) and run, from the repository root, after
`swift build -c release --scratch-path .build-bpe`:

    .venv/bin/pip install tiktoken tokenizers
    .venv/bin/python scripts/reference/bpe_fixtures.py [path/to/emerald]

What it records (UTF-8 of each string as hex, so NFC/NFD and NUL survive any
JSON tooling):
  * gpt2: for hard strings, tiktoken's encode_ordinary ids ("ordinary"),
    encode(allowed_special="all") ids ("all", omitted when equal to ordinary),
    and Hugging Face tokenizers' ids for GPT-2 built from the same files ("hf",
    omitted when equal to "all"; HF always recognises added tokens);
  * decode: ids that cut UTF-8 sequences, with HF's decode (lossy, U+FFFD) and
    tiktoken's decode(errors="replace");
  * trained: `emerald tokenizer train` on the Oz book (vocab 600) is saved as
    bpe_trained_oz.json; HF tokenizers loads it and its ids for every string are
    recorded. The script also checks that HF loads Emerald's GPT-2 tokenizer.json
    (`emerald tokenizer convert`) and encodes every string like tiktoken.
"""
import json
import os
import subprocess
import sys
import tempfile
import unicodedata

import tiktoken
import tiktoken.load

import tokenizers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

# tiktoken reads non-URL paths through `blobfile` and caches them; read the local files directly.
tiktoken.load.read_file_cached = lambda path, expected_hash=None: open(path, "rb").read()

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(ROOT, "assets")
GPT2 = os.path.join(SHARED, "gpt2")
BOOK = os.path.join(SHARED, "wizard_of_oz.txt")
FIXTURES = os.path.join(ROOT, "Tests", "EmeraldTests", "Fixtures")
EMERALD = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build-bpe", "release", "emerald")
PAT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
EOT = "<|endoftext|>"
TRAINED_VOCAB = 600


def gpt2_tiktoken():
    ranks = tiktoken.load.data_gym_to_mergeable_bpe_ranks(
        os.path.join(GPT2, "vocab.bpe"), os.path.join(GPT2, "encoder.json"))
    return tiktoken.Encoding(name="gpt2_local", pat_str=PAT, mergeable_ranks=ranks,
                             special_tokens={EOT: 50256}, explicit_n_vocab=50257)


def gpt2_hf():
    tok = Tokenizer(models.BPE.from_file(os.path.join(GPT2, "encoder.json"), os.path.join(GPT2, "vocab.bpe")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([EOT])
    return tok


def book_slice():
    with open(BOOK, "rb") as f:
        text = f.read().decode("utf-8")
    return text[20000:30000]  # raw: CRLF line ends kept


def cases():
    pt = "Ação, coração, não é fácil; pão e café às três. Órfã, irmãs, português!"
    return [
        ("ascii_prose", 'Hello world! It\'s a fine day, isn\'t it? Dorothy said: "We\'re off to see the Wizard."'),
        ("crlf", "line one\r\nline two\r\n\r\nend\r\n"),
        ("lone_cr", "a\rb\r\rc \r d\r"),
        ("emoji", "I \u2764\ufe0f \U0001F981 and \U0001F32A\ufe0f! \U0001F600\U0001F601"),
        ("emoji_zwj", "\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466 family, "
                      "\U0001F469\U0001F3FD\u200d\U0001F4BB coder, \U0001F3F3\ufe0f\u200d\U0001F308"),
        ("flags", "\U0001F1E7\U0001F1F7\U0001F1F5\U0001F1F9\U0001F1FA\U0001F1F8 flags \U0001F1EF\U0001F1F5"),
        ("cjk", "東京は日本の首都です。我喜欢学习中文。한국어 텍스트"),
        ("pt_nfc", unicodedata.normalize("NFC", pt)),
        ("pt_nfd", unicodedata.normalize("NFD", pt)),
        ("combining", "e\u0301 a\u0300\u0302 Z\u0335\u0321\u0334 q\u0307\u0323 \u0301start"),
        ("cyrillic", "Дороти и Волшебник в стране Оз. ДОРОТИ!"),
        ("greek", "Η Ντόροθι και ο Μάγος του Οζ"),
        ("arabic", "دوروثي والساحر في أوز ١٢٣"),
        ("spaces", "a  b   c    d\t\te \t f\u00a0g\u00a0\u00a0h\u3000i\u3000\u3000 j \u00a0k  \u3000l"),
        ("trailing_spaces", "end with spaces   "),
        ("only_spaces", "     "),
        ("newlines", "\n\n\nx\n \n  y\n\t\n"),
        ("digits", "1 12 123 1234 12345 3.14159 1,000,000 2024-01-01 \u0663 \u00bd \u216b 42nd"),
        ("contractions_lower", "don't won't it's I'm we've they're she'll he'd"),
        ("contractions_upper", "DON'T WON'T IT'S I'M WE'VE THEY'RE SHE'LL HE'D"),
        ("contractions_odd", "'s 't 're 've 'm 'll 'd ''s '''re x's 'S 'Re ' s"),
        ("curly_apostrophes", "don\u2019t it\u2019s \u2018quoted\u2019 \u201cdouble\u201d I\u2019m"),
        ("code", "def f(x):\n    return x**2 + 1  # comment\n\nif __name__ == '__main__':\n\tprint(f(3))\n"),
        ("empty", ""),
        ("controls", "a\x00b\x01\x02c\x1b[0m\x7f\x1c\x1d\x1e\x1f end\x0b\x0c\x85x\u2028y\u2029z"),
        ("endoftext", "Hello<|endoftext|>World <|endoftext|> <|endoftext|><|endoftext|>"),
        ("special_like", "<|endoftext| <|endof <|endoftext|>|> <|ENDOFTEXT|>"),
        ("mixed_scripts", "naïve café Ωmega ßtraße ﬁne İstanbul ǅ ŉ"),
        ("long_word", "a" * 300 + " " + "ab" * 200 + " " + "=" * 100),
        ("long_runs", " " * 150 + "x" + "\n" * 70 + "7" * 90 + " " + "\u03a9\u03a9" * 40 + " " + "-=" * 45 + " " + "\U0001F981" * 20),
        ("symbols", "!!! ??? ... --- *** ### $$$ %%% ^^^ &&& @@@ ~~~ ``` ||| \\\\ /// <<< >>> === +++"),
        ("oz_10k", book_slice()),
    ]


def hexs(s):
    return s.encode("utf-8").hex()


def main():
    enc, hf = gpt2_tiktoken(), gpt2_hf()
    gpt2_cases, problems = [], []
    for name, text in cases():
        ordinary = enc.encode_ordinary(text)
        allowed = enc.encode(text, allowed_special="all")
        hf_ids = hf.encode(text).ids
        entry = {"name": name, "utf8": hexs(text), "ordinary": ordinary}
        if allowed != ordinary:
            entry["all"] = allowed
        if hf_ids != allowed:
            entry["hf"] = hf_ids
            problems.append(f"gpt2 {name}: HF differs from tiktoken")
        assert enc.decode_bytes(ordinary) == text.encode("utf-8")
        gpt2_cases.append(entry)

    # Ids that cut multi-byte UTF-8 sequences.
    decode_cases = []
    for t in ["\U0001F981", "東京", "\U0001F468\u200d\U0001F469\u200d\U0001F467", "é!", "ção"]:
        ids = enc.encode_ordinary(t)
        for k in range(len(ids)):
            for sub in (ids[:k + 1], ids[k:k + 1], ids[k:]):
                decode_cases.append(sub)
    byte_id = {b: enc.encode_single_token(bytes([b])) for b in range(256)}
    decode_cases += [[byte_id[0xE6]], [byte_id[0xE6], byte_id[0x9D]], [byte_id[0xF0], byte_id[ord("a")]],
                     [byte_id[0xFF]], [byte_id[0xC0], byte_id[0xAF]], [byte_id[0xED], byte_id[0xA0], byte_id[0x80]],
                     [byte_id[0x80], byte_id[0x80], byte_id[ord("x")]], [byte_id[0xF4], byte_id[0x90], byte_id[0x80], byte_id[0x80]]]
    seen, decodes = set(), []
    for ids in decode_cases:
        if tuple(ids) in seen:
            continue
        seen.add(tuple(ids))
        h, t = hf.decode(ids, skip_special_tokens=False), enc.decode(ids, errors="replace")
        d = {"ids": ids, "hf": hexs(h)}
        if t != h:
            d["tiktoken"] = hexs(t)
            problems.append(f"decode {ids}: HF {h!r} vs tiktoken {t!r}")
        decodes.append(d)

    # Emerald's GPT-2 tokenizer.json loads in HF and encodes like tiktoken.
    with tempfile.TemporaryDirectory() as tmp:
        converted = os.path.join(tmp, "gpt2.json")
        subprocess.run([EMERALD, "tokenizer", "convert", "--tokenizer", GPT2, "--out", converted], check=True)
        hf_conv = Tokenizer.from_file(converted)
        for (name, text), entry in zip(cases(), gpt2_cases):
            if hf_conv.encode(text).ids != entry.get("all", entry["ordinary"]):
                problems.append(f"converted GPT-2 tokenizer.json: HF differs from tiktoken on {name}")
            if hf_conv.decode(entry["ordinary"], skip_special_tokens=False) != hf.decode(entry["ordinary"], skip_special_tokens=False):
                problems.append(f"converted GPT-2 tokenizer.json: HF decode differs on {name}")

    # A tokenizer trained by Emerald, encoded by HF.
    trained_path = os.path.join(FIXTURES, "bpe_trained_oz.json")
    subprocess.run([EMERALD, "tokenizer", "train", "--data", BOOK, "--vocab-size", str(TRAINED_VOCAB),
                    "--out", trained_path], check=True)
    trained = Tokenizer.from_file(trained_path)
    trained_cases = []
    for name, text in cases():
        ids = trained.encode(text).ids
        if trained.decode(ids, skip_special_tokens=False) != text:
            problems.append(f"trained: HF round trip fails on {name}")
        trained_cases.append({"name": name, "hf": ids})  # the text is the gpt2 case of the same name

    out = {
        "about": "written by scripts/reference/bpe_fixtures.py; see its docstring",
        "tiktoken_version": tiktoken.__version__ if hasattr(tiktoken, "__version__") else "?",
        "tokenizers_version": tokenizers.__version__,
        "gpt2": gpt2_cases,
        "decode": decodes,
        "trained": {"file": "bpe_trained_oz.json", "vocab_size": TRAINED_VOCAB, "min_frequency": 2,
                    "cases": trained_cases},
        "problems": problems,
    }
    path = os.path.join(FIXTURES, "bpe_gpt2.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes) and {trained_path} ({os.path.getsize(trained_path)} bytes)")
    for p in problems:
        print("PROBLEM:", p)


if __name__ == "__main__":
    main()
