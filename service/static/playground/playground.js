// The playground: four task panels and a live metrics view, talking to this gateway's own API.
// Plain browser JavaScript, no build step and no dependencies. Streams are read with fetch and a
// ReadableStream (EventSource cannot POST). Server text only ever goes in via textContent.
"use strict";

const METRICS_EVERY_MS = 2000;
const state = { key: "", auth: false };
const byId = (id) => document.getElementById(id);

// ------------------------------------------------------------------ API calls
class ApiError extends Error {
  constructor(message, { status, requestId, type }) {
    super(message);
    this.status = status;
    this.requestId = requestId;
    this.type = type;
  }
}

function requestHeaders() {
  const headers = { "Content-Type": "application/json" };
  if (state.key) headers.Authorization = `Bearer ${state.key}`;
  return headers;
}

async function errorOf(response) {
  const requestId = response.headers.get("x-request-id");
  let message = `HTTP ${response.status}`;
  let type = "";
  try {
    const body = await response.json();
    if (body && body.error) {
      message = body.error.message || message;
      type = body.error.code || body.error.type || "";
    }
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(message, { status: response.status, requestId, type });
}

async function send(path, body) {
  const started = performance.now();
  const response = await fetch(path, {
    method: "POST",
    headers: requestHeaders(),
    body: JSON.stringify(body),
  });
  if (!response.ok) throw await errorOf(response);
  return { response, started, requestId: response.headers.get("x-request-id") };
}

async function callJson(path, body) {
  const { response, started, requestId } = await send(path, body);
  const data = await response.json();
  return { data, requestId, ms: performance.now() - started, usage: data.usage };
}

// Server-sent events: `data: {json}` events separated by a blank line, `data: [DONE]` last.
// An error after the 200 arrives in-band as `data: {"error": {...}}`.
async function callStream(path, body, onChunk) {
  const { response, started, requestId } = await send(path, { ...body, stream: true });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const result = { requestId, ttft: null, usage: null, ms: 0 };
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    // A "\r" at the end may be half of a "\r\n": wait for the next piece before splitting.
    const held = buffer.endsWith("\r") ? "\r" : "";
    const events = buffer.slice(0, buffer.length - held.length).replace(/\r\n?/g, "\n").split("\n\n");
    buffer = events.pop() + held;
    for (const event of events) {
      const data = event
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(line.startsWith("data: ") ? 6 : 5))
        .join("\n");
      if (!data || data === "[DONE]") continue;
      const chunk = JSON.parse(data);
      if (chunk.error) {
        throw new ApiError(chunk.error.message, {
          status: response.status, // the 200 already sent: the error came in the stream
          requestId,
          type: chunk.error.code || chunk.error.type || "",
        });
      }
      if (result.ttft === null) result.ttft = performance.now() - started;
      if (chunk.usage) result.usage = chunk.usage;
      onChunk(chunk);
    }
  }
  result.ms = performance.now() - started;
  return result;
}

// ------------------------------------------------------------------ rendering helpers
function showError(panel, err) {
  const box = byId(`${panel}-error`);
  if (err instanceof ApiError) {
    const parts = [`Error ${err.status}${err.type ? ` (${err.type})` : ""}: ${err.message}`];
    if (err.requestId) parts.push(`request id: ${err.requestId}`);
    box.textContent = parts.join(" — ");
  } else {
    box.textContent = `Error: ${err && err.message ? err.message : err}`;
  }
  box.hidden = false;
}

function clearError(panel) {
  const box = byId(`${panel}-error`);
  box.hidden = true;
  box.textContent = "";
}

function showMeta(panel, { requestId, ms, ttft, usage }) {
  const parts = [`request id: ${requestId || "?"}`, `${Math.round(ms)} ms`];
  if (ttft !== null && ttft !== undefined) parts.push(`first token ${Math.round(ttft)} ms`);
  if (usage) parts.push(`${usage.prompt_tokens} prompt + ${usage.completion_tokens} completion tokens`);
  byId(`${panel}-meta`).textContent = parts.join(" · ");
}

function numberOf(id) {
  const raw = byId(id).value.trim();
  return raw === "" ? undefined : Number(raw);
}

function textOf(id) {
  const raw = byId(id).value.trim();
  return raw === "" ? undefined : raw;
}

// Runs one request of a panel: busy state, errors, and the meta line.
function panelForm(panel, run) {
  const form = byId(`${panel}-form`);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    form.setAttribute("aria-busy", "true");
    clearError(panel);
    byId(`${panel}-meta`).textContent = "";
    try {
      showMeta(panel, await run());
    } catch (err) {
      showError(panel, err);
    } finally {
      button.disabled = false;
      form.removeAttribute("aria-busy");
    }
  });
}

// ------------------------------------------------------------------ chat
const conversation = [];

function addTurn(role, content) {
  const item = document.createElement("li");
  item.className = `turn ${role}`;
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = role === "user" ? "You" : "Assistant";
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = content;
  item.append(who, text);
  byId("chat-log").append(item);
  return text;
}

panelForm("chat", async () => {
  const message = byId("chat-message").value.trim();
  const system = textOf("chat-system");
  const body = {
    message,
    history: conversation.length ? conversation.slice() : undefined,
    max_tokens: numberOf("chat-max-tokens"),
    temperature: numberOf("chat-temperature"),
  };
  if (system) body.system = system;
  else if (byId("chat-preset").value) body.preset = byId("chat-preset").value;
  const asked = addTurn("user", message);
  const reply = addTurn("assistant", "");
  let result;
  try {
    if (byId("chat-stream").checked) {
      result = await callStream("v1/chat", body, (chunk) => {
        for (const delta of chunk.results) reply.textContent += delta.delta;
      });
    } else {
      result = await callJson("v1/chat", body);
      reply.textContent = result.data.results[0].reply;
    }
  } catch (err) {
    // A turn that failed is not part of the conversation (nor of the next turn's history).
    asked.parentElement.remove();
    reply.parentElement.remove();
    throw err;
  }
  conversation.push({ role: "user", content: message }, { role: "assistant", content: reply.textContent });
  byId("chat-message").value = "";
  return result;
});

byId("chat-clear").addEventListener("click", () => {
  conversation.length = 0;
  byId("chat-log").replaceChildren();
  byId("chat-meta").textContent = "";
  clearError("chat");
});

// ------------------------------------------------------------------ generate
// As in Hugging Face `generate`, temperature, top_k and top_p only apply when sampling (the API
// refuses them otherwise): their fields are off until do_sample is ticked.
const SAMPLING_FIELDS = ["generate-temperature", "generate-top-k", "generate-top-p"];

function syncSamplingFields() {
  const sampling = byId("generate-do-sample").checked;
  for (const id of SAMPLING_FIELDS) byId(id).disabled = !sampling;
}

byId("generate-do-sample").addEventListener("change", syncSamplingFields);
syncSamplingFields();

panelForm("generate", async () => {
  const body = {
    prompt: byId("generate-prompt").value,
    max_new_tokens: numberOf("generate-max-new-tokens"),
    repetition_penalty: numberOf("generate-repetition-penalty"),
    num_beams: numberOf("generate-num-beams"),
    seed: numberOf("generate-seed"),
    do_sample: byId("generate-do-sample").checked,
  };
  if (body.do_sample) {
    body.temperature = numberOf("generate-temperature");
    body.top_k = numberOf("generate-top-k");
    body.top_p = numberOf("generate-top-p");
  }
  const output = byId("generate-output");
  output.replaceChildren();
  const sequences = [];
  const sequence = (index) => {
    while (sequences.length <= index) {
      const block = document.createElement("p");
      block.className = "generation";
      output.append(block);
      sequences.push(block);
    }
    return sequences[index];
  };
  if (byId("generate-stream").checked) {
    return callStream("v1/generate", body, (chunk) => {
      for (const delta of chunk.results) sequence(delta.sequence).textContent += delta.delta;
    });
  }
  const result = await callJson("v1/generate", body);
  result.data.results[0].generations.forEach((g, i) => {
    sequence(i).textContent = g.text;
  });
  return result;
});

// ------------------------------------------------------------------ summarize
panelForm("summarize", async () => {
  const body = {
    text: byId("summarize-text").value,
    style: byId("summarize-style").value,
    min_length: numberOf("summarize-min-length"),
    max_length: numberOf("summarize-max-length"),
    language: textOf("summarize-language"),
    focus: textOf("summarize-focus"),
  };
  const result = await callJson("v1/summarize", body);
  const summary = result.data.results[0];
  byId("summarize-output").textContent = summary.summary;
  byId("summarize-chunks").textContent = String(summary.chunks);
  byId("summarize-depth").textContent = String(summary.depth);
  byId("summarize-tokens").textContent = String(summary.summary_tokens);
  byId("summarize-finish").textContent = summary.finish_reason;
  byId("summarize-facts").hidden = false;
  return result;
});

// ------------------------------------------------------------------ classify
byId("classify-preset").addEventListener("change", () => {
  byId("classify-labels").disabled = byId("classify-preset").value !== "";
});

panelForm("classify", async () => {
  const preset = byId("classify-preset").value;
  const labels = preset
    ? preset
    : byId("classify-labels").value.split(",").map((l) => l.trim()).filter(Boolean);
  const body = {
    text: byId("classify-text").value,
    labels,
    multi_label: byId("classify-multi-label").checked,
  };
  byId("classify-label").textContent = "";
  byId("classify-bars").replaceChildren();
  const result = await callJson("v1/classify", body);
  const answer = result.data.results[0];
  const chosen = answer.labels && answer.labels.length ? answer.labels.join(", ") : answer.label;
  byId("classify-label").textContent = `Label: ${chosen}`;
  for (const [label, p] of Object.entries(answer.scores)) {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.className = "bar-label";
    name.textContent = label;
    const track = document.createElement("span");
    track.className = "bar";
    track.setAttribute("aria-hidden", "true");
    const fill = document.createElement("span");
    fill.className = label === answer.label ? "fill best" : "fill";
    fill.style.width = `${(p * 100).toFixed(1)}%`;
    track.append(fill);
    const value = document.createElement("span");
    value.className = "bar-value";
    value.textContent = `${(p * 100).toFixed(1)}%`;
    item.append(name, track, value);
    byId("classify-bars").append(item);
  }
  return result;
});

// ------------------------------------------------------------------ tabs (WAI-ARIA tabs pattern)
function selectTab(tab, focus) {
  for (const other of document.querySelectorAll("[role=tab]")) {
    const selected = other === tab;
    other.setAttribute("aria-selected", String(selected));
    other.tabIndex = selected ? 0 : -1;
    byId(other.getAttribute("aria-controls")).hidden = !selected;
  }
  if (focus) tab.focus();
}

function setUpTabs() {
  const tabs = [...document.querySelectorAll("[role=tab]")];
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => selectTab(tab, false));
    tab.addEventListener("keydown", (event) => {
      const moves = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 };
      if (!(event.key in moves)) return;
      event.preventDefault();
      selectTab(tabs[(moves[event.key] + tabs.length) % tabs.length], true);
    });
  });
}

// ------------------------------------------------------------------ live metrics from /metrics
// Prometheus text: `name{labels} value` lines; samples of one name are summed over labels.
function parseMetrics(text) {
  const sums = new Map();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = /^([A-Za-z_:][A-Za-z0-9_:]*)(\{.*\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const value = Number(match[3]);
    if (Number.isFinite(value)) sums.set(match[1], (sums.get(match[1]) || 0) + value);
  }
  return sums;
}

let previous = null;

async function pollMetrics() {
  try {
    const response = await fetch("metrics", { headers: { Accept: "text/plain" } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const sums = parseMetrics(await response.text());
    const now = {
      at: performance.now(),
      tokens: sums.get("gateway_completion_tokens_total") || 0,
      ttftSum: sums.get("gateway_time_to_first_token_seconds_sum") || 0,
      ttftCount: sums.get("gateway_time_to_first_token_seconds_count") || 0,
    };
    if (previous) {
      const seconds = (now.at - previous.at) / 1000;
      const rate = Math.max(now.tokens - previous.tokens, 0) / seconds;
      byId("live-throughput").textContent = `${rate.toFixed(1)} tokens/s`;
    }
    byId("live-queue").textContent = String(sums.get("gateway_queue_depth") || 0);
    byId("live-running").textContent = String(sums.get("gateway_sequences_in_flight") || 0);
    // The mean over the last interval when streams ended in it, else over the server's life.
    const recent = previous && now.ttftCount > previous.ttftCount;
    const count = recent ? now.ttftCount - previous.ttftCount : now.ttftCount;
    const sum = recent ? now.ttftSum - previous.ttftSum : now.ttftSum;
    byId("live-ttft").textContent = count ? `${Math.round((sum / count) * 1000)} ms (mean)` : "–";
    previous = now;
  } catch (err) {
    byId("live-throughput").textContent = `metrics unavailable (${err.message})`;
  } finally {
    setTimeout(pollMetrics, METRICS_EVERY_MS);
  }
}

// ------------------------------------------------------------------ start
async function start() {
  setUpTabs();
  byId("api-key").addEventListener("input", (event) => {
    state.key = event.target.value.trim();
  });
  try {
    const response = await fetch("playground/config.json");
    const config = await response.json();
    byId("model-name").textContent = config.model;
    state.auth = config.auth;
    byId("key-box").hidden = !config.auth;
  } catch (err) {
    byId("model-name").textContent = `unknown (${err.message})`;
  }
  pollMetrics();
}

start();
