#!/usr/bin/env python3
"""Writes a synthetic corpus in OpenWebText's layout, for testing `emerald prepare` at scale.

    scripts/make_owt_corpus.py OUT --size 2G [--docs-per-file 400] [--seed 1] [--workers 2] [--tar]
                               [--words-from encoder.json]

OUT/openwebtext/urlsf_subset00-K_data.xz: each an xz-compressed tar of
NNNNNNN-HASH.txt documents (English-like random text with some non-ASCII
punctuation and letters), like the real corpus. --size counts document text
(before compression). --words-from takes GPT-2's encoder.json and draws words from its
20,000 lowest-id whole-word tokens with Zipf weights (ids follow merge order, roughly
frequency), for English-like spelling statistics instead of the built-in ~150 words.
--tar also packs the folder into OUT/openwebtext.tar.xz
(a tar of the .xz files, as distributed). Deterministic for a given seed.
Never commit the output.
"""
import argparse
import hashlib
import io
import lzma
import os
import random
import tarfile
from multiprocessing import Pool

WORDS = ("the of and to a in is that for it as was with be by on not he I this are or his from at which but have an "
         "they you were her she there been one all we their has would when if so no will more can said who out up "
         "about into them some what time could than other its only then two may these first any new like our over "
         "also years after most people where made many before must through back much good well should year between "
         "world city state government school water house story music market energy system report police company "
         "Dorothy Wizard emerald tornado Kansas Scarecrow café naïve résumé über Straße Zürich").split()
PUNCT = [".", ".", ".", ",", ",", ",", ";", ":", "!", "?", " —", "…"]


VOCAB = None  # (words, cumulative Zipf weights) when --words-from is given


def load_vocab(path):
    import json
    enc = json.load(open(path, encoding="utf-8"))
    short = set("a I to of in is it on be as at by he we or an my so no do up if me us go am".split())
    words = [t[1:] for t, _ in sorted(enc.items(), key=lambda kv: kv[1])
             if t.startswith("\u0120") and t[1:].isalpha() and (len(t) > 3 or t[1:] in short)]
    words = words[:20000]
    cum, acc = [], 0.0
    for r in range(len(words)):
        acc += 1.0 / (r + 10)
        cum.append(acc)
    return words, cum


def init_worker(vocab):
    global VOCAB
    VOCAB = vocab


def make_doc(rng):
    n_words = int(rng.lognormvariate(6.6, 0.8)) + 20  # ~1,000 words, ~6 KB on average
    words = rng.choices(VOCAB[0], cum_weights=VOCAB[1], k=n_words) if VOCAB else rng.choices(WORDS, k=n_words)
    out, line = [], []
    for i, w in enumerate(words):
        line.append(w)
        if rng.random() < 0.08:
            line[-1] += rng.choice(PUNCT)
            if rng.random() < 0.15:
                out.append(" ".join(line))
                line = []
    if line:
        out.append(" ".join(line) + ".")
    text = "\n\n".join(out)
    if rng.random() < 0.05:
        text = "“" + text + "” 🙂"
    return text.encode("utf-8")


def write_subset(args):
    out_dir, k, docs, seed = args
    rng = random.Random(seed * 1_000_003 + k)
    buf = io.BytesIO()
    size = 0
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for j in range(docs):
            body = make_doc(rng)
            size += len(body)
            name = f"{k:04d}{j:03d}-{hashlib.md5(body).hexdigest()[:30]}.txt"
            info = tarfile.TarInfo(name)
            info.size = len(body)
            info.mtime = 1556668800
            tf.addfile(info, io.BytesIO(body))
    path = os.path.join(out_dir, f"urlsf_subset00-{k + 1}_data.xz")
    with open(path + ".tmp", "wb") as f:
        f.write(lzma.compress(buf.getvalue(), preset=1))
    os.replace(path + ".tmp", path)
    return size


def parse_size(s):
    mult = {"K": 1e3, "M": 1e6, "G": 1e9}
    return int(float(s[:-1]) * mult[s[-1].upper()]) if s[-1].upper() in mult else int(s)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--size", default="100M", help="text bytes to write (K/M/G suffixes)")
    ap.add_argument("--docs-per-file", type=int, default=400)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--tar", action="store_true", help="also write OUT/openwebtext.tar.xz")
    ap.add_argument("--words-from", help="GPT-2 encoder.json: Zipf-weighted real words instead of the built-in list")
    a = ap.parse_args()
    target = parse_size(a.size)
    folder = os.path.join(a.out, "openwebtext")
    os.makedirs(folder, exist_ok=True)
    per_file = a.docs_per_file * 5_400  # average document size
    n_files = max(1, round(target / per_file))
    jobs = [(folder, k, a.docs_per_file, a.seed) for k in range(n_files)]
    vocab = load_vocab(a.words_from) if a.words_from else None
    with Pool(a.workers, initializer=init_worker, initargs=(vocab,)) as pool:
        total = sum(pool.imap(write_subset, jobs))
    print(f"{n_files} files, {total / 1e9:.3f} GB of text in {folder}")
    if a.tar:
        path = os.path.join(a.out, "openwebtext.tar.xz")
        with tarfile.open(path, "w:xz", preset=0) as tf:
            # Sorted like a folder walk, so both layouts give the same document order.
            for name in sorted(f"urlsf_subset00-{k + 1}_data.xz" for k in range(n_files)):
                tf.add(os.path.join(folder, name), arcname="openwebtext/" + name)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
