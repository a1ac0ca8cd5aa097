"""Paths the edge treats apart from the API."""

from __future__ import annotations

# Probes, the scrape and the load report: reachable without a key, never rate limited, and
# logged only at DEBUG when they succeed (an orchestrator or a router calls them every few
# seconds; vllm-router polls /get_load without the client's key).
PROBE_PATHS = frozenset({"/health", "/ready", "/metrics", "/get_load"})

# vLLM's render endpoints: a prompt rendered to token ids, no engine work. They need the key like
# any API path but are not charged to the caller's request rate: vllm-router renders every chat and
# completion request on each replica before forwarding it, so charging them would make one routed
# request cost 1 + replicas requests.
UNCHARGED_PATHS = frozenset({"/v1/chat/completions/render", "/v1/completions/render"})

# The Messages API (Anthropic's): its routes, and every other path under it, answer errors in
# Anthropic's shape with a `request-id` header (`service/http/encode.py`).
MESSAGES_PATH = "/v1/messages"
