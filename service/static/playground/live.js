// The live view: throughput, queue depth, sequences running and time to first token, read from
// /metrics (open, like it is to scrapers) every few seconds.

const METRICS_EVERY_MS = 2000;
const byId = (id) => document.getElementById(id);

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

export async function pollMetrics() {
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
