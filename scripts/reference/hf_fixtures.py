#!/usr/bin/env python3
"""Hugging Face GPT-2 fixtures: tiny random models saved by `transformers`.

Regenerates Tests/EmeraldTests/Fixtures/hf/, which Tests/EmeraldTests/HFTests.swift
loads and compares against. Python is only used here; Emerald never depends on it.

    python3 -m venv .venv
    .venv/bin/pip install torch transformers tokenizers safetensors
    .venv/bin/python scripts/reference/hf_fixtures.py

Three model folders, each as Emerald must read it:
  * tiny-gpt2/          `save_pretrained` layout (`transformer.` keys, tied LM head,
                        no lm_head.weight), gelu_new, tokenizer.json
  * tiny-gpt2-hub/      the hub checkpoints' layout: keys without `transformer.`, extra
                        `h.N.attn.bias` / `h.N.attn.masked_bias` buffers, untied
                        lm_head.weight, relu, layer_norm_epsilon 1e-6, vocab.json + merges.txt
  * tiny-gpt2-sharded/  `save_pretrained(max_shard_size=…)`: model.safetensors.index.json
                        + several shards, gelu_pytorch_tanh, tokenizer.json

and next to each, NAME.expected.safetensors (float32; ids stored as floats):
  ids (B, T), logits (B, T, V), loss (scalar: labels=ids, i.e. mean next-token
  cross-entropy), per_token_loss (B, T-1), grad.<hf name> for every parameter (HF
  layout: Conv1D weights are (in, out)), after_step.<hf name> (parameters after one
  torch.optim.AdamW step, weight decay on >= 2-D parameters only), loss_after_step,
  generate_prompt / generate_ids (greedy `generate`, KV cache), text_ids (the
  tokenizer's encoding of TEXT), and metadata with the optimizer settings and TEXT.
"""
import os
import shutil

import torch
from safetensors.torch import save_file
from tokenizers import ByteLevelBPETokenizer
from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "EmeraldTests", "Fixtures", "hf")

CORPUS = """Dorothy lived in the midst of the great Kansas prairies, with Uncle Henry,
who was a farmer, and Aunt Em, who was the farmer's wife. Their house was small,
for the lumber to build it had to be carried by wagon many miles. The Wizard of Oz
lives in the Emerald City — a café? naïve! Zürich 42 3.14 "quotes" and 'apostrophes'.
""" * 20
TEXT = "Dorothy and the Wizard in Oz — café naïve, 1900!\n  The Emerald City's gates."
LR, BETAS, EPS, WD = 1e-2, (0.9, 0.95), 1e-8, 0.1


def tokenizer_files(folder, kind):
    tok = ByteLevelBPETokenizer()
    tok.train_from_iterator([CORPUS], vocab_size=300, min_frequency=2, special_tokens=["<|endoftext|>"])
    os.makedirs(folder, exist_ok=True)
    if kind == "json":
        tok.save(os.path.join(folder, "tokenizer.json"))
    else:
        tok.save_model(folder)  # vocab.json + merges.txt
    return tok


def build(name, layout, activation, tie, eps, seed):
    folder = os.path.join(OUT, name)
    shutil.rmtree(folder, ignore_errors=True)
    tok = tokenizer_files(folder, "files" if layout == "hub" else "json")
    vocab = tok.get_vocab_size()
    eot = tok.token_to_id("<|endoftext|>")
    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=vocab, n_positions=32, n_embd=32, n_layer=2, n_head=4,
                     activation_function=activation, layer_norm_epsilon=eps, tie_word_embeddings=tie,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, initializer_range=0.2,
                     bos_token_id=eot, eos_token_id=eot)
    model = GPT2LMHeadModel(cfg).float()
    with torch.no_grad():  # biases and LayerNorm affine away from their 0/1 init, so loading them matters
        for n, p in model.named_parameters():
            if n.endswith("bias") or ".ln_" in n:
                p.add_(0.1 * torch.randn_like(p))

    if layout == "hub":
        cfg.save_pretrained(folder)
        sd = {k.removeprefix("transformer."): v.contiguous() for k, v in model.state_dict().items()}
        n = cfg.n_positions
        for i in range(cfg.n_layer):  # the buffers old hub checkpoints carry
            sd[f"h.{i}.attn.bias"] = torch.tril(torch.ones(n, n)).view(1, 1, n, n)
            sd[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
        save_file(sd, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
        model.generation_config.save_pretrained(folder)
    elif layout == "sharded":
        model.save_pretrained(folder, max_shard_size="40KB")
    else:
        model.save_pretrained(folder)

    # Reference numbers from the model as reloaded, exactly as a user would see it.
    model = GPT2LMHeadModel.from_pretrained(folder).float()
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(0, vocab, (2, 16), generator=g)
    model.eval()
    prompt = ids[:1, :5]
    with torch.no_grad():
        gen = model.generate(prompt, max_new_tokens=20, do_sample=False, use_cache=True,
                             pad_token_id=eot, eos_token_id=None)
        # Greedy ids are only a fair test when no step is a near tie.
        full = model(gen).logits[0, 4:-1]
        top2 = full.topk(2, dim=-1).values
        margin = (top2[:, 0] - top2[:, 1]).min().item()
    assert margin > 1e-3, f"{name}: greedy margin {margin} too small for a robust fixture"
    rec_gen = {}
    rec_gen["generate_prompt"] = prompt[0].float()
    rec_gen["generate_ids"] = gen[0, 5:].float()
    model.train()  # dropout is 0; gradients as in fine-tuning
    out = model(ids, labels=ids)
    out.loss.backward()
    logits = out.logits.detach()
    per_token = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, vocab), ids[:, 1:].reshape(-1),
                                                  reduction="none").view(2, 15)
    rec = {"ids": ids.float(), "logits": logits, "loss": out.loss.detach(), "per_token_loss": per_token, **rec_gen}
    params = dict(model.named_parameters())
    for n, p in params.items():
        rec["grad." + n] = p.grad.detach().clone()
    decay = [p for p in params.values() if p.dim() >= 2]
    no_decay = [p for p in params.values() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=LR, betas=BETAS, eps=EPS)
    opt.step()
    for n, p in params.items():
        rec["after_step." + n] = p.detach().clone()
    with torch.no_grad():
        rec["loss_after_step"] = model(ids, labels=ids).loss.detach()

    hf_tok = GPT2TokenizerFast.from_pretrained(folder) if layout == "hub" else None
    text_ids = hf_tok(TEXT)["input_ids"] if hf_tok else tok.encode(TEXT).ids
    rec["text_ids"] = torch.tensor(text_ids, dtype=torch.float32)
    meta = {"lr": str(LR), "beta1": str(BETAS[0]), "beta2": str(BETAS[1]), "eps": str(EPS),
            "weight_decay": str(WD), "text": TEXT, "greedy_margin": f"{margin:.4g}"}
    save_file({k: v.contiguous() for k, v in rec.items()}, os.path.join(OUT, name + ".expected.safetensors"),
              metadata=meta)
    size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
    print(f"{name}: vocab {vocab}, loss {out.loss.item():.6f}, greedy margin {margin:.3g}, folder {size / 1024:.0f} KB")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    build("tiny-gpt2", "pretrained", "gelu_new", tie=True, eps=1e-5, seed=1)
    build("tiny-gpt2-hub", "hub", "relu", tie=False, eps=1e-6, seed=2)
    build("tiny-gpt2-sharded", "sharded", "gelu_pytorch_tanh", tie=True, eps=1e-5, seed=3)
