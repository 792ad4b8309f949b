#!/usr/bin/env python3
"""PyTorch twin of Emerald's GPT (llm.c-style reference fixtures).

Regenerates Tests/EmeraldTests/Fixtures/gpt_twin_{pre,post}.safetensors, which
Tests/EmeraldTests/GPTTwinTests.swift compares Emerald against. Python is only
used here, to produce fixtures; Emerald never depends on it at run time.

Setup (once) and run, from the repository root:

    python3 -m venv .venv
    .venv/bin/pip install torch safetensors numpy   # CPU is enough
    .venv/bin/python scripts/reference/gpt_twin.py

The model mirrors Sources/Emerald/models/GPT.swift exactly:
  * parameter names are Hugging Face GPT-2's; Linear weights are (out, in)
    like torch.nn.Linear; lm_head.weight exists only when embeddings are untied;
  * c_attn output channels [0,C) are q, [C,2C) k, [2C,3C) v; head h owns
    channels h*hs:(h+1)*hs of each; attention is
    F.scaled_dot_product_attention(is_causal=True);
  * pre-LN:  x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)); then ln_f
    post-LN: x = ln_1(x + attn(x)); x = ln_2(x + mlp(x)); then ln_f
  * GELU is the tanh approximation; LayerNorm eps 1e-5; dropout 0;
  * logits are (B*T, V); loss is mean cross-entropy;
  * AdamW is torch.optim.AdamW with two groups: weight decay on >= 2-D
    parameters only.

Each file holds, in float32: `param.<name>` (initial weights), `grad.<name>`
(d loss / d param at those weights), `ids` and `targets` (B*T token ids stored
as floats), `logits` (B*T, V), `loss` (scalar), `adamw_losses` (10 losses,
each recorded before its optimizer step, same batch every step), and a
`__metadata__` entry `config` with the hyperparameters as a JSON string (keys
as Emerald's GPTConfig.json() plus batch/time/optimizer settings).
"""
import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT_DIR = os.path.join(ROOT, "Tests", "EmeraldTests", "Fixtures")


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C = cfg["n_embd"]
        self.n_head = cfg["n_head"]
        self.c_attn = nn.Linear(C, 3 * C, bias=cfg["bias"])
        self.c_proj = nn.Linear(C, C, bias=cfg["bias"])

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        hs = C // self.n_head
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C = cfg["n_embd"]
        self.c_fc = nn.Linear(C, 4 * C, bias=cfg["bias"])
        self.c_proj = nn.Linear(4 * C, C, bias=cfg["bias"])
        self.activation = cfg["activation"]

    def act(self, x):
        return {
            "gelu": lambda t: F.gelu(t, approximate="tanh"),
            "relu": F.relu,
            "sigmoid": torch.sigmoid,
            "tanh": torch.tanh,
            "silu": F.silu,
        }[self.activation](x)

    def forward(self, x):
        return self.c_proj(self.act(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C = cfg["n_embd"]
        self.ln_1 = nn.LayerNorm(C, eps=1e-5, bias=cfg["bias"])
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(C, eps=1e-5, bias=cfg["bias"])
        self.mlp = MLP(cfg)
        self.norm = cfg["norm"]

    def forward(self, x):
        if self.norm == "pre":
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))
        x = self.ln_1(x + self.attn(x))
        return self.ln_2(x + self.mlp(x))


class GPT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C, V = cfg["n_embd"], cfg["vocab_size"]
        self.cfg = cfg
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(V, C),
            wpe=nn.Embedding(cfg["n_positions"], C),
            h=nn.ModuleList([Block(cfg) for _ in range(cfg["n_layer"])]),
            ln_f=nn.LayerNorm(C, eps=1e-5, bias=cfg["bias"]),
        ))
        self.lm_head = None if cfg["tie_word_embeddings"] else nn.Linear(C, V, bias=False)

    def forward(self, idx):
        B, T = idx.shape
        tr = self.transformer
        x = tr.wte(idx) + tr.wpe(torch.arange(T, device=idx.device))
        for block in tr.h:
            x = block(x)
        x = tr.ln_f(x).view(B * T, -1)
        w = tr.wte.weight if self.lm_head is None else self.lm_head.weight
        return F.linear(x, w)


def randomize(model, gen):
    """Non-trivial weights: N(0, 0.1²) matrices and biases, LN scale 1 + N(0, 0.1²)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.1
            if ".ln_" in name and name.endswith(".weight"):
                noise += 1.0
            p.copy_(noise.to(p.dtype))


def loss_of(model, ids, targets):
    logits = model(ids)
    return logits, F.cross_entropy(logits, targets.view(-1))


def make_optimizer(model, cfg):
    decay = [p for _, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for _, p in model.named_parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg["weight_decay"]},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]),
                             eps=cfg["eps"], foreach=False)


def run(cfg, dtype, init_state, ids, targets, steps):
    model = GPT(cfg).to(dtype)
    model.load_state_dict({k: v.to(dtype) for k, v in init_state.items()})
    logits, loss = loss_of(model, ids, targets)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    opt = make_optimizer(model, cfg)
    losses = []
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        _, l = loss_of(model, ids, targets)
        losses.append(l.item())
        l.backward()
        opt.step()
    return logits.detach(), loss.detach(), grads, losses


def generate(tag, cfg, seed):
    gen = torch.Generator().manual_seed(seed)
    model = GPT(cfg)
    randomize(model, gen)
    init_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    B, T, V = cfg["batch"], cfg["time"], cfg["vocab_size"]
    ids = torch.randint(0, V, (B, T), generator=gen)
    targets = torch.randint(0, V, (B, T), generator=gen)

    logits, loss, grads, losses = run(cfg, torch.float32, init_state, ids, targets, cfg["steps"])
    # Float64 run of the same twin: the float32 reference's own rounding noise.
    l64, loss64, g64, losses64 = run(cfg, torch.float64, init_state, ids, targets, cfg["steps"])
    rel = max(((grads[n].double() - g64[n]).norm() / g64[n].norm()).item() for n in grads if g64[n].norm() > 0)
    print(f"[{tag}] fp32 vs fp64 torch: logits {(logits.double() - l64).abs().max().item():.2e}, "
          f"loss {abs(loss.item() - loss64.item()):.2e}, grad rel {rel:.2e}, "
          f"adamw losses {max(abs(a - b) for a, b in zip(losses, losses64)):.2e}")

    names = [n for n, _ in GPT(cfg).named_parameters()]
    assert set(names) == set(init_state), (names, list(init_state))
    tensors = {}
    for n in names:
        tensors["param." + n] = init_state[n].float().contiguous()
        tensors["grad." + n] = grads[n].float().contiguous()
    tensors["ids"] = ids.reshape(-1).float()
    tensors["targets"] = targets.reshape(-1).float()
    tensors["logits"] = logits.float().contiguous()
    tensors["loss"] = loss.float().reshape(())
    tensors["adamw_losses"] = torch.tensor(losses, dtype=torch.float32)
    meta = {k: cfg[k] for k in cfg if k != "steps"}
    meta["adamw_steps"] = cfg["steps"]
    path = os.path.join(OUT_DIR, f"gpt_twin_{tag}.safetensors")
    # A single metadata key keeps the file byte-for-byte reproducible
    # (safetensors writes a multi-key metadata map in hash order).
    save_file(tensors, path, metadata={"config": json.dumps(meta, sort_keys=True)})
    print(f"[{tag}] wrote {os.path.relpath(path, ROOT)} ({os.path.getsize(path)} bytes), "
          f"{len(names)} params, loss {loss.item():.6f}, "
          f"adamw losses {losses[0]:.4f} -> {losses[-1]:.4f}")


BASE = dict(vocab_size=13, n_positions=16, n_layer=2, n_head=2, n_embd=16, bias=True,
            batch=3, time=12, lr=1e-2, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1,
            steps=10)

if __name__ == "__main__":
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT_DIR, exist_ok=True)
    generate("pre", dict(BASE, norm="pre", tie_word_embeddings=True, activation="gelu"), seed=1234)
    generate("post", dict(BASE, norm="post", tie_word_embeddings=False, activation="relu"), seed=5678)
