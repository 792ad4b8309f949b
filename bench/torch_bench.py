#!/usr/bin/env python3
"""PyTorch side of `bench/compare`: nanoGPT-style training steps (pre-LN, GELU-tanh,
tied embeddings, fused SDPA attention, AdamW) on synthetic tokens, or greedy
KV-cached generation with Hugging Face transformers. Prints one JSON object,
with the same keys as `emerald bench train|generate --json`."""
import argparse, json, math, resource, sys, time

p = argparse.ArgumentParser()
p.add_argument("mode", choices=["train", "generate"])
p.add_argument("--n-layer", type=int, default=4)
p.add_argument("--n-head", type=int, default=4)
p.add_argument("--n-embd", type=int, default=128)
p.add_argument("--vocab-size", type=int, default=65)
p.add_argument("--block-size", type=int, default=64)
p.add_argument("--batch-size", type=int, default=12)
p.add_argument("--steps", type=int, default=10)
p.add_argument("--warmup", type=int, default=2)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--prompt-tokens", type=int, default=16)
p.add_argument("--new-tokens", type=int, default=128)
p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
a = p.parse_args()

import torch
import torch.nn as nn
import torch.nn.functional as F
torch.set_num_threads(a.threads)
torch.manual_seed(0)
C, H, V, T, B = a.n_embd, a.n_head, a.vocab_size, a.block_size, a.batch_size


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.c_attn, self.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.c_fc, self.mlp_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def forward(self, x):
        b, t, _ = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (z.view(b, t, H, C // H).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, C)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
        self.h = nn.ModuleList(Block() for _ in range(a.n_layer))
        self.ln_f = nn.LayerNorm(C)
        # GPT-2's initialisation, as Emerald's GPT (nanoGPT `_init_weights`): N(0, 0.02),
        # residual projections N(0, 0.02/√(2L)), zero biases; final losses then agree (≈ ln V).
        for name, w in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(w)
            elif w.dim() >= 2:
                std = 0.02 / math.sqrt(2 * a.n_layer) if name.endswith(("c_proj.weight", "mlp_proj.weight")) else 0.02
                nn.init.normal_(w, 0.0, std)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for blk in self.h:
            x = blk(x)
        logits = self.ln_f(x) @ self.wte.weight.T
        return F.cross_entropy(logits.view(-1, V), targets.view(-1))


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if a.mode == "train":
    model = GPT()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)
    data = torch.randint(V, (max(100_000, B * (T + 1) * 4),))
    times = []
    for i in range(a.warmup + a.steps):
        ix = torch.randint(len(data) - T - 1, (B,))
        x = torch.stack([data[j:j + T] for j in ix]); y = torch.stack([data[j + 1:j + T + 1] for j in ix])
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.dtype == "bf16"):
            loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if i >= a.warmup:
            times.append(time.perf_counter() - t0)
    times.sort()
    sec = times[len(times) // 2]
    print(json.dumps({"tokens_per_s": round(B * T / sec), "ms_per_step": round(sec * 1e3, 2),
                      "peak_rss_mb": round(rss_mb(), 1), "final_loss": loss.item()}))
else:
    from transformers import GPT2Config, GPT2LMHeadModel
    cfg = GPT2Config(vocab_size=V, n_positions=T, n_embd=C, n_layer=a.n_layer, n_head=H)
    model = GPT2LMHeadModel(cfg).eval()
    prompt = torch.randint(V, (1, a.prompt_tokens))
    pre, dec = [], []
    with torch.no_grad():
        for r in range(4):
            t0 = time.perf_counter()
            out = model(prompt, use_cache=True)
            t1 = time.perf_counter()
            model.generate(prompt, max_new_tokens=a.new_tokens, min_new_tokens=a.new_tokens, do_sample=False,
                           use_cache=True, pad_token_id=0)
            t2 = time.perf_counter()
            if r:
                pre.append(a.prompt_tokens / (t1 - t0))
                dec.append(a.new_tokens / (t2 - t1 - (t1 - t0)))
    pre.sort(); dec.sort()
    print(json.dumps({"prefill_tokens_per_s": round(pre[1], 1), "decode_tokens_per_s": round(dec[1], 1),
                      "peak_rss_mb": round(rss_mb(), 1)}))
