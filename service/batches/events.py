"""What a batch tells the operator: one access-log line per batch event (logger
`service.access`, beside the requests' lines), and the batch metrics.

Events: `batch.created` (`in_progress`, or `failed` by validation), `batch.cancelling`,
`batch.completed`, `batch.expired`, `batch.cancelled`, each with the batch id, its key's id, the
endpoint, the status and the request counts.
"""

from __future__ import annotations

import logging
from typing import Any

from service.store.batches import BatchRecord
from service.telemetry.metrics import GatewayMetrics

access_logger = logging.getLogger("service.access")


def log_event(event: str, batch: BatchRecord, **fields: Any) -> None:
    """One access-log line for a batch event."""
    line: dict[str, Any] = {
        "event": f"batch.{event}",
        "batch_id": batch.id,
        "key_id": batch.caller.get("key_id"),
        "endpoint": batch.endpoint,
        "status": batch.status,
        "total": batch.total,
        "completed": batch.completed,
        "failed": batch.failed,
        **fields,
    }
    if batch.caller.get("key_name") is not None:
        line["key_name"] = batch.caller["key_name"]
    access_logger.info("batch %s %s", event, batch.id, extra={"fields": line})


def count_lines(metrics: GatewayMetrics, outcome: str, lines: int = 1) -> None:
    if lines:
        metrics.batch_lines.labels(outcome).inc(lines)


STATUSES = (
    "validating",
    "failed",
    "in_progress",
    "finalizing",
    "completed",
    "expired",
    "cancelling",
    "cancelled",
)


def show_store(metrics: GatewayMetrics, by_status: dict[str, int], waiting: int) -> None:
    """The store-wide gauges, as the drainer last read them."""
    for status in STATUSES:
        metrics.batches.labels(status).set(by_status.get(status, 0))
    metrics.batch_lines_waiting.set(waiting)
