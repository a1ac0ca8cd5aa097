"""Paths the edge treats apart from the API."""

from __future__ import annotations

# Probes, the scrape and the load report: reachable without a key, never rate limited, and
# logged only at DEBUG when they succeed (an orchestrator or a router calls them every few
# seconds; vllm-router polls /get_load without the client's key).
PROBE_PATHS = frozenset({"/health", "/ready", "/metrics", "/get_load"})
