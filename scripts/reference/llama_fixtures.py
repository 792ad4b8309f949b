#!/usr/bin/env python3
"""Hugging Face Llama-family fixtures: tiny random models saved by `transformers`.

Regenerates the tiny-llama*/tiny-qwen2 folders under Tests/EmeraldTests/Fixtures/hf/, which
Tests/EmeraldTests/LlamaTests.swift loads and compares against. Python is only used here;
Emerald never depends on it.

    python3 -m venv .venv
    .venv/bin/pip install torch transformers safetensors
    .venv/bin/python scripts/reference/llama_fixtures.py

Folders (no tokenizer: ids only), each `save_pretrained`:
  * tiny-llama/          LlamaForCausalLM, grouped-query attention (4 heads, 2 key/value),
                         untied head, rope_theta 10000
  * tiny-llama-tied/     tied head, llama3 rope scaling, head_dim 16 (q width 64 > hidden 32)
  * tiny-llama-sharded/  one key/value head, sharded (model.safetensors.index.json + shards)
  * tiny-llama-bf16/     weights stored as bfloat16 (references from the model reloaded in float32)
  * tiny-qwen2/          Qwen2ForCausalLM: q/k/v biases, tied head, grouped-query attention

and next to each, NAME.expected.safetensors (float32; ids stored as floats): ids (B, T),
logits (B, T, V), loss (labels = ids: mean next-token cross-entropy), grad.<name> for every
parameter, generate_prompt / generate_ids (greedy `generate` with the KV cache), and metadata
with the greedy margin.
"""
import os
import shutil

import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "EmeraldTests", "Fixtures", "hf")
VOCAB = 96


def build(name, arch, seed, layout="pretrained", dtype=torch.float32, **overrides):
    folder = os.path.join(OUT, name)
    shutil.rmtree(folder, ignore_errors=True)
    torch.manual_seed(seed)
    fields = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5, initializer_range=0.2,
                  tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
    # No pad_token_id: it would make the embedding's padding row gradient-free (padding_idx).
    fields.update(overrides)
    if arch == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**fields))
    else:
        model = LlamaForCausalLM(LlamaConfig(**fields))
    model = model.float()
    with torch.no_grad():  # norms and biases away from their 1/0 init, so loading them matters
        for n, p in model.named_parameters():
            if n.endswith("norm.weight") or n.endswith("layernorm.weight"):
                p.add_(0.1 * torch.randn_like(p))
            elif n.endswith("bias"):
                p.add_(0.2 * torch.randn_like(p))
    model = model.to(dtype)
    if layout == "sharded":
        model.save_pretrained(folder, max_shard_size="20KB")
    else:
        model.save_pretrained(folder)

    # Reference numbers from the model as reloaded in float32, exactly as a user would see it.
    cls = Qwen2ForCausalLM if arch == "qwen2" else LlamaForCausalLM
    model = cls.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager")
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(0, VOCAB, (2, 16), generator=g)
    model.eval()
    prompt = ids[:1, :5]
    with torch.no_grad():
        gen = model.generate(prompt, max_new_tokens=20, do_sample=False, use_cache=True, pad_token_id=0,
                             eos_token_id=None)
        # Greedy ids are only a fair test when no step is a near tie.
        full = model(gen).logits[0, 4:-1]
        top2 = full.topk(2, dim=-1).values
        margin = (top2[:, 0] - top2[:, 1]).min().item()
    assert margin > 1e-3, f"{name}: greedy margin {margin} too small for a robust fixture"
    model.train()  # no dropout in these configs; gradients as in fine-tuning
    out = model(ids, labels=ids)
    out.loss.backward()
    rec = {"ids": ids.float(), "logits": out.logits.detach(), "loss": out.loss.detach(),
           "generate_prompt": prompt[0].float(), "generate_ids": gen[0, 5:].float()}
    for n, p in model.named_parameters():
        if p.grad is not None:
            rec["grad." + n] = p.grad.detach().clone()
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in rec.items()}, os.path.join(OUT, name + ".expected.safetensors"),
              metadata={"greedy_margin": f"{margin:.4g}"})
    size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
    print(f"{name}: loss {out.loss.item():.6f}, greedy margin {margin:.3g}, folder {size / 1024:.0f} KB")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    build("tiny-llama", "llama", seed=11)
    build("tiny-llama-tied", "llama", seed=12, tie_word_embeddings=True, head_dim=16,
          rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                        "original_max_position_embeddings": 32})
    build("tiny-llama-sharded", "llama", seed=13, layout="sharded", num_key_value_heads=1, rope_theta=500.0)
    build("tiny-llama-bf16", "llama", seed=14, dtype=torch.bfloat16)
    build("tiny-qwen2", "qwen2", seed=15, tie_word_embeddings=True, rope_theta=1000000.0)
