#!/usr/bin/env python3
"""Checks a folder written by `emerald convert CKPT --to-hf OUT` with `transformers` itself.

    .venv/bin/python scripts/reference/check_hf_export.py OUT [--emerald .build/release/emerald]
                     [--text "Dorothy and the Wizard"] [--new-tokens 20]

Loads OUT with GPT2LMHeadModel.from_pretrained and AutoTokenizer.from_pretrained, then compares,
on the same ids: transformers' logits and loss with `emerald score --logits --json`, the
tokenizers' ids for TEXT with `emerald score --text`, and greedy `generate` with
`emerald sample --temperature 0 --print-ids`. Exits non-zero when a check fails
(logits > 1e-4, loss > 1e-5, ids or greedy tokens different). Needs torch + transformers (pip).
"""
import argparse
import json
import os
import subprocess
import sys

import torch
from transformers import AutoTokenizer, GPT2LMHeadModel


def emerald(binary, *args):
    r = subprocess.run([binary, *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"emerald {' '.join(args)} failed: {r.stderr.strip()}")
    return r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--emerald", default=".build/release/emerald")
    ap.add_argument("--text", default="Dorothy and the Wizard in Oz.\nThe Emerald City was bright")
    ap.add_argument("--new-tokens", type=int, default=20)
    a = ap.parse_args()

    model = GPT2LMHeadModel.from_pretrained(a.folder).float().eval()
    has_tok = os.path.exists(os.path.join(a.folder, "tokenizer.json"))
    tok = AutoTokenizer.from_pretrained(a.folder) if has_tok else None
    n_ctx = model.config.n_positions
    if tok is not None:
        ids = tok(a.text)["input_ids"][:n_ctx]
    else:
        ids = torch.randint(0, model.config.vocab_size, (min(24, n_ctx),), generator=torch.Generator().manual_seed(0)).tolist()
    ok = True
    print(f"{a.folder}: {sum(p.numel() for p in model.parameters()):,} parameters, "
          f"{model.config.n_layer} layers, vocab {model.config.vocab_size}, {len(ids)} ids")

    with torch.no_grad():
        out = model(torch.tensor([ids]), labels=torch.tensor([ids]))
    r = json.loads(emerald(a.emerald, "score", "--model", a.folder, "--ids", ",".join(map(str, ids)), "--logits", "--json"))
    dl = (torch.tensor(r["logits"]) - out.logits[0]).abs().max().item()
    dloss = abs(r["loss"] - out.loss.item())
    ok &= dl <= 1e-4 and dloss <= 1e-5
    print(f"  logits max |diff| {dl:.3g} (≤ 1e-4), loss {out.loss.item():.6f} vs {r['loss']:.6f}, |diff| {dloss:.3g} (≤ 1e-5)")

    if tok is not None:
        mine = json.loads(emerald(a.emerald, "score", "--model", a.folder, "--text", a.text, "--json"))["ids"]
        same = mine == tok(a.text)["input_ids"]
        ok &= same
        print(f"  tokenizer ids equal: {same} ({len(mine)} tokens, {type(tok).__name__})")
        print(f"  decode round trip: {tok.decode(tok(a.text)['input_ids']) == a.text}")

    prompt = ids[: max(1, min(8, len(ids)))]
    steps = min(a.new_tokens, n_ctx - len(prompt))
    with torch.no_grad():
        g = model.generate(torch.tensor([prompt]), max_new_tokens=steps, do_sample=False, use_cache=True,
                           pad_token_id=0, eos_token_id=None)[0, len(prompt):].tolist()
    e = json.loads(emerald(a.emerald, "sample", "--model", a.folder, "--prompt-ids", ",".join(map(str, prompt)),
                           "--temperature", "0", "--max-new-tokens", str(steps), "--print-ids"))
    ok &= g == e
    print(f"  greedy {steps} tokens identical: {g == e}")
    print("OK" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
