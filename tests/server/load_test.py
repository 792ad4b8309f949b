#!/usr/bin/env python3
"""Load on `emerald serve` over loopback: 32 clients streaming completions and chats back to
back for a while (default 120 s), over raw HTTP (asyncio). Passes when no request fails,
every stream ends with `data: [DONE]`, and the server's memory stays flat: the mean RSS
(/proc/PID/status VmRSS, sampled every 2 s) of the last quarter of the run is at most 10%
above that of the first quarter after a warm-up. Reports requests, tokens, tokens/s and the
p50/p99 time to first token.

    python3 tests/server/load_test.py [--emerald BIN] [--checkpoint DIR] [--duration 120] [--clients 32]

Standard library only."""
import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (Failure, Server, add_server_arguments, book_text, check, model_flags, percentile,  # noqa: E402
                    request, require_loopback, run_main)


class Stats:
    def __init__(self):
        self.requests = self.tokens = self.chunks = 0
        self.ttft: list[float] = []
        self.errors: list[str] = []


async def stream_one(server: Server, payload: dict, stats: Stats) -> None:
    chat = "messages" in payload
    path = "/v1/chat/completions" if chat else "/v1/completions"
    t0 = time.perf_counter()
    r = await request(server.host, server.port, "POST", path, payload, timeout=120)
    try:
        if r.status != 200:
            raise Failure(f"{path} answered {r.status}: {(await r.body())[:160]!r}")
        check(r.headers.get("content-type", "").startswith("text/event-stream"),
              f"{path} stream has Content-Type {r.headers.get('content-type')!r}")
        first, done, usage, chunks = None, False, None, 0
        async for data in r.events():
            check(not done, f"{path}: events after data: [DONE]")
            if data == "[DONE]":
                done = True
                continue
            event = json.loads(data)
            check("error" not in event, f"{path}: an error event: {data[:160]}")
            if event.get("usage"):
                usage = event["usage"]
            for choice in event.get("choices", []):
                text = choice.get("delta", {}).get("content") if chat else choice.get("text")
                if text:
                    chunks += 1
                    if first is None:
                        first = time.perf_counter() - t0
        check(done, f"{path}: the stream ended without data: [DONE]")
        check(first is not None, f"{path}: the stream carried no text")
        stats.requests += 1
        stats.chunks += chunks
        stats.tokens += usage["completion_tokens"] if usage and "completion_tokens" in usage else chunks
        stats.ttft.append(first)
    finally:
        r.close()


async def client(server: Server, stats: Stats, prompts: list[str], until: float, seed: int) -> None:
    rng = random.Random(seed)
    while time.time() < until:
        prompt, chat = rng.choice(prompts), rng.random() < 0.5
        # Within the context: prompt (at most one token a character) plus the chat template's words.
        n = max(1, min(rng.randrange(16, 97), server.ctx - len(prompt) - (48 if chat else 2)))
        if not chat:
            payload = {"model": server.name, "prompt": prompt, "max_tokens": n,
                       "temperature": rng.choice([0, 0.7, 1.0]), "stream": True, "stream_options": {"include_usage": True}}
        else:
            payload = {"model": server.name, "max_tokens": n, "temperature": 0.8, "top_p": 0.95, "stream": True,
                       "stream_options": {"include_usage": True},
                       "messages": [{"role": "user", "content": prompt}]}
        try:
            await stream_one(server, payload, stats)
        except Failure as e:
            stats.errors.append(str(e))
        except (OSError, ConnectionError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
            stats.errors.append(f"{type(e).__name__}: {e}")
        if len(stats.errors) > 20:
            return


async def sample_rss(server: Server, samples: list[tuple[float, int]], until: float, t0: float) -> None:
    while time.time() < until:
        samples.append((time.time() - t0, server.rss_kib()))
        await asyncio.sleep(2)


async def load(server: Server, duration: float, clients: int) -> tuple[Stats, list[tuple[float, int]], float]:
    book = book_text()
    rng = random.Random(0)
    starts = [rng.randrange(0, len(book) - 200) for _ in range(200)]
    prompts = [book[s:s + rng.randrange(8, 60)] for s in starts]
    stats, samples = Stats(), []
    t0 = time.time()
    until = t0 + duration
    await asyncio.gather(sample_rss(server, samples, until, t0),
                         *(client(server, stats, prompts, until, seed) for seed in range(clients)))
    return stats, samples, time.time() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_server_arguments(p)
    p.add_argument("--duration", type=float, default=120, help="seconds of load (default 120)")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--max-growth", type=float, default=0.10, help="allowed RSS growth after warm-up (default 0.10)")
    args = p.parse_args()
    require_loopback()
    with tempfile.TemporaryDirectory(prefix="emerald-load-") as work:
        model = model_flags(args, work)
        with Server(args.emerald, model, ["--max-batch", "16", "--max-queue", "64"]) as server:
            m0 = server.metrics()
            stats, samples, seconds = asyncio.run(load(server, args.duration, args.clients))
            m1 = server.metrics()
            check(server.alive(), f"the server died under load: {server.tail()}")
            if stats.errors:
                distinct = sorted(set(stats.errors))
                raise Failure(f"{len(stats.errors)} request(s) failed under load ({len(distinct)} distinct): " + " | ".join(distinct[:3]))
            check(stats.requests > 0, "no request finished")

    # Memory: skip the first 15% of the run (model pages, buffer pools, caches filling), then
    # compare the first quarter of what is left with the last quarter.
    steady = [kib for t, kib in samples if t >= 0.15 * seconds]
    check(len(steady) >= 4, f"too few RSS samples ({len(samples)}) for a {seconds:.0f} s run")
    q = max(1, len(steady) // 4)
    first, last = statistics.mean(steady[:q]), statistics.mean(steady[-q:])
    growth = last / first - 1
    peak = max(kib for _, kib in samples)
    print(f"load test: {args.clients} streaming clients for {seconds:.0f} s on {server.name}")
    print(f"  requests {stats.requests} ({stats.requests / seconds:.1f}/s), tokens {stats.tokens} ({stats.tokens / seconds:.1f}/s), errors 0")
    steps = m1.get("emerald_decode_steps_total", 0) - m0.get("emerald_decode_steps_total", 0)
    generated = m1.get("emerald_generated_tokens_total", 0) - m0.get("emerald_generated_tokens_total", 0)
    if steps > 0:
        print(f"  server: {generated:.0f} tokens generated in {steps:.0f} decode steps ({generated / steps:.1f} sequences per step)")
    print(f"  time to first token: p50 {percentile(stats.ttft, 50) * 1000:.0f} ms, p99 {percentile(stats.ttft, 99) * 1000:.0f} ms")
    print(f"  server RSS: {samples[0][1] / 1024:.1f} MiB at start, first quarter after warm-up {first / 1024:.1f} MiB, "
          f"last quarter {last / 1024:.1f} MiB ({growth * 100:+.1f}%), peak {peak / 1024:.1f} MiB ({len(samples)} samples)")
    check(growth <= args.max_growth,
          f"the server's RSS grew {growth * 100:.1f}% under steady load ({first / 1024:.1f} → {last / 1024:.1f} MiB), "
          f"more than {args.max_growth * 100:.0f}%")
    print("load test passed")


if __name__ == "__main__":
    run_main(main)
