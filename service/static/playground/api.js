// Calls to this gateway's API: JSON answers, and streams read with fetch and a ReadableStream
// (EventSource cannot POST). Errors carry the server's message and the request id.

// The API key typed into the page (kept in memory only); empty when authentication is off.
export const credentials = { key: "" };

export class ApiError extends Error {
  constructor(message, { status, requestId, type }) {
    super(message);
    this.status = status;
    this.requestId = requestId;
    this.type = type;
  }
}

function requestHeaders() {
  const headers = { "Content-Type": "application/json" };
  if (credentials.key) headers.Authorization = `Bearer ${credentials.key}`;
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

export async function callJson(path, body) {
  const { response, started, requestId } = await send(path, body);
  const data = await response.json();
  return { data, requestId, ms: performance.now() - started, usage: data.usage };
}

// Server-sent events: `data: {json}` events separated by a blank line, `data: [DONE]` last.
// An error after the 200 arrives in-band as `data: {"error": {...}}`.
export async function callStream(path, body, onChunk) {
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
