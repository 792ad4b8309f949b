#!/usr/bin/env python3
"""transformers' side of `bench/llama_decode`: greedy KV-cached decoding with a randomly
initialised LlamaForCausalLM of SmolLM2-135M's shape (30 layers, 576 wide, 9 heads / 3 key/value
heads, MLP 1536, vocabulary 49,152, tied head). Prints one JSON object with
`emerald bench generate --json`'s keys. Python and torch are only used here."""
import argparse, json, time

p = argparse.ArgumentParser()
p.add_argument("--prompt-tokens", type=int, default=16)
p.add_argument("--new-tokens", type=int, default=64)
p.add_argument("--repeats", type=int, default=3)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
a = p.parse_args()

import torch
from transformers import LlamaConfig, LlamaForCausalLM

torch.set_num_threads(a.threads)
torch.manual_seed(0)
cfg = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                  num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                  rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=True)
model = LlamaForCausalLM(cfg).eval()
if a.dtype == "bf16":
    model = model.to(torch.bfloat16)
prompt = torch.randint(0, cfg.vocab_size, (1, a.prompt_tokens))


def run(n):
    t = time.perf_counter()
    with torch.no_grad():
        model.generate(prompt, max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0)
    return time.perf_counter() - t


run(4)  # warm-up
rates = []
for _ in range(a.repeats):
    one, full = run(1), run(a.new_tokens + 1)
    rates.append(a.new_tokens / (full - one))  # the decode steps alone, prefill and set-up removed
rates.sort()
print(json.dumps({"decode_tokens_per_s": round(rates[len(rates) // 2], 1), "dtype": a.dtype, "threads": a.threads,
                  "parameters": sum(p.numel() for p in model.parameters()), "torch": torch.__version__}))
