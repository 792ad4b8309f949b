#!/usr/bin/env python3
"""Single-thread GPT-2 encode speed: Emerald vs tiktoken (and HF tokenizers).

    .venv/bin/python bench/tokenizer_speed.py [path/to/emerald] [MB]

The Oz book (assets/wizard_of_oz.txt, read with universal newlines like
Emerald's TextCorpus) is repeated to ~MB megabytes (default 10) and written to a
temporary file; every tokenizer encodes exactly that text, best of 3 runs, and
the token counts are compared. Emerald is timed in-process by
`emerald tokenizer bench` (encodeOrdinary on one thread).
"""
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAYON_NUM_THREADS", "1")

import tiktoken  # noqa: E402
import tiktoken.load  # noqa: E402

from tokenizers import Tokenizer, decoders, models, pre_tokenizers  # noqa: E402

# tiktoken reads non-URL paths through `blobfile` and caches them; read the local files directly.
tiktoken.load.read_file_cached = lambda path, expected_hash=None: open(path, "rb").read()

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "assets")
GPT2 = os.path.join(SHARED, "gpt2")
EMERALD = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build-bpe", "release", "emerald")
MB = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
PAT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def best_of(n, f):
    best, out = float("inf"), None
    for _ in range(n):
        t0 = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main():
    with open(os.path.join(SHARED, "wizard_of_oz.txt"), encoding="utf-8") as f:
        once = f.read().lstrip("\ufeff")
    text = once
    while len(text.encode("utf-8")) < MB * 1e6:
        text += once
    nbytes = len(text.encode("utf-8"))
    ranks = tiktoken.load.data_gym_to_mergeable_bpe_ranks(os.path.join(GPT2, "vocab.bpe"), os.path.join(GPT2, "encoder.json"))
    enc = tiktoken.Encoding(name="gpt2_local", pat_str=PAT, mergeable_ranks=ranks,
                            special_tokens={"<|endoftext|>": 50256}, explicit_n_vocab=50257)
    hf = Tokenizer(models.BPE.from_file(os.path.join(GPT2, "encoder.json"), os.path.join(GPT2, "vocab.bpe")))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()

    rows = []
    t, ids = best_of(3, lambda: enc.encode_ordinary(text))
    rows.append(("tiktoken encode_ordinary", t, len(ids)))
    t, hf_ids = best_of(3, lambda: hf.encode(text).ids)
    rows.append(("HF tokenizers encode", t, len(hf_ids)))
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt", delete=False) as f:
        f.write(text)
        path = f.name
    try:
        r = subprocess.run([EMERALD, "tokenizer", "bench", "--tokenizer", GPT2, "--data", path,
                            "--megabytes", "0.000001", "--repeats", "3"], check=True, capture_output=True, text=True)
        e = json.loads(r.stdout)
        rows.append(("Emerald encodeOrdinary", e["seconds"], e["tokens"]))
        assert e["round_trip"], "Emerald decode(encode(text)) != text"
    finally:
        os.unlink(path)
    print(f"{nbytes / 1e6:.1f} MB of text (the Oz book repeated), single thread, best of 3")
    for name, t, n in rows:
        same = "same ids count" if n == len(ids) else f"TOKEN COUNT DIFFERS ({n} vs {len(ids)})"
        print(f"  {name:28s} {nbytes / 1e6 / t:8.2f} MB/s  {t:7.3f} s  {n} tokens  {same}")
    print("  (HF ids equal tiktoken's)" if hf_ids == ids else "  HF IDS DIFFER FROM TIKTOKEN")


if __name__ == "__main__":
    main()
