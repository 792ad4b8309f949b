#!/usr/bin/env python3
"""`emerald serve` through the official `openai` Python client: models, completions, chat,
streaming, errors (401, 404, 400) and determinism — at temperature 0, 16 concurrent requests
give the same tokens as the same 16 one at a time, and as `emerald sample --temperature 0`.

    .venv-server/bin/python tests/server/openai_client_test.py [--emerald BIN] [--checkpoint DIR]

Without --checkpoint a tiny char-level model is trained first (a few seconds). Needs the
`openai` package (scripts/setup puts it in .venv-server/); exits 77 when it is missing."""
import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (Failure, Server, Skip, add_server_arguments, book_text, char_vocabulary, check,  # noqa: E402
                    model_flags, require_loopback, run_main)

KEY = "sk-emerald-test"
NEW_TOKENS = 32
STREAMS = 16


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_server_arguments(p)
    args = p.parse_args()
    try:
        import openai
    except ImportError:
        raise Skip("the openai package is not installed (scripts/setup makes .venv-server/ with it)")
    require_loopback()
    with tempfile.TemporaryDirectory(prefix="emerald-openai-") as work:
        model = model_flags(args, work)
        with Server(args.emerald, model, ["--api-key", KEY, "--max-batch", str(STREAMS)]) as server:
            run(openai, server, args)


def expect_error(openai, kind, what: str, call) -> str:
    """Calls `call`, which must raise `kind` (an openai APIStatusError) with an OpenAI-shaped body."""
    try:
        call()
    except kind as e:
        body = e.body if isinstance(e.body, dict) else {}
        check(isinstance(body.get("message"), str) and body["message"],
              f"{what}: the error body has no message in OpenAI's shape ({{\"error\": {{\"message\": …}}}}): {e.body!r}")
        return f"{e.status_code}"
    except openai.APIStatusError as e:
        raise Failure(f"{what}: expected {kind.__name__}, got {type(e).__name__} {e.status_code}: {e.message}")
    raise Failure(f"{what}: expected {kind.__name__}, the request succeeded")


def run(openai, server: Server, args) -> None:
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0, timeout=120)
    results = []

    # Models.
    ids = [m.id for m in client.models.list().data]
    check(server.name in ids, f"GET /v1/models lists {ids}, not the served model {server.name!r}")
    results.append(f"models {ids}")

    # Completions.
    c = client.completions.create(model=server.name, prompt="Dorothy lived", max_tokens=20, temperature=0)
    check(len(c.choices) == 1 and isinstance(c.choices[0].text, str) and c.choices[0].text,
          f"completion: expected one choice with text, got {c.choices!r}")
    check(c.choices[0].finish_reason in ("length", "stop"), f"completion: finish_reason {c.choices[0].finish_reason!r}")
    check(c.usage is not None and 0 < c.usage.completion_tokens <= 20 and c.usage.prompt_tokens > 0,
          f"completion: usage {c.usage!r} (max_tokens 20)")
    check(c.usage.total_tokens == c.usage.prompt_tokens + c.usage.completion_tokens, f"completion: usage totals {c.usage!r}")
    if c.choices[0].finish_reason == "length":
        check(c.usage.completion_tokens == 20, f"completion: finish_reason length after {c.usage.completion_tokens} of 20 tokens")
    again = client.completions.create(model=server.name, prompt="Dorothy lived", max_tokens=20, temperature=0)
    check(again.choices[0].text == c.choices[0].text, "completion: temperature 0 gave two different texts for one prompt")

    # Streamed completion: the same text as the whole one.
    pieces = [ch.choices[0].text for ch in client.completions.create(
        model=server.name, prompt="Dorothy lived", max_tokens=20, temperature=0, stream=True) if ch.choices]
    check(len(pieces) >= 2, f"streamed completion came in {len(pieces)} chunk(s)")
    check("".join(pieces) == c.choices[0].text,
          f"streamed completion {''.join(pieces)!r} differs from the whole one {c.choices[0].text!r}")
    results.append(f"completion ok ({c.usage.completion_tokens} tokens, streamed in {len(pieces)} chunks)")

    # Chat.
    msgs = [{"role": "system", "content": "You are a guide to Oz."}, {"role": "user", "content": "Where is Kansas?"}]
    chat = client.chat.completions.create(model=server.name, messages=msgs, max_tokens=24, temperature=0)
    m = chat.choices[0].message
    check(m.role == "assistant" and isinstance(m.content, str) and m.content, f"chat: message {m!r}")
    check(chat.usage is not None and 0 < chat.usage.completion_tokens <= 24, f"chat: usage {chat.usage!r}")
    check(chat.object == "chat.completion", f"chat: object {chat.object!r}")
    deltas, finish, roles = [], None, set()
    for ch in client.chat.completions.create(model=server.name, messages=msgs, max_tokens=24, temperature=0, stream=True):
        check(ch.object == "chat.completion.chunk", f"chat stream: object {ch.object!r}")
        if ch.choices:
            d = ch.choices[0].delta
            if d.role:
                roles.add(d.role)
            if d.content:
                deltas.append(d.content)
            finish = ch.choices[0].finish_reason or finish
    check(len(deltas) >= 2, f"streamed chat came in {len(deltas)} content chunk(s)")
    check("".join(deltas) == m.content, f"streamed chat {''.join(deltas)!r} differs from the whole one {m.content!r}")
    check(finish in ("length", "stop"), f"streamed chat: last finish_reason {finish!r}")
    check(roles <= {"assistant"}, f"streamed chat: roles {roles}")
    results.append(f"chat ok ({chat.usage.completion_tokens} tokens, streamed in {len(deltas)} chunks)")

    # Errors.
    bad_key = openai.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0)
    codes = {
        "wrong api key": expect_error(openai, openai.AuthenticationError, "wrong api key",
                                      lambda: bad_key.completions.create(model=server.name, prompt="x", max_tokens=2)),
        "unknown model": expect_error(openai, openai.NotFoundError, "unknown model",
                                      lambda: client.completions.create(model="no-such-model", prompt="x", max_tokens=2)),
        "unknown chat model": expect_error(openai, openai.NotFoundError, "unknown chat model",
                                           lambda: client.chat.completions.create(model="no-such-model", messages=msgs, max_tokens=2)),
        "max_tokens -5": expect_error(openai, openai.BadRequestError, "max_tokens -5",
                                      lambda: client.completions.create(model=server.name, prompt="x", max_tokens=-5)),
        "temperature -1": expect_error(openai, openai.BadRequestError, "temperature -1",
                                       lambda: client.completions.create(model=server.name, prompt="x", max_tokens=2, temperature=-1)),
        "top_p 2": expect_error(openai, openai.BadRequestError, "top_p 2",
                                lambda: client.chat.completions.create(model=server.name, messages=msgs, max_tokens=2, top_p=2)),
        "no messages": expect_error(openai, openai.BadRequestError, "no messages",
                                    lambda: client.chat.completions.create(model=server.name, messages=[], max_tokens=2)),
        "bad role": expect_error(openai, openai.BadRequestError, "bad role",
                                 lambda: client.chat.completions.create(model=server.name, max_tokens=2,
                                                                        messages=[{"role": "wizard", "content": "hi"}])),
        "streamed, temperature 9": expect_error(openai, openai.BadRequestError, "streamed, temperature 9",
                                                lambda: list(client.completions.create(model=server.name, prompt="x", max_tokens=2,
                                                                                       temperature=9, stream=True))),
    }
    results.append("errors " + ", ".join(f"{k} → {v}" for k, v in codes.items()))

    results.append(determinism(client, server, args))
    check(server.alive(), f"the server died: {server.tail()}")
    print("openai client test passed:")
    for r in results:
        print("  " + r)


def determinism(client, server: Server, args) -> str:
    """16 prompts at temperature 0: one at a time, all at once (half of them streamed), and `emerald sample`."""
    vocab = char_vocabulary(args.checkpoint) if args.checkpoint else None
    book = book_text()
    starts = [1000 + 7919 * i % (len(book) - 100) for i in range(STREAMS)]
    prompts = [book[s:s + 4 + 3 * i] for i, s in enumerate(starts)]  # 4 … 49 characters

    def ask(i: int, stream: bool) -> str:
        if stream:
            return "".join(ch.choices[0].text for ch in client.completions.create(
                model=server.name, prompt=prompts[i], max_tokens=NEW_TOKENS, temperature=0, stream=True) if ch.choices)
        r = client.completions.create(model=server.name, prompt=prompts[i], max_tokens=NEW_TOKENS, temperature=0)
        check(r.usage.completion_tokens == NEW_TOKENS,
              f"prompt {i}: {r.usage.completion_tokens} tokens of {NEW_TOKENS} (finish_reason {r.choices[0].finish_reason})")
        return r.choices[0].text

    t0 = time.time()
    one_by_one = [ask(i, False) for i in range(STREAMS)]
    sequential_s = time.time() - t0

    together: list = [None] * STREAMS
    barrier = threading.Barrier(STREAMS)

    def worker(i: int) -> None:
        try:
            barrier.wait()
            together[i] = ask(i, stream=i % 2 == 1)
        except BaseException as e:  # noqa: BLE001
            together[i] = e

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(STREAMS)]
    m0 = server.metrics()
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    concurrent_s = time.time() - t0
    m1 = server.metrics()
    for i, out in enumerate(together):
        if isinstance(out, BaseException):
            raise Failure(f"concurrent request {i} failed: {type(out).__name__}: {out}")
        check(out == one_by_one[i], f"prompt {i}: {STREAMS} at once gave {out!r}, one at a time {one_by_one[i]!r}")

    # Decoded together: far fewer decode steps than tokens (the server's own counters).
    batching = ""
    steps, tokens = "emerald_decode_steps_total", "emerald_generated_tokens_total"
    if steps in m0 and steps in m1 and tokens in m1:
        s, t = m1[steps] - m0[steps], m1[tokens] - m0[tokens]
        check(t == STREAMS * NEW_TOKENS, f"the server counted {t:.0f} generated tokens for {STREAMS} × {NEW_TOKENS}")
        check(s <= t / 4, f"{STREAMS} concurrent requests took {s:.0f} decode steps for {t:.0f} tokens: not batched")
        batching = f", {t / max(s, 1):.1f} sequences per decode step on average"
    against = "(no char-level checkpoint: not compared with emerald sample)"
    if vocab is not None:
        index = {ch: i for i, ch in enumerate(vocab)}
        for i, prompt in enumerate(prompts):
            ids = ",".join(str(index[ch]) for ch in prompt)
            r = subprocess.run([args.emerald, "sample", "--checkpoint", args.checkpoint, "--temperature", "0",
                                "--prompt-ids", ids, "--max-new-tokens", str(NEW_TOKENS), "--print-ids"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
            check(r.returncode == 0, f"emerald sample failed: {r.stderr.strip()}")
            sampled = "".join(vocab[int(t)] for t in r.stdout.strip().strip("[]").split(",") if t.strip())
            check(sampled == one_by_one[i], f"prompt {i}: the server gave {one_by_one[i]!r}, emerald sample {sampled!r}")
        against = "and as emerald sample --temperature 0 (token ids)"
    return (f"determinism: {STREAMS} prompts × {NEW_TOKENS} tokens at temperature 0 — the same {STREAMS} at once "
            f"({concurrent_s:.2f} s{batching}) as one at a time ({sequential_s:.2f} s) {against}")


if __name__ == "__main__":
    run_main(main)
