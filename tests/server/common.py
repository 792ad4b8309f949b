"""Shared by the `emerald serve` test scripts: start a server, a small HTTP client over asyncio
streams, and one-line failures. Standard library only (Python 3.11).

A script exits 0 on success, 1 with one `FAIL: …` line, and 77 with one `SKIP: …` line when
something it needs is missing (a browser, the openai package, loopback)."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BOOK = os.path.join(REPO, "assets", "wizard_of_oz.txt")


class Failure(Exception):
    """A test failure: printed as one line."""


class Skip(Exception):
    """Something the test needs is missing: printed as one line, exit 77."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Failure(message)


def run_main(main) -> None:
    """Runs `main()`, turning failures (and any exception) into one line and an exit status."""
    try:
        main()
    except Skip as e:
        print(f"SKIP: {e}", flush=True)
        sys.exit(SKIP)
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    except KeyboardInterrupt:
        print("FAIL: interrupted", file=sys.stderr, flush=True)
        sys.exit(130)
    except BaseException as e:  # noqa: BLE001 — one clear line, whatever broke
        if isinstance(e, SystemExit):
            raise
        print(f"FAIL: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        sys.exit(1)


def require_loopback() -> None:
    """Skips when 127.0.0.1 cannot be bound (e.g. a network namespace without lo up)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
    except OSError as e:
        raise Skip(f"cannot bind 127.0.0.1: {e}")


def add_server_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--emerald", default=os.path.join(REPO, ".build", "release", "emerald"),
                   help="the emerald binary (default: .build/release/emerald)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--checkpoint", help="an Emerald checkpoint folder (default: a tiny model trained for the test)")
    g.add_argument("--model", help="a model folder (Emerald checkpoint or Hugging Face GPT-2)")


def model_flags(args, work: str) -> list[str]:
    """`--checkpoint DIR` / `--model DIR`, training a tiny char-level model into `work` when neither is given."""
    if args.model:
        return ["--model", args.model]
    if args.checkpoint:
        return ["--checkpoint", args.checkpoint]
    out = os.path.join(work, "tiny")
    r = subprocess.run([args.emerald, "train", "--data", BOOK, "--steps", "30", "--n-layer", "2", "--n-head", "2",
                        "--n-embd", "64", "--block-size", "128", "--batch-size", "8", "--out", out],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    check(r.returncode == 0, f"training the test model failed: {r.stdout.strip().splitlines()[-1:]}")
    args.checkpoint = out
    return ["--checkpoint", out]


def char_vocabulary(checkpoint: str) -> list[str] | None:
    """A char-level checkpoint's id → character table (None for other tokenizers)."""
    for d in (checkpoint, os.path.join(checkpoint, "checkpoint")):
        path = os.path.join(d, "tokenizer.json")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                t = json.load(f)
            if t.get("type") == "char":
                return [chr(c) for c in t["vocab"]]
            return None
    return None


class Server:
    """`emerald serve` on a free loopback port; stderr goes to a file (read for the start line)."""

    START = re.compile(r"serving (\S+) on http://([0-9.]+):(\d+)")

    def __init__(self, emerald: str, model: list[str], extra: list[str] = (), timeout: float = 180):
        check(os.access(emerald, os.X_OK), f"no emerald binary at {emerald}")
        self.log = tempfile.NamedTemporaryFile(prefix="emerald-serve-", suffix=".log", delete=False)
        self.command = [emerald, "serve", *model, "--host", "127.0.0.1", "--port", "0", *extra]
        self.proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        deadline = time.time() + timeout
        while True:
            m = self.START.search(self.stderr())
            if m:
                self.name, self.host, self.port = m.group(1), m.group(2), int(m.group(3))
                c = re.search(r"\(ctx (\d+)", self.stderr())
                self.ctx = int(c.group(1)) if c else 1024
                break
            if self.proc.poll() is not None:
                raise Failure(f"emerald serve exited with {self.proc.returncode} before serving: {self.tail()}")
            if time.time() > deadline:
                self.stop()
                raise Failure(f"emerald serve printed no 'serving … on http://…' line in {timeout:.0f} s: {self.tail()}")
            time.sleep(0.05)
        self.url = f"http://{self.host}:{self.port}"
        self.pid = self.proc.pid
        self.wait_healthy()

    def stderr(self) -> str:
        with open(self.log.name, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def tail(self, lines: int = 3) -> str:
        return " / ".join(self.stderr().strip().splitlines()[-lines:]) or "(no output)"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            check(self.alive(), f"emerald serve exited with {self.proc.returncode}: {self.tail()}")
            check(time.time() < deadline, f"GET /health did not answer 200 within {timeout:.0f} s")
            time.sleep(0.1)

    def metrics(self) -> dict[str, float]:
        """GET /metrics as {name or name{labels}: value}."""
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    out[name] = float(value)
                except ValueError:
                    pass
        return out

    def rss_kib(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            os.unlink(self.log.name)
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# --- Streams for benchmarks: many at once, one thread ------------------------------------------

FIRST_TEXT = re.compile(rb'"text":"(?!")')  # an event carrying text: the first one is the time to first token


def stream_completions(server: Server, bodies: list[dict], timeout: float = 600) -> list[tuple[float, float, bytes]]:
    """POSTs every body to /v1/completions at once, each on its own connection, and reads all the
    streams in this one thread over non-blocking sockets (epoll: a decode step's events wake it
    once, where a thread per stream would wake once each; the client shares the server's cores).
    Events are scanned, not decoded. Returns per body (seconds to its first event with text,
    seconds to its end, the raw response), counted from the first connect."""
    sel = selectors.DefaultSelector()
    out: list = [None] * len(bodies)
    t0 = time.perf_counter()
    for i, body in enumerate(bodies):
        payload = json.dumps(body).encode()
        s = socket.create_connection((server.host, server.port), timeout=timeout)
        s.sendall((f"POST /v1/completions HTTP/1.1\r\nHost: {server.host}\r\nConnection: close\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n").encode() + payload)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, [i, bytearray(), None])
    while sel.get_map():
        ready = sel.select(timeout=timeout)
        check(bool(ready), f"no stream said anything for {timeout:.0f} s")
        for key, _ in ready:
            i, buf, first = key.data
            data = key.fileobj.recv(1 << 16)
            if data:
                seen = len(buf)
                buf += data
                if first is None and FIRST_TEXT.search(buf, max(0, seen - 8)):
                    key.data[2] = time.perf_counter()
                continue
            end = time.perf_counter()
            sel.unregister(key.fileobj)
            key.fileobj.close()
            status = bytes(buf[:buf.find(b"\r\n")])
            check(b" 200 " in status and b"data: [DONE]" in buf, f"stream {i}: {status!r} … {bytes(buf[-200:])!r}")
            out[i] = ((first or end) - t0, end - t0, bytes(buf))
    return out


# --- A small HTTP/1.1 client over asyncio streams -------------------------------------------

class Response:
    def __init__(self, status: int, headers: dict[str, str], reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.status, self.headers, self.reader, self.writer = status, headers, reader, writer

    async def chunks(self):
        """The body as it arrives: Content-Length, chunked, or until the connection closes."""
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size_line = await self.reader.readline()
                if not size_line:
                    raise ConnectionError("connection closed inside a chunked body")
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while (await self.reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    return
                data = await self.reader.readexactly(size)
                await self.reader.readexactly(2)
                yield data
        elif "content-length" in self.headers:
            left = int(self.headers["content-length"])
            while left > 0:
                data = await self.reader.read(min(left, 65536))
                if not data:
                    raise ConnectionError("connection closed inside the body")
                left -= len(data)
                yield data
        else:
            while data := await self.reader.read(65536):
                yield data

    async def body(self) -> bytes:
        return b"".join([c async for c in self.chunks()])

    async def json(self):
        return json.loads(await self.body())

    async def events(self):
        """Server-sent events' `data:` payloads, as strings, as they arrive."""
        buf = b""
        async for c in self.chunks():
            buf += c
            while True:
                m = re.search(rb"\r?\n\r?\n", buf)
                if not m:
                    break
                event, buf = buf[:m.start()], buf[m.end():]
                data = [ln[5:].lstrip(b" ") for ln in event.splitlines() if ln.startswith(b"data:")]
                if data:
                    yield b"\n".join(data).decode("utf-8")

    def close(self) -> None:
        self.writer.close()


async def request(host: str, port: int, method: str, path: str, body=None, headers: dict | None = None,
                  timeout: float = 60) -> Response:
    """Sends one request (a dict body is sent as JSON) on a new connection; returns once the headers arrived."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    h = {"Host": f"{host}:{port}", "Connection": "close"}
    if body is not None:
        h["Content-Type"] = "application/json"
        h["Content-Length"] = str(len(body))
    h.update(headers or {})
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
    writer.write(head.encode() + (body or b""))
    await writer.drain()
    status, hdrs = await asyncio.wait_for(read_head(reader), timeout)
    return Response(status, hdrs, reader, writer)


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    line = await reader.readline()
    if not line:
        raise ConnectionError("connection closed before a response")
    parts = line.decode("latin-1").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ConnectionError(f"not an HTTP response: {line[:80]!r}")
    status = int(parts[1])
    headers: dict[str, str] = {}
    while True:
        ln = await reader.readline()
        if ln in (b"\r\n", b"\n", b""):
            break
        k, _, v = ln.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers


async def completion(host: str, port: int, payload: dict, headers: dict | None = None, timeout: float = 120) -> dict:
    """A whole non-streaming POST /v1/completions (or chat when `messages` is given); raises on non-200."""
    path = "/v1/chat/completions" if "messages" in payload else "/v1/completions"
    r = await request(host, port, "POST", path, payload, headers, timeout)
    try:
        body = await asyncio.wait_for(r.body(), timeout)
    finally:
        r.close()
    if r.status != 200:
        raise Failure(f"POST {path} {json.dumps(payload)[:120]} answered {r.status}: {body[:200]!r}")
    return json.loads(body)


def book_text() -> str:
    with open(BOOK, encoding="utf-8-sig") as f:
        return f.read().replace("\r\n", "\n")


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None
