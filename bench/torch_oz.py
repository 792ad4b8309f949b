#!/usr/bin/env python3
"""PyTorch twin of `emerald train` (GPT, oz preset) on the Oz book, for
side-by-side loss and wall-time comparison. Reference only: Emerald never
imports Python.

    python3 -m venv .venv && .venv/bin/pip install torch numpy
    .venv/bin/python bench/torch_oz.py --data assets/wizard_of_oz.txt --out runs/torch-oz

Same data handling as Emerald (UTF-8, BOM dropped, CRLF/CR -> LF, sorted
character vocabulary, first 90% train / last 10% val), same model (pre-LN,
GELU-tanh, tied embeddings, dropout 0.1 on embeddings, attention
probabilities, attention output and MLP output), same optimizer recipe (AdamW (0.9, 0.99), wd 0.1 on >=2-D
weights, lr 3e-3 -> 3e-4 cosine after 100 warmup steps, clip 1.0) and the same
evaluation (every 250 steps; 10 random batches of the train split, the whole val
split once in consecutive windows). Random streams differ, so losses agree statistically, not
bit for bit.
"""
import argparse, json, math, time
import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--data", required=True)
p.add_argument("--out", default="runs/torch-oz")
p.add_argument("--steps", type=int, default=2500)
p.add_argument("--batch-size", type=int, default=32)
p.add_argument("--block-size", type=int, default=128)
p.add_argument("--n-layer", type=int, default=4)
p.add_argument("--n-head", type=int, default=4)
p.add_argument("--n-embd", type=int, default=128)
p.add_argument("--dropout", type=float, default=0.1)
p.add_argument("--attn-dropout", type=float, default=None, help="dropout on attention probabilities (default: --dropout)")
p.add_argument("--lr", type=float, default=3e-3)
p.add_argument("--min-lr", type=float, default=3e-4)
p.add_argument("--warmup-steps", type=int, default=100)
p.add_argument("--eval-interval", type=int, default=250)
p.add_argument("--eval-iters", type=int, default=10)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--seed", type=int, default=1337)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)

raw = open(a.data, "rb").read().decode("utf-8")
if raw.startswith("\ufeff"):
    raw = raw[1:]
text = raw.replace("\r\n", "\n").replace("\r", "\n")
chars = sorted(set(text))
stoi = {c: i for i, c in enumerate(chars)}
data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
n = int(len(data) * 0.9)
train_data, val_data = data[:n], data[n:]
V, T, B, C = len(chars), a.block_size, a.batch_size, a.n_embd
attn_p = a.dropout if a.attn_dropout is None else a.attn_dropout


def get_batch(split, gen=None):
    d = train_data if split == "train" else val_data
    ix = torch.randint(len(d) - T, (B,), generator=gen)
    x = torch.stack([d[i:i + T] for i in ix])
    y = torch.stack([d[i + 1:i + T + 1] for i in ix])
    return x, y


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1 = nn.LayerNorm(C)
        self.c_attn = nn.Linear(C, 3 * C)
        self.c_proj = nn.Linear(C, C)
        self.ln_2 = nn.LayerNorm(C)
        self.c_fc = nn.Linear(C, 4 * C)
        self.mlp_proj = nn.Linear(4 * C, C)
        self.drop = nn.Dropout(a.dropout)

    def forward(self, x):
        b, t, _ = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (z.view(b, t, a.n_head, C // a.n_head).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=attn_p if self.training else 0.0).transpose(1, 2).contiguous().view(b, t, C)
        x = x + self.drop(self.c_proj(y))
        return x + self.drop(self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh")))


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Embedding(T, C)
        self.drop = nn.Dropout(a.dropout)
        self.h = nn.ModuleList(Block() for _ in range(a.n_layer))
        self.ln_f = nn.LayerNorm(C)
        for name, prm in self.named_parameters():
            if prm.dim() >= 2:
                std = 0.02 / math.sqrt(2 * a.n_layer) if name.endswith(("c_proj.weight", "mlp_proj.weight")) else 0.02
                nn.init.normal_(prm, 0.0, std)
            elif "ln" not in name:
                nn.init.zeros_(prm)

    def forward(self, idx, targets):
        t = idx.shape[1]
        x = self.drop(self.wte(idx) + self.wpe(torch.arange(t)))
        for blk in self.h:
            x = blk(x)
        logits = self.ln_f(x) @ self.wte.weight.T
        return F.cross_entropy(logits.view(-1, V), targets.view(-1))


model = GPT()
decay = [q for q in model.parameters() if q.dim() >= 2]
no_decay = [q for q in model.parameters() if q.dim() < 2]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                        lr=a.lr, betas=(0.9, 0.99))


def lr_at(step):
    if step < a.warmup_steps:
        return a.lr * (step + 1) / a.warmup_steps
    r = (step - a.warmup_steps) / max(1, a.steps - a.warmup_steps)
    return a.min_lr + 0.5 * (1 + math.cos(math.pi * min(r, 1.0))) * (a.lr - a.min_lr)


@torch.no_grad()
def estimate():
    model.eval()
    out = {}
    for split, seed in (("train", 3), ("val", 4)):
        d = train_data if split == "train" else val_data
        if len(d) - 1 <= a.eval_iters * B * T:
            # As Emerald: a split no larger than the sampled batches is scored exactly once,
            # in consecutive windows (every target once), weighted by window count.
            w = (len(d) - 1) // T
            x = d[:w * T].view(w, T); y = d[1:w * T + 1].view(w, T)
            out[split] = sum(model(x[i:i + B], y[i:i + B]).item() * len(x[i:i + B]) for i in range(0, w, B)) / w
            continue
        g = torch.Generator().manual_seed(seed)
        out[split] = sum(model(*get_batch(split, g)).item() for _ in range(a.eval_iters)) / a.eval_iters
    model.train()
    return out


import os
os.makedirs(a.out, exist_ok=True)
log = open(os.path.join(a.out, "metrics.jsonl"), "w")
start = time.time()
best = float("inf")
for step in range(a.steps + 1):
    if step % a.eval_interval == 0 or step == a.steps:
        l = estimate()
        best = min(best, l["val"])
        rec = {"step": step, "train_loss": l["train"], "val_loss": l["val"], "elapsed_s": time.time() - start}
        log.write(json.dumps(rec) + "\n"); log.flush()
        print(f"step {step}/{a.steps} | train {l['train']:.4f} | val {l['val']:.4f} | {time.time() - start:.1f}s", flush=True)
    if step == a.steps:
        break
    for grp in opt.param_groups:
        grp["lr"] = lr_at(step)
    loss = model(*get_batch("train"))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
print(f"best val {best:.4f}, wall {time.time() - start:.1f}s")
