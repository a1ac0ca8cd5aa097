"""Helpers for the observability tests: scrapes, counter deltas, the dashboard, log waiting."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

DASHBOARD = Path(__file__).parent.parent / "observability" / "grafana" / "llm-gateway.json"
_SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count")}
# PromQL words that look like names; anything else before `{`, `[` or a space is a metric.
_METRIC = re.compile(r"(?<![\w:$\"])([a-zA-Z_:][\w:]*)\s*(?=\{|\[)")


class Scrape:
    """A parsed `/metrics` body: families by name, and every series name a query may use."""

    def __init__(self, text: str) -> None:
        self.families: dict[str, Metric] = {
            family.name: family for family in text_string_to_metric_families(text)
        }

    def names(self) -> set[str]:
        """Sample names, including those of families with no sample yet (a labelled family
        appears with its HELP/TYPE lines before its first observation)."""
        names: set[str] = set()
        for family in self.families.values():
            names.add(family.name)
            names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ()))
            names.update(sample.name for sample in family.samples)
        return names

    def value(self, sample: str, **labels: str) -> float:
        """The sum of `sample` over series whose labels include `labels` (0 if none)."""
        total = 0.0
        for family in self.families.values():
            for s in family.samples:
                if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                    total += s.value
        return total


def delta(before: Scrape, after: Scrape, sample: str, **labels: str) -> float:
    return after.value(sample, **labels) - before.value(sample, **labels)


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def all_panels(tree: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Panels, including those nested in rows."""
    for panel in tree:
        yield panel
        yield from all_panels(panel.get("panels", []))


def dashboard_queries() -> list[str]:
    """Every PromQL expression of the dashboard: panel targets and variable queries."""
    model = dashboard()
    exprs = [t["expr"] for p in all_panels(model["panels"]) for t in p.get("targets", [])]
    for variable in model["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, Mapping):
            exprs.append(query["query"])
    return exprs


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (or a `label_values(metric, label)` query)."""
    names = set(_METRIC.findall(expr))
    variable = re.fullmatch(r"label_values\((\w[\w:]*),\s*\w+\)", expr)
    if variable:
        names.add(variable.group(1))
    return names


class AccessLog(logging.Handler):
    """Collects access lines by request id, from any thread; `wait` blocks until one is written.

    The middleware writes the line after updating the metrics, so once it is there, a scrape
    sees that request; this is how the tests wait for a server's work, never with sleeps.
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: dict[str, logging.LogRecord] = {}
        self._written = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        request_id = getattr(record, "request_id", None)
        if record.name == "service.access" and isinstance(request_id, str):
            with self._written:
                self.records[request_id] = record
                self._written.notify_all()

    def __enter__(self) -> AccessLog:
        access = logging.getLogger("service.access")
        self._level = access.level
        access.setLevel(logging.DEBUG)
        access.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        access = logging.getLogger("service.access")
        access.removeHandler(self)
        access.setLevel(self._level)

    def wait(self, request_id: str, timeout: float = 120) -> dict[str, Any]:
        """The access line's fields once written (the timeout is a hang guard only)."""
        with self._written:
            assert self._written.wait_for(lambda: request_id in self.records, timeout), request_id
        fields: dict[str, Any] = getattr(self.records[request_id], "fields", {})
        return fields
