"""Paths the edge treats apart from the API."""

from __future__ import annotations

# Probes and the scrape: reachable without a key, never rate limited, and logged only at DEBUG
# when they succeed (an orchestrator calls them every few seconds).
PROBE_PATHS = frozenset({"/health", "/ready", "/metrics"})
