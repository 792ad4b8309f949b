/// The page `GET /` serves: a chat over `/v1/chat/completions`, streamed. One file, no
/// dependencies or build step, so it works offline from the binary alone.
enum WebPage {
    /// The HTML, with its CSS and JavaScript inline.
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Emerald</title>
<style>
  :root { --green: #0f7b55; --bg: #f6f7f5; --line: #dde2dc; --text: #1d2320; --muted: #68716c; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--text); background: var(--bg);
         display: flex; flex-direction: column; height: 100vh; }
  header { display: flex; align-items: center; gap: 12px; padding: 10px 16px; background: #fff; border-bottom: 1px solid var(--line); }
  header h1 { font-size: 18px; margin: 0; color: var(--green); }
  #model { color: var(--muted); font-size: 14px; flex: 1; }
  button { font: inherit; border: 1px solid var(--line); background: #fff; border-radius: 8px; padding: 6px 12px; cursor: pointer; }
  button.primary { background: var(--green); border-color: var(--green); color: #fff; }
  button:disabled { opacity: .5; cursor: default; }
  #settings { display: none; gap: 16px; flex-wrap: wrap; padding: 10px 16px; background: #fff; border-bottom: 1px solid var(--line); font-size: 14px; }
  #settings.open { display: flex; }
  #settings label { display: flex; align-items: center; gap: 6px; }
  #settings input[type=number] { width: 80px; }
  main { flex: 1; overflow-y: auto; padding: 16px; }
  .msg { max-width: 760px; margin: 0 auto 12px; padding: 10px 14px; border-radius: 12px; white-space: pre-wrap; word-wrap: break-word; }
  .user { background: #e3f1ea; margin-left: auto; margin-right: max(0px, calc(50% - 380px)); max-width: 600px; }
  .assistant { background: #fff; border: 1px solid var(--line); }
  .error { background: #fdecea; color: #8a1f11; }
  .note { color: var(--muted); font-size: 13px; }
  form { display: flex; gap: 8px; padding: 12px 16px; background: #fff; border-top: 1px solid var(--line); }
  textarea { flex: 1; font: inherit; padding: 8px 10px; border: 1px solid var(--line); border-radius: 8px; resize: none; height: 64px; }
</style>
</head>
<body>
<header>
  <h1>Emerald</h1><span id="model">connecting…</span>
  <button id="settingsButton" type="button">Settings</button>
  <button id="newChat" type="button">New chat</button>
</header>
<div id="settings">
  <label>Temperature <input id="temperature" type="number" min="0" max="2" step="0.1" value="0.8"></label>
  <label>Top-p <input id="topP" type="number" min="0.01" max="1" step="0.05" value="0.95"></label>
  <label>Max tokens <input id="maxTokens" type="number" min="1" step="1" value="256"></label>
  <label>API key <input id="apiKey" type="password" placeholder="if the server needs one" autocomplete="off"></label>
</div>
<main id="log"></main>
<form id="form">
  <textarea id="input" placeholder="Write a message (Enter sends, Shift+Enter for a new line)" autofocus></textarea>
  <button id="send" class="primary" type="submit">Send</button>
  <button id="stop" type="button" disabled>Stop</button>
</form>
<script>
const $ = id => document.getElementById(id);
const log = $("log"), input = $("input");
let messages = [], controller = null;

// Settings live in localStorage so a reload keeps them (the key too: it is this browser's).
for (const id of ["temperature", "topP", "maxTokens", "apiKey"]) {
  const saved = localStorage.getItem("emerald." + id);
  if (saved !== null) $(id).value = saved;
  $(id).addEventListener("change", () => localStorage.setItem("emerald." + id, $(id).value));
}
$("settingsButton").onclick = () => $("settings").classList.toggle("open");

function headers() {
  const h = { "Content-Type": "application/json" };
  if ($("apiKey").value) h["Authorization"] = "Bearer " + $("apiKey").value;
  return h;
}

function add(cls, text) {
  const div = document.createElement("div");
  div.className = "msg " + cls;
  div.textContent = text;
  log.appendChild(div);
  log.scrollTop = log.scrollHeight;
  return div;
}

async function loadModel() {
  try {
    const r = await fetch("/v1/models", { headers: headers() });
    const body = await r.json();
    if (!r.ok) throw new Error(body.error ? body.error.message : r.statusText);
    const m = body.data[0];
    $("model").textContent = m.id + " · context " + m.context_length + " tokens";
    $("maxTokens").max = m.context_length;
  } catch (e) {
    $("model").textContent = "model unknown (" + e.message + ")";
  }
}
$("apiKey").addEventListener("change", loadModel);

function busy(on) {
  $("send").disabled = on;
  $("stop").disabled = !on;
}

async function send(text) {
  messages.push({ role: "user", content: text });
  add("user", text);
  const out = add("assistant", "");
  controller = new AbortController();
  busy(true);
  let reply = "";
  try {
    const r = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers(), signal: controller.signal,
      body: JSON.stringify({
        messages, stream: true,
        temperature: Number($("temperature").value), top_p: Number($("topP").value),
        max_tokens: Number($("maxTokens").value),
      }),
    });
    if (!r.ok) {
      const body = await r.json().catch(() => ({}));
      throw new Error(body.error ? body.error.message : r.status + " " + r.statusText);
    }
    // Server-sent events: "data: {json}" blocks separated by a blank line, ending with [DONE].
    const reader = r.body.getReader(), decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        if (!event.startsWith("data: ")) continue;
        const data = event.slice(6);
        if (data === "[DONE]") continue;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message);
        const delta = chunk.choices[0] && chunk.choices[0].delta;
        if (delta && delta.content) {
          reply += delta.content;
          out.textContent = reply;
          log.scrollTop = log.scrollHeight;
        }
        if (chunk.choices[0] && chunk.choices[0].finish_reason === "length") {
          out.insertAdjacentHTML("beforeend", '<div class="note">(max tokens reached)</div>');
        }
      }
    }
  } catch (e) {
    if (e.name === "AbortError") {
      out.insertAdjacentHTML("beforeend", '<div class="note">(stopped)</div>');
    } else {
      out.className = "msg error";
      out.textContent = (reply ? reply + "\n" : "") + "Error: " + e.message;
    }
  } finally {
    if (reply) messages.push({ role: "assistant", content: reply });
    else if (out.className !== "msg error") out.remove();
    controller = null;
    busy(false);
    input.focus();
  }
}

$("form").onsubmit = e => {
  e.preventDefault();
  const text = input.value.trim();
  if (!text || controller) return;
  input.value = "";
  send(text);
};
input.addEventListener("keydown", e => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("form").requestSubmit(); }
});
$("stop").onclick = () => controller && controller.abort();
$("newChat").onclick = () => {
  if (controller) controller.abort();
  messages = [];
  log.innerHTML = "";
  input.focus();
};
loadModel();
</script>
</body>
</html>
"""#
}
