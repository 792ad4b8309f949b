#!/usr/bin/env python3
"""The guide's OpenWebText extraction (lzma + a process pool), timed, for comparison
with `emerald prepare`.

    scripts/bench_prepare_python.py FOLDER_OF_XZ_FILES --out DIR [--workers N]

Like the guide's data-extract script: the .xz files are split 90/10 by file,
each is read whole with `lzma.open(..., "rt", encoding="utf-8")` in a worker
process (tar headers and all — the guide does not parse the tar), appended to
output_train.txt / output_val.txt, and the character set is merged into
vocab.txt. Prints MB/s of compressed input and of text written.
"""
import argparse
import concurrent.futures
import lzma
import os
import time


def process_file(path):
    with lzma.open(path, "rt", encoding="utf-8", errors="replace") as f:
        text = f.read()
    return text, set(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder")
    ap.add_argument("--out", required=True)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    a = ap.parse_args()
    files = sorted(os.path.join(r, n) for r, _, ns in os.walk(a.folder) for n in ns if n.endswith(".xz"))
    split = int(len(files) * 0.9)
    os.makedirs(a.out, exist_ok=True)
    start = time.time()
    vocab, written = set(), 0
    with concurrent.futures.ProcessPoolExecutor(max_workers=a.workers) as ex:
        for name, part in (("output_train.txt", files[:split]), ("output_val.txt", files[split:])):
            with open(os.path.join(a.out, name), "w", encoding="utf-8") as out:
                for text, chars in ex.map(process_file, part, chunksize=4):
                    out.write(text)
                    written += len(text.encode("utf-8"))
                    vocab |= chars
    with open(os.path.join(a.out, "vocab.txt"), "w", encoding="utf-8") as v:
        for c in sorted(vocab):
            v.write(c + "\n")
    dt = time.time() - start
    compressed = sum(os.path.getsize(f) for f in files)
    print(f"{len(files)} files, {compressed / 1e6:.1f} MB compressed -> {written / 1e6:.1f} MB text in {dt:.1f} s: "
          f"{compressed / 1e6 / dt:.1f} MB/s in, {written / 1e6 / dt:.1f} MB/s out ({a.workers} workers)")


if __name__ == "__main__":
    main()
