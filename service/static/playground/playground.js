// The playground: four task panels and a live metrics view, talking to this gateway's own API.
// Plain browser JavaScript modules, no build step and no dependencies. Server text only ever
// goes into the page through textContent.
import { ApiError, callJson, callStream, credentials } from "./api.js";
import { pollMetrics } from "./live.js";

const byId = (id) => document.getElementById(id);

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

// ------------------------------------------------------------------ start
async function start() {
  setUpTabs();
  byId("api-key").addEventListener("input", (event) => {
    credentials.key = event.target.value.trim();
  });
  try {
    const response = await fetch("playground/config.json");
    const config = await response.json();
    byId("model-name").textContent = config.model;
    byId("key-box").hidden = !config.auth;
  } catch (err) {
    byId("model-name").textContent = `unknown (${err.message})`;
  }
  pollMetrics();
}

start();
