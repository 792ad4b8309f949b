#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora into Fuzz/corpus/<Target>/ (small valid inputs of
each format; libFuzzer mutates from them). Needs only the standard library and a built
`emerald` (for a real shard and manifest): python3 Fuzz/make_seeds.py .build/release/emerald
"""
import gzip, io, json, lzma, os, struct, subprocess, sys, tarfile, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Fuzz", "corpus")
EMERALD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build/release/emerald"))


def read(path):
    with open(path, "rb") as f:
        return f.read()


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def safetensors(tensors, metadata=None):
    header, body = {}, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(body), len(body) + len(raw)]}
        body += raw
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + body


# Start afresh, keeping crash inputs saved by hand (regression-* files this script does not write).
for d, _, files in list(os.walk(OUT)):
    for f in files:
        if not f.startswith("regression-"):
            os.remove(os.path.join(d, f))
f32 = lambda *xs: struct.pack("<%df" % len(xs), *xs)
put("SafeTensors", "two", safetensors({"a.weight": ("F32", [2, 2], f32(1, 2, 3, 4)), "b": ("F16", [3], b"\x00\x3c" * 3)},
                                      {"format": "pt"}))
put("SafeTensors", "bf16", safetensors({"x": ("BF16", [1, 2], b"\x80\x3f\x00\x40")}))
put("SafeTensors", "empty", safetensors({}))

fx = os.path.join(ROOT, "Tests", "EmeraldTests", "Fixtures")
put("TokenizerJSON", "bpe", read(os.path.join(fx, "bpe_trained_oz.json")))
for name in ["llama3", "tinyllama"]:  # Llama-style: byte-level with Split, SentencePiece with byte fallback
    put("TokenizerJSON", name, read(os.path.join(fx, "llama_tokenizers", name + ".json")))
put("TokenizerJSON", "char", json.dumps({"type": "char", "vocab": [10, 32, 33, 72, 101, 108, 111, 114, 119]}))
put("TokenizerJSON", "wordlevel", json.dumps({"version": "1.0", "added_tokens": [], "normalizer": None, "pre_tokenizer": {
    "type": "Split", "pattern": {"Regex": ""}, "behavior": "Isolated", "invert": False}, "post_processor": None,
    "decoder": {"type": "Fuse"}, "model": {"type": "WordLevel", "vocab": {"a": 0, "b": 1, "\n": 2}, "unk_token": "a"}}))

vocab = {"H": 0, "e": 1, "l": 2, "o": 3, "\u0120": 4, "w": 5, "r": 6, "d": 7, "ll": 8, "llo": 9, "<|endoftext|>": 10}
put("VocabMerges", "small", json.dumps(vocab).encode() + b"\x00" + b"#version: 0.2\nl l\nll o\n")

put("Config", "gpt", json.dumps({"model_type": "gpt", "vocab_size": 65, "n_positions": 16, "n_layer": 2, "n_head": 2,
                                  "n_embd": 16, "dropout": 0.1, "bias": True, "activation": "gelu", "norm": "pre",
                                  "tie_word_embeddings": True, "layer_norm_epsilon": 1e-5}))
put("Config", "bigram", json.dumps({"model_type": "bigram", "vocab_size": 65}))
put("Config", "hf", read(os.path.join(fx, "hf", "tiny-gpt2", "config.json")))


def tar(members, fmt=tarfile.USTAR_FORMAT):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=fmt) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return b.getvalue()


docs = [("a.txt", b"Dorothy lived in Kansas.\n"), ("sub/b.txt", "Toto \u00fc \U0001f981\r\n".encode())]
put("Tar", "ustar", tar(docs))
put("Tar", "gnu-long", tar([("d/" + "x" * 120 + ".txt", b"long name")], tarfile.GNU_FORMAT))
put("Tar", "pax", tar([("p\u00e9.txt", b"pax")], tarfile.PAX_FORMAT))

# Regressions: inputs that once crashed (kept so every run checks them again).
def raw_tar_member(name, typeflag, data):
    h = bytearray(512)
    h[0:len(name)] = name
    h[100:108] = b"0000644\0"
    h[124:136] = b"%011o\0" % len(data)
    h[156] = typeflag
    h[257:263] = b"ustar\0"
    h[148:156] = b"        "
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h) + data + b"\0" * (-len(data) % 512)


put("Tar", "regression-pax-length-overflow", raw_tar_member(b"pax", ord("x"), b"9" * 40 + b" path=x\n") + b"\0" * 1024)
put("Tar", "regression-negative-pax-size", raw_tar_member(b"pax", ord("x"), b"14 size=-1024\n") + raw_tar_member(b"f", ord("0"), b""))

jsonl = b'{"text": "Hello world"}\n\n{"text": "Dorothy \\u00fc"}\nnot json\n'
put("Documents", "jsonl", jsonl)
put("Documents", "xz", lzma.compress(jsonl))
put("Documents", "gz", gzip.compress(jsonl, mtime=0))
put("Documents", "tar-xz", lzma.compress(tar(docs)))

# A real shard and manifest, from the same corpus the Manifest target prepares.
with tempfile.TemporaryDirectory() as tmp:
    with open(os.path.join(tmp, "c.txt"), "w") as f:
        f.write("Dorothy and Toto.\n" * 20)
    subprocess.run([EMERALD, "prepare", "c.txt", "--out", "c", "--val-split", "tail", "--quiet", "--threads", "1"],
                   cwd=tmp, check=True)
    shard = bytearray(read(os.path.join(tmp, "c", "train-000000.bin")))
    put("Shards", "train", bytes(shard))
    shard[16:24] = b"\xff" * 8  # a token count past Int.max
    put("Shards", "regression-count-overflow", bytes(shard))
    put("Manifest", "manifest", read(os.path.join(tmp, "c", "manifest.json")))
print("wrote", sum(len(fs) for _, _, fs in os.walk(OUT)), "seeds under", os.path.relpath(OUT, ROOT))
