#!/usr/bin/env python3
"""Independent count of what `emerald prepare` writes, for checking it.

Reads the same inputs with Python's own lzma/gzip/tarfile/json, applies the
same rules — document = text file / tar member / JSON line's "text" (text
files over 2 MiB cut after the last newline before each 2 MiB), BOM dropped,
CRLF/CR -> LF, invalid UTF-8 per --invalid-utf8, empty documents dropped,
seeded SplitMix64 sample/split decisions by document index, one end-of-text
token after each kept document, U+0003 removed (char tokenizer) — and prints
the tokens and documents per split as JSON (char tokenizer only).

    scripts/count_tokens.py INPUT... [--val-fraction 0.1] [--sample-rate 1.0] [--seed 1337]
                                     [--invalid-utf8 skip|replace|error] [--exclude DIR]
"""
import argparse
import gzip
import io
import json
import lzma
import os
import sys
import tarfile

MASK = (1 << 64) - 1
XZ = b"\xfd7zXZ\x00"
GZ = b"\x1f\x8b"
PIECE = 2 << 20
KNOWN = {"txt", "text", "md", "jsonl", "xz", "gz", "tgz", "txz", "tar"}
SAMPLE_SALT = 0x73616D706C65
SPLIT_SALT = 0x73706C6974


def mix(x):
    z = (x + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def unit(index, seed, salt):
    return (mix(mix(seed ^ salt) ^ index) >> 11) / 9007199254740992.0


def strip_compression(name):
    low = name.lower()
    if low.endswith(".tgz") or low.endswith(".txz"):
        return name[:-4] + ".tar"
    for ext in (".xz", ".gz"):
        if low.endswith(ext):
            return name[: -len(ext)]
    return name


def is_tar_name(name):
    low = name.lower()
    return low.endswith((".tar", ".tar.xz", ".tar.gz", ".tgz", ".txz"))


def parse_number(field):
    if field and field[0] & 0x80:
        v = field[0] & 0x7F
        for b in field[1:]:
            v = (v << 8) | b
        return v
    v, digits = 0, 0
    for b in field:
        if b in (0, 0x20):
            if digits:
                break
            continue
        if not 0x30 <= b <= 0x37:
            return None
        v = v * 8 + b - 0x30
        digits += 1
    return v


def is_header(block):
    if len(block) < 512 or block[0] == 0:
        return False
    stored = parse_number(block[148:156])
    return stored is not None and stored == sum(block[:148]) + 8 * 32 + sum(block[156:512])


def has_magic(block):
    return len(block) >= 262 and block[257:262] == b"ustar"


def text_pieces(data):
    pos, n = 0, len(data)
    while True:
        chunk = data[pos:pos + PIECE]
        if len(chunk) < PIECE or pos + PIECE == n:
            if chunk:
                yield chunk
            return
        nl = chunk.rfind(b"\n")
        if nl >= 0:
            cut = nl + 1
        else:
            cut, steps = PIECE, 0
            while steps < 3 and cut > 1 and (data[pos + cut] & 0xC0) == 0x80:
                cut -= 1
                steps += 1
        yield chunk[:cut]
        pos += cut


def tar_members(tf, name):
    for m in tf:
        if m.type in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE):
            yield name + "/" + m.name, tf.extractfile(m).read()


def documents(data, name, depth=0):
    """Yields the raw bytes of each document in `data` (named `name`), in order."""
    if data.startswith(XZ):
        yield from documents(lzma.decompress(data), strip_compression(name), depth + 1)
        return
    if data.startswith(GZ):
        yield from documents(gzip.decompress(data), strip_compression(name), depth + 1)
        return
    head = data[:512]
    if is_header(head) or has_magic(head) or is_tar_name(name):
        if not data:
            return
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
            for member, body in tar_members(tf, name):
                yield from documents(body, member, depth + 1)
        return
    if name.lower().endswith(".jsonl"):
        for line in data.split(b"\n"):
            if all(b in b" \t\r" for b in line):
                continue
            yield json.loads(line)["text"].encode("utf-8")
        return
    yield from text_pieces(data)


def file_documents(path):
    if is_tar_name(path):
        with tarfile.open(path, mode="r|*") as tf:
            for member, body in tar_members(tf, path):
                yield from documents(body, member, 1)
        return
    with open(path, "rb") as f:
        yield from documents(f.read(), path)


def input_files(inputs, exclude=None):
    files = []
    ex = os.path.abspath(exclude) + os.sep if exclude else None
    for inp in inputs:
        if os.path.isfile(inp):
            files.append(inp)
            continue
        found = []
        for root, dirs, names in os.walk(inp):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for n in names:
                p = os.path.join(root, n)
                if n.startswith(".") or (ex and os.path.abspath(p).startswith(ex)):
                    continue
                if os.path.splitext(n)[1][1:].lower() in KNOWN:
                    found.append(p)
        if not found:
            sys.exit(f"error: {inp} holds no input files")
        files += sorted(found, key=lambda p: p.encode())
    return files


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--val-fraction", type=float, default=0.1)
    ap.add_argument("--sample-rate", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--invalid-utf8", choices=["skip", "replace", "error"], default="skip")
    ap.add_argument("--exclude")
    a = ap.parse_args()
    counts = {"train": {"tokens": 0, "documents": 0}, "val": {"tokens": 0, "documents": 0}}
    read = empty = invalid = sampled_out = 0
    text_bytes = 0
    for path in input_files(a.inputs, a.exclude):
        for raw in file_documents(path):
            index = read
            read += 1
            text_bytes += len(raw)
            try:
                text, repaired = raw.decode("utf-8"), False
            except UnicodeDecodeError:
                if a.invalid_utf8 == "error":
                    sys.exit(f"error: a document in {path} is not valid UTF-8")
                if a.invalid_utf8 == "skip":
                    invalid += 1
                    continue
                text, repaired = raw.decode("utf-8", "replace"), True
            if text.startswith("\ufeff"):
                text = text[1:]
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            if not text:
                empty += 1
                continue
            invalid += repaired
            if a.sample_rate < 1 and not unit(index, a.seed, SAMPLE_SALT) < a.sample_rate:
                sampled_out += 1
                continue
            split = "val" if a.val_fraction > 0 and unit(index, a.seed, SPLIT_SALT) < a.val_fraction else "train"
            counts[split]["tokens"] += len(text) - text.count("\x03") + 1
            counts[split]["documents"] += 1
    print(json.dumps({"splits": counts, "documents": {"read": read, "empty": empty, "invalid_utf8": invalid,
                                                      "sampled_out": sampled_out}, "text_bytes": text_bytes}, indent=1))


if __name__ == "__main__":
    main()
