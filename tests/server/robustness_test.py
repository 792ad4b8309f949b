#!/usr/bin/env python3
"""`emerald serve` against malformed requests over raw sockets (asyncio): bad JSON, wrong
types, huge and negative numbers, invalid UTF-8, broken HTTP framing, a huge Content-Length,
slow bodies that stop half-way, and clients that vanish mid-request or mid-stream. Every
request that can be answered must get a 4xx (in OpenAI's error shape when the HTTP framing was
valid) or, for broken framing, a closed connection; never a 2xx, a 5xx or a hang. Afterwards the
server must still answer a completion exactly as before, and 16 at once.

    python3 tests/server/robustness_test.py [--emerald BIN] [--checkpoint DIR] [--requests 1000]

Standard library only."""
import argparse
import asyncio
import collections
import json
import os
import random
import socket
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (Failure, Server, add_server_arguments, check, completion, model_flags,  # noqa: E402
                    read_head, require_loopback, run_main)

TIMEOUT = 60  # seconds a request may take to be answered


class Case:
    """One malformed request: `kind` says what counts as a pass.

    json    — valid HTTP, bad content: a 4xx with {"error": {"message": …}}
    http    — broken HTTP framing, or a body too large to read: a 4xx or the connection closed
    slow    — a body that stops half-way: any 4xx, the connection closed, or no answer (we hang up)
    abrupt  — the client hangs up mid-request or mid-stream: nothing to check but the server's health
    """

    def __init__(self, kind: str, label: str, data: bytes, **how):
        self.kind, self.label, self.data, self.how = kind, label, data, how


def http(path: str, body: bytes, method: str = "POST", extra: str = "", length: str | None = None) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    head += f"Content-Length: {len(body) if length is None else length}\r\n{extra}Connection: close\r\n\r\n"
    return head.encode() + body


def cases(model: str, ctx: int) -> list[Case]:
    """The distinct malformed requests; `variants` repeats them with small differences up to the count asked."""
    C, M = "/v1/completions", "/v1/chat/completions"
    good = {"model": model, "prompt": "Dorothy", "max_tokens": 4}
    chat = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}

    def with_(base, **kv):
        d = dict(base)
        d.update(kv)
        return json.dumps(d).encode()

    out: list[Case] = []
    J = lambda label, path, body, **h: out.append(Case("json", label, http(path, body, **h)))  # noqa: E731
    # Not JSON, or not an object.
    for label, body in [("empty body", b""), ("{", b"{"), ("truncated object", b'{"model": "m", "prompt": "hi"'),
                        ("array", b"[]"), ("null", b"null"), ("string", b'"hello"'), ("number", b"42"),
                        ("trailing brace", b'{"prompt": "hi", "max_tokens": 5}}'), ("trailing comma", b'{"prompt": "hi",}'),
                        ("trailing comma in an array", b'{"prompt": [1, 2,], "max_tokens": 2}'),
                        ("single quotes", b"{'prompt': 'hi'}"), ("NaN", b'{"prompt": "hi", "temperature": NaN}'),
                        ("Infinity", b'{"prompt": "hi", "max_tokens": Infinity}'), ("bare word", b"prompt=hi"),
                        ("nested garbage", b'{"prompt": ["hi", {]}'), ("unterminated string", b'{"prompt": "hi')]:
        J(f"bad JSON: {label}", C, body)
        J(f"bad JSON (chat): {label}", M, body)
    # Wrong types.
    for field, values in [("prompt", [5, True, {"a": 1}, [[1.5]], None]), ("max_tokens", ["ten", 1.5, True, [], {}]),
                          ("temperature", ["hot", [], {}]), ("top_p", ["x", [], {}]), ("stream", ["yes", 1, []]),
                          ("model", [5, [], {}])]:
        for v in values:
            J(f"wrong type: {field}={json.dumps(v)}", C, with_(good, **{field: v}))
    for label, msgs in [("missing", None), ("a string", "hi"), ("empty", []), ("[1]", [1]), ("no content", [{"role": "user"}]),
                        ("content 5", [{"role": "user", "content": 5}]), ("role wizard", [{"role": "wizard", "content": "x"}]),
                        ("no role", [{"content": "x"}]), ("role 7", [{"role": 7, "content": "x"}])]:
        body = dict(chat)
        if msgs is None:
            del body["messages"]
        else:
            body["messages"] = msgs
        J(f"chat messages {label}", M, json.dumps(body).encode())
    J("chat max_tokens string", M, with_(chat, max_tokens="4"))
    J("completion without prompt", C, json.dumps({"model": model, "max_tokens": 4}).encode())
    # Huge and negative numbers.
    for label, raw in [("max_tokens 1e30", b"1e30"), ("max_tokens 10^23", b"99999999999999999999999"),
                       ("max_tokens 2^63", b"9223372036854775808"), ("max_tokens 10^9", b"1000000000"),
                       ("max_tokens -1", b"-1"), ("max_tokens -2^31", b"-2147483648"),
                       ("max_tokens -2^63", b"-9223372036854775808"), ("max_tokens -1e300", b"-1e300")]:
        J(label, C, b'{"model": "%s", "prompt": "Dorothy", "max_tokens": %s}' % (model.encode(), raw))
        J(label + " (chat)", M, b'{"model": "%s", "messages": [{"role": "user", "content": "hi"}], "max_tokens": %s}' % (model.encode(), raw))
    for field, raw in [("temperature", b"1e308"), ("temperature", b"1e400"), ("temperature", b"-0.5"), ("temperature", b"-1e308"),
                       ("top_p", b"-1e308"), ("top_p", b"1e400"), ("top_p", b"0"), ("top_p", b"1.5"), ("top_p", b"-0.1")]:
        J(f"{field} {raw.decode()}", C, b'{"model": "%s", "prompt": "Dorothy", "max_tokens": 4, "%s": %s}' % (model.encode(), field.encode(), raw))
    # Invalid UTF-8 inside the JSON.
    for label, raw in [("0xff 0xfe", b"\xff\xfe"), ("cut 2-byte sequence", b"abc\xc3"), ("encoded surrogate", b"\xed\xa0\x80"),
                       ("overlong slash", b"\xc0\xaf"), ("lone continuation", b"\x80\x80"), ("5-byte form", b"\xf8\x88\x80\x80\x80")]:
        J(f"invalid UTF-8 prompt: {label}", C, b'{"model": "%s", "prompt": "%s", "max_tokens": 4}' % (model.encode(), raw))
        J(f"invalid UTF-8 chat: {label}", M, b'{"model": "%s", "messages": [{"role": "user", "content": "%s"}]}' % (model.encode(), raw))
        J(f"invalid UTF-8 key: {label}", C, b'{"model": "%s", "%s": 1, "prompt": "x"}' % (model.encode(), raw))
    # Unknown models, routes and methods.
    J("unknown model", C, with_(good, model="no-such-model"))
    J("unknown model (chat)", M, with_(chat, model="no-such-model"))
    J("unknown route", "/v1/nothing", json.dumps(good).encode())
    J("GET a POST route", C, b"", method="GET")
    J("POST /v1/models", "/v1/models", json.dumps(good).encode())
    # A prompt longer than the context.
    J("prompt longer than the context", C, with_(good, prompt="Dorothy " * (ctx + 8)))
    J("chat longer than the context", M, with_(chat, messages=[{"role": "user", "content": "Oz " * (ctx + 8)}]))
    # Broken HTTP framing.
    H = lambda label, data: out.append(Case("http", label, data))  # noqa: E731
    H("garbage request line", b"HELLO THERE\r\n\r\n")
    H("header without colon", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nNoColonHere\r\nContent-Length: 2\r\n\r\n{}")
    H("Content-Length abc", http(C, json.dumps(good).encode(), length="abc"))
    H("Content-Length -5", http(C, json.dumps(good).encode(), length="-5"))
    H("Content-Length 10^26", http(C, json.dumps(good).encode(), length="99999999999999999999999999"))
    H("two Content-Lengths", http(C, json.dumps(good).encode(), extra="Content-Length: 3\r\n"))
    H("bad chunk size", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n")
    H("NUL in a header", b"POST /v1/completions HTTP/1.1\r\nHost: x\0y\r\nContent-Length: 2\r\n\r\n{}")
    H("space before colon", b"POST /v1/completions HTTP/1.1\r\nHost : x\r\nContent-Length: 2\r\n\r\n{}")
    rng = random.Random(22)
    for i in range(6):
        H(f"random bytes #{i}", bytes(rng.randrange(256) for _ in range(rng.randrange(8, 400))) + b"\r\n\r\n")
    # Declared huge bodies: the server must refuse without reading (we send up to 32 MiB of it).
    out.append(Case("http", "Content-Length 10^12, body streamed", http(C, b"", length="1000000000000"), stream_zeros=32 << 20))
    out.append(Case("http", "a 16 MiB prompt", http(C, b'{"model": "%s", "max_tokens": 4, "prompt": "%s"}' % (model.encode(), b"a" * (16 << 20)))))
    # Slow bodies that stop half-way.
    body = json.dumps(good).encode()
    for cut in (0, 1, len(body) // 2, len(body) - 1):
        out.append(Case("slow", f"slow body stopping at byte {cut} of {len(body)}", http(C, body)[: len(http(C, b"", length=str(len(body)))) + cut],
                        slow=True))
    out.append(Case("slow", "slow headers stopping mid-line", http(C, body)[:40], slow=True))
    # Clients that hang up.
    full = http(C, body)
    for cut in (5, 30, len(full) - len(body) - 2, len(full) - 3):
        out.append(Case("abrupt", f"hang up after {cut} bytes of the request", full[:cut], hang_up=True))
    stream = json.dumps({**good, "max_tokens": 100, "stream": True}).encode()
    out.append(Case("abrupt", "hang up mid-stream (completion)", http(C, stream), mid_stream=True))
    stream_chat = json.dumps({**chat, "max_tokens": 100, "stream": True}).encode()
    out.append(Case("abrupt", "hang up mid-stream (chat)", http(M, stream_chat), mid_stream=True))
    out.append(Case("abrupt", "hang up before a whole completion", http(C, json.dumps({**good, "max_tokens": 100}).encode()), before_answer=True))
    return out


async def send(writer: asyncio.StreamWriter, reader: asyncio.StreamReader, data: bytes) -> bool:
    """Writes `data` in 64 KiB pieces, stopping early (False) when the server answered, closed or
    stalled for 30 s. An answer is watched for while a write waits: a server that refuses a body
    without reading it (413) is heard before it hangs up."""
    def answered() -> bool:
        return reader.at_eof() or len(reader._buffer) > 0  # noqa: SLF001 — asyncio has no public peek
    try:
        for i in range(0, max(len(data), 1), 65536):
            writer.write(data[i:i + 65536])
            drain = asyncio.ensure_future(writer.drain())
            deadline = time.time() + 30
            while not drain.done():
                await asyncio.wait([drain], timeout=0.02)
                if not drain.done() and (answered() or time.time() > deadline):
                    drain.cancel()
                    return False
            drain.result()
            if answered():
                return False
        return True
    except (ConnectionError, OSError, asyncio.TimeoutError, asyncio.CancelledError):
        return False


async def attempt(case: Case, host: str, port: int, reset: bool) -> str:
    """Runs one case; returns its outcome ("400", "closed", "hung up", …) or raises Failure."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
    sock = writer.get_extra_info("socket")
    if reset:  # close with RST instead of FIN
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    try:
        how = case.how
        if how.get("slow"):
            for i in range(0, len(case.data), max(1, len(case.data) // 8)):
                writer.write(case.data[i:i + max(1, len(case.data) // 8)])
                await writer.drain()
                await asyncio.sleep(0.05)
            try:
                status, _ = await asyncio.wait_for(read_head(reader), 1.0)
                return outcome(case, status, b"")
            except asyncio.TimeoutError:
                return "no answer (we hung up)"
            except (ConnectionError, OSError):
                return "closed"
        if how.get("hang_up"):
            writer.write(case.data)
            await writer.drain()
            return "hung up"
        wrote = await send(writer, reader, case.data)
        if wrote and how.get("stream_zeros"):
            await send(writer, reader, b"0" * how["stream_zeros"])
        if how.get("before_answer"):
            await asyncio.sleep(0.05)
            return "hung up"
        try:
            status, headers = await asyncio.wait_for(read_head(reader), TIMEOUT)
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            if case.kind == "json":
                raise Failure(f"{case.label}: the connection closed without an answer")
            return "closed"
        except asyncio.TimeoutError:
            raise Failure(f"{case.label}: no answer within {TIMEOUT} s")
        if how.get("mid_stream"):
            check(status == 200, f"{case.label}: a valid streaming request answered {status}")
            await asyncio.wait_for(reader.readuntil(b"\n\n"), TIMEOUT)  # the first event
            return "hung up mid-stream"
        body = b""
        if case.kind == "json":
            try:
                if headers.get("transfer-encoding", "").lower() == "chunked":
                    body = await asyncio.wait_for(reader.read(1 << 16), TIMEOUT)
                    body = body.split(b"\r\n", 1)[1].rsplit(b"\r\n0\r\n", 1)[0] if b"\r\n" in body else body
                elif "content-length" in headers:
                    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), TIMEOUT)
            except (ConnectionError, OSError, asyncio.IncompleteReadError):
                pass
        return outcome(case, status, body)
    finally:
        writer.close()


def outcome(case: Case, status: int, body: bytes) -> str:
    check(400 <= status < 500, f"{case.label}: answered {status}, not a 4xx ({body[:160]!r})")
    if case.kind == "json":
        try:
            err = json.loads(body)["error"]
            check(isinstance(err.get("message"), str) and err["message"], "no message")
        except (ValueError, KeyError, TypeError, AttributeError, Failure):
            raise Failure(f"{case.label}: the {status} body is not OpenAI's error shape: {body[:160]!r}")
    return str(status)


async def flood(server: Server, total: int, concurrency: int) -> tuple[collections.Counter, dict]:
    all_cases = cases(server.name, server.ctx)
    order = [all_cases[i % len(all_cases)] for i in range(total)]
    random.Random(1).shuffle(order)
    counts: collections.Counter = collections.Counter()
    by_kind: dict = collections.defaultdict(collections.Counter)
    failures: list[str] = []
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int, case: Case) -> None:
        async with sem:
            try:
                r = await attempt(case, server.host, server.port, reset=i % 2 == 1)
            except Failure as e:
                failures.append(str(e))
                r = "FAILED"
            except (ConnectionError, OSError, asyncio.IncompleteReadError) as e:
                if case.kind in ("json",) and not case.how.get("hang_up"):
                    failures.append(f"{case.label}: {type(e).__name__} {e}")
                    r = "FAILED"
                else:
                    r = "closed"
            counts[r] += 1
            by_kind[case.kind][r] += 1

    await asyncio.gather(*(one(i, c) for i, c in enumerate(order)))
    if failures:
        distinct = {}  # one message per case
        for f in failures:
            distinct.setdefault(f.split(": answered", 1)[0].split(": the ", 1)[0].split(": no answer", 1)[0], f)
        raise Failure(f"{len(failures)} of {total} requests failed ({len(distinct)} distinct): " + " | ".join(list(distinct.values())[:6]))
    return counts, by_kind


async def healthy_after(server: Server, before: dict, payload: dict) -> None:
    deadline = time.time() + 30
    while True:  # abandoned streams may take a moment to be noticed
        try:
            r = await completion(server.host, server.port, payload, timeout=60)
            break
        except (Failure, OSError) as e:
            check(server.alive(), f"the server died: {server.tail()}")
            if time.time() > deadline:
                raise Failure(f"no normal completion after the flood: {e}")
            await asyncio.sleep(0.5)
    # No sequence left behind by the clients that hung up.
    deadline = time.time() + 30
    while True:
        m = server.metrics()
        busy = m.get("emerald_active_sequences", 0) + m.get("emerald_queue_depth", 0)
        if busy == 0:
            break
        check(time.time() < deadline, f"30 s after the flood the server still has {m.get('emerald_active_sequences')} "
                                      f"active and {m.get('emerald_queue_depth')} queued sequences")
        await asyncio.sleep(0.5)
    check(r["choices"][0]["text"] == before["choices"][0]["text"],
          f"after the flood the completion changed: {r['choices'][0]['text']!r} vs {before['choices'][0]['text']!r}")
    # Every batch slot is free again: 16 at once all succeed, the same as before.
    rs = await asyncio.wait_for(asyncio.gather(*(completion(server.host, server.port, payload, timeout=120) for _ in range(16))), 180)
    for x in rs:
        check(x["choices"][0]["text"] == before["choices"][0]["text"], "16 concurrent completions after the flood differ")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_server_arguments(p)
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=16)
    args = p.parse_args()
    require_loopback()
    with tempfile.TemporaryDirectory(prefix="emerald-robust-") as work:
        model = model_flags(args, work)
        with Server(args.emerald, model, ["--max-batch", "16"]) as server:
            payload = {"model": server.name, "prompt": "Dorothy lived in the midst", "max_tokens": 24, "temperature": 0}
            before = asyncio.run(completion(server.host, server.port, payload))
            rss0 = server.rss_kib()
            t0 = time.time()
            counts, by_kind = asyncio.run(flood(server, args.requests, args.concurrency))
            seconds = time.time() - t0
            check(server.alive(), f"the server died during the flood: {server.tail()}")
            asyncio.run(healthy_after(server, before, payload))
            rss1 = server.rss_kib()
    print(f"robustness test passed: {args.requests} malformed requests in {seconds:.1f} s, "
          f"{len(cases('m', 128))} distinct kinds; server RSS {rss0 // 1024} → {rss1 // 1024} MiB")
    print("  by outcome: " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    for kind, c in sorted(by_kind.items()):
        print(f"  {kind:7s} " + ", ".join(f"{k}: {v}" for k, v in sorted(c.items())))
    print("  afterwards: the same completion as before, and 16 at once")


if __name__ == "__main__":
    run_main(main)
