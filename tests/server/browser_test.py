#!/usr/bin/env python3
"""`emerald serve`'s chat page in a real browser: headless Chromium driven over the Chrome
DevTools Protocol (a websocket client written here with the standard library). Loads `/`,
checks the page names the model and its context and has the controls (send, stop, new chat,
temperature, top-p, max tokens), types a message, clicks send, waits until the assistant's
text appears and grows as it streams, and saves a screenshot (PNG).

    python3 tests/server/browser_test.py SCREENSHOT.png [--emerald BIN] [--checkpoint DIR] [--message TEXT]

Exits 77 when no Chromium is installed (scripts/setup installs Debian's `chromium`)."""
import argparse
import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (Failure, Server, Skip, add_server_arguments, check, find_chromium, model_flags,  # noqa: E402
                    require_loopback, run_main)


class WebSocket:
    """A minimal RFC 6455 client: text frames out (masked), text frames in (fragments joined)."""

    def __init__(self, url: str, timeout: float = 30):
        assert url.startswith("ws://")
        hostport, _, path = url[5:].partition("/")
        host, _, port = hostport.partition(":")
        self.sock = socket.create_connection((host, int(port or 80)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            data = self.sock.recv(4096)
            if not data:
                raise Failure("the browser closed the DevTools websocket during the handshake")
            head += data
        head, _, self.buf = head.partition(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise Failure(f"DevTools websocket handshake refused: {head.splitlines()[0]!r}")

    def send(self, text: str) -> None:
        payload = text.encode()
        n = len(payload)
        header = bytes([0x81])
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            data = self.sock.recv(1 << 20)
            if not data:
                raise Failure("the browser closed the DevTools websocket")
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def receive(self) -> str:
        message = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            data = self._read(n)
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            opcode = b0 & 0x0F
            if opcode == 0x8:
                raise Failure("the browser closed the DevTools websocket")
            if opcode == 0x9:  # ping → pong
                self.sock.sendall(bytes([0x8A, 0x80 | len(data)]) + b"\0\0\0\0" + data)
                continue
            if opcode in (0x0, 0x1, 0x2):
                message += data
                if b0 & 0x80:
                    return message.decode("utf-8")

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class Browser:
    """Headless Chromium with one page, commanded over the DevTools Protocol."""

    def __init__(self, chromium: str, width: int, height: int):
        self.profile = tempfile.mkdtemp(prefix="emerald-chromium-")
        self.proc = subprocess.Popen(
            [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--hide-scrollbars",
             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", f"--user-data-dir={self.profile}",
             f"--window-size={width},{height}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.time() + 60
        while not (os.path.exists(port_file) and open(port_file).read().strip()):
            if self.proc.poll() is not None:
                raise Failure(f"chromium exited with {self.proc.returncode} on start")
            if time.time() > deadline:
                raise Failure("chromium did not open its DevTools port within 60 s")
            time.sleep(0.1)
        port = int(open(port_file).read().split()[0])
        deadline = time.time() + 30
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                pages = [t for t in json.load(r) if t.get("type") == "page"]
            if pages:
                break
            check(time.time() < deadline, "chromium has no page target")
            time.sleep(0.2)
        self.ws = WebSocket(pages[0]["webSocketDebuggerUrl"])
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, timeout: float = 30, **params) -> dict:
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        self.ws.sock.settimeout(timeout)
        while True:
            msg = json.loads(self.ws.receive())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise Failure(f"DevTools {method}: {msg['error'].get('message')}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def js(self, expression: str):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise Failure(f"in the page: {r['exceptionDetails'].get('exception', {}).get('description', r['exceptionDetails'])}"
                          f" (evaluating {expression[:60]!r})")
        return r.get("result", {}).get("value")

    def click(self, x: float, y: float) -> None:
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def close(self) -> None:
        self.ws.close() if hasattr(self, "ws") else None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


# JavaScript helpers put into the page: find controls by what a person sees (text, label,
# placeholder, title, aria-label, id), whatever the markup.
FINDER = r"""
window.__em = {
  visible(e) { const r = e.getBoundingClientRect(); const s = getComputedStyle(e);
               return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'; },
  words(e) { const l = e.labels ? [...e.labels].map(x => x.textContent).join(' ') : '';
             const near = e.closest('label') ? e.closest('label').textContent : '';
             return [e.textContent, e.value && e.type === 'submit' ? e.value : '', e.title, e.placeholder, e.id, e.name,
                     e.getAttribute('aria-label'), e.className && e.className.baseVal === undefined ? e.className : '',
                     l, near].join(' ').toLowerCase(); },
  buttons() { return [...document.querySelectorAll('button, input[type=submit], input[type=button], [role=button]')]; },
  button(re) { return this.buttons().find(b => new RegExp(re, 'i').test(this.words(b))) || null; },
  control(re) { return [...document.querySelectorAll('input, select, textarea')]
                  .find(c => c.type !== 'hidden' && new RegExp(re, 'i').test(this.words(c) + ' ' + this.labelText(c))) || null; },
  labelText(c) { let p = c.previousElementSibling; return p ? (p.textContent || '').toLowerCase() : ''; },
  box(e) { e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; },
  input() { const t = [...document.querySelectorAll('textarea')].filter(e => this.visible(e) && !e.disabled);
            if (t.length) return t[t.length - 1];
            return [...document.querySelectorAll('input[type=text], input:not([type])')].find(e => this.visible(e)) || null; },
};
true
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("screenshot", help="where to save the PNG")
    add_server_arguments(p)
    p.add_argument("--message", default="Tell me about the Emerald City.")
    p.add_argument("--max-tokens", type=int, default=200, help="typed into the page's max tokens control (capped to fit the context)")
    p.add_argument("--width", type=int, default=1000)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--serve-args", default="", help="extra `emerald serve` flags, space-separated")
    args = p.parse_args()
    chromium = find_chromium()
    if not chromium:
        raise Skip("no chromium found (scripts/setup installs Debian's chromium when online)")
    require_loopback()
    with tempfile.TemporaryDirectory(prefix="emerald-browser-") as work:
        model = model_flags(args, work)
        with Server(args.emerald, model, args.serve_args.split()) as server:
            browser = Browser(chromium, args.width, args.height)
            try:
                summary = drive(browser, server, args)
            finally:
                browser.close()
            check(server.alive(), f"the server died: {server.tail()}")
    print("browser test passed: " + summary)


def drive(b: Browser, server: Server, args) -> str:
    b.call("Page.enable")
    b.call("Runtime.enable")
    b.call("Page.navigate", url=server.url + "/")
    deadline = time.time() + 30
    while b.js("document.readyState") != "complete":
        check(time.time() < deadline, "the page did not finish loading in 30 s")
        time.sleep(0.1)
    b.js(FINDER)
    title = b.js("document.title")
    deadline = time.time() + 15  # the page may fetch the model's name after loading
    while server.name not in (text := b.js("document.body.innerText")) and server.name not in (title or ""):
        check(time.time() < deadline, f"the page does not show the model name {server.name!r}: {text[:200]!r}")
        time.sleep(0.1)
    ctx = b.js("document.body.innerText.match(/\\bctx\\b|context/i) !== null")
    check(ctx, f"the page does not show the model's context: {text[:200]!r}")
    missing = [name for name, found in [
        ("send button", b.js("__em.button('send') !== null")),
        ("stop button", b.js("__em.button('stop') !== null")),
        ("new chat button", b.js("__em.button('new|clear|reset') !== null")),
        ("temperature control", b.js("__em.control('temp') !== null")),
        ("top-p control", b.js("__em.control('top.?p|nucleus') !== null")),
        ("max tokens control", b.js("__em.control('max.?tokens|max.?length|max_tokens|maxtokens') !== null")),
        ("message box", b.js("__em.input() !== null")),
    ] if not found]
    check(not missing, f"the page lacks: {', '.join(missing)}")

    # Settings behind a button: open them, so they can be used (and are in the screenshot).
    if not b.js("__em.visible(__em.control('temp'))") and b.js("__em.button('setting|option|control') !== null"):
        b.click(*b.js("__em.box(__em.button('setting|option|control'))"))
        check(b.js("__em.visible(__em.control('temp'))"), "the settings button does not show the temperature control")
    # Max tokens within the context, typed into its control like a person would.
    max_tokens = max(8, min(args.max_tokens, server.ctx - 2 * len(args.message) - 16))
    if b.js("__em.visible(__em.control('max.?tokens|max.?length|max_tokens|maxtokens'))"):
        b.click(*b.js("(() => { const c = __em.control('max.?tokens|max.?length|max_tokens|maxtokens'); c.value = ''; return __em.box(c); })()"))
        b.call("Input.insertText", text=str(max_tokens))
        b.js("__em.control('max.?tokens|max.?length|max_tokens|maxtokens').dispatchEvent(new Event('change', {bubbles: true})); true")

    # Type the message as keystrokes into the message box.
    x, y = b.js("__em.box(__em.input())")
    b.click(x, y)
    check(b.js("document.activeElement === __em.input()"), "clicking the message box did not focus it")
    b.call("Input.insertText", text=args.message)
    check(b.js("__em.input().value") == args.message, "the typed message is not in the message box")

    # Record the page's text length at every change from now on, then click send.
    b.js("""window.__lens = []; window.__t0 = performance.now();
            new MutationObserver(() => __lens.push([performance.now() - __t0, document.body.innerText.length]))
              .observe(document.body, {subtree: true, childList: true, characterData: true, attributes: false}); true""")
    before = b.js("document.body.innerText.length")
    # A slow link (4 KB/s down), so that a small fast model's reply still arrives over a few
    # seconds and a page that renders it as it streams shows it growing.
    b.call("Network.enable")
    b.call("Network.emulateNetworkConditions", offline=False, latency=0, downloadThroughput=4000, uploadThroughput=-1)
    x, y = b.js("__em.box(__em.button('send'))")
    b.click(x, y)

    # Wait for the reply: the user's message shown, text growing, then still for 1.5 s.
    deadline = time.time() + 120
    last, still_since = -1, time.time()
    while time.time() < deadline:
        n = b.js("document.body.innerText.length")
        if n != last:
            last, still_since = n, time.time()
        elif time.time() - still_since > 1.5 and n > before + len(args.message):
            break
        time.sleep(0.05)
    else:
        raise Failure("the reply did not finish within 120 s")
    text = b.js("document.body.innerText")
    check(args.message in text, "the sent message does not appear in the conversation")
    reply = text.split(args.message, 1)[1]
    lens = b.js("__lens")
    growth = sorted({n for _, n in lens if n > before + len(args.message)})
    check(len(reply.strip()) > 0, "no assistant text appeared")
    check(len(growth) >= 3, f"the reply did not stream: the page's text took {len(growth)} length(s) only")
    check(b.js("__em.input().value") in ("", args.message), "the message box holds something unexpected")
    check("Error:" not in reply, f"the page shows an error: {reply.strip()[:160]!r}")

    shot = b.call("Page.captureScreenshot", format="png")
    data = base64.b64decode(shot["data"])
    os.makedirs(os.path.dirname(os.path.abspath(args.screenshot)), exist_ok=True)
    with open(args.screenshot, "wb") as f:
        f.write(data)
    first = next((t for t, n in lens if n > before + len(args.message)), 0)
    summary = (f"model {server.name!r} shown, controls found, reply streamed in {len(growth)} steps over "
               f"{(lens[-1][0] - first) / 1000:.2f} s ({len(reply.strip())} characters); "
               f"screenshot {args.screenshot} ({len(data) // 1024} KB)")

    # New chat clears the conversation.
    b.click(*b.js("__em.box(__em.button('new|clear|reset'))"))
    time.sleep(0.3)
    check(args.message not in b.js("document.body.innerText"), "New chat did not clear the conversation")
    # Stop: a reply stopped mid-stream grows no more.
    b.call("Network.emulateNetworkConditions", offline=False, latency=0, downloadThroughput=1000, uploadThroughput=-1)
    second = "And the Tin Woodman?"
    b.click(*b.js("__em.box(__em.input())"))
    b.call("Input.insertText", text=second)
    base = b.js("document.body.innerText.length")
    b.click(*b.js("__em.box(__em.button('send'))"))
    deadline = time.time() + 60
    while b.js("document.body.innerText.length") <= base + len(second):
        check(time.time() < deadline, "the second reply did not start within 60 s")
        time.sleep(0.05)
    b.click(*b.js("__em.box(__em.button('stop'))"))
    time.sleep(0.5)
    stopped = b.js("document.body.innerText.length")
    time.sleep(1.5)
    check(b.js("document.body.innerText.length") == stopped, "the reply kept growing after Stop was clicked")
    return summary + "; New chat cleared the conversation; Stop stopped a reply mid-stream"


if __name__ == "__main__":
    run_main(main)
