"""What the batches repository takes and gives: a batch and its lines as made, read and
finished (`batches.py` and `batch_lines.py` work on them)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Literal

from service.store.files import StoredContent
from service.store.tables import BatchRow

BatchStatus = Literal[
    "validating",
    "failed",
    "in_progress",
    "finalizing",
    "completed",
    "expired",
    "cancelling",
    "cancelled",
]
LineStatus = Literal["pending", "running", "succeeded", "failed", "expired", "cancelled"]
UNFINISHED: tuple[LineStatus, ...] = ("pending", "running")
CANCELLABLE: tuple[BatchStatus, ...] = ("validating", "in_progress")
TERMINAL: tuple[BatchStatus, ...] = ("failed", "completed", "expired", "cancelled")
LIST_LIMIT = 100  # OpenAI's largest page of batches
INSERT_ROWS = 1000  # lines inserted per statement


def new_batch_id() -> str:
    return f"batch_{secrets.token_hex(12)}"


@dataclass(frozen=True, slots=True)
class NewLine:
    """A validated line of an input file (`line` counts from 1)."""

    line: int
    custom_id: str
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class NewBatch:
    """What a new batch is made of, besides its lines."""

    endpoint: str
    input_file_id: str
    completion_window: str
    window_seconds: int
    metadata: dict[str, str] | None
    caller: dict[str, Any]  # `Caller.record()` of the key making it

    def row(self, owner: str, status: BatchStatus, now: int) -> BatchRow:
        return BatchRow(
            id=new_batch_id(),
            owner=owner,
            endpoint=self.endpoint,
            input_file_id=self.input_file_id,
            completion_window=self.completion_window,
            status=status,
            batch_metadata=self.metadata,
            total=0,
            completed=0,
            failed=0,
            input_tokens=0,
            output_tokens=0,
            created_at=now,
            expires_at=now + self.window_seconds,
            caller=self.caller,
        )


@dataclass(frozen=True, slots=True)
class BatchRecord:
    id: str
    owner: str
    endpoint: str
    input_file_id: str
    completion_window: str
    status: BatchStatus
    metadata: dict[str, str] | None
    errors: list[dict[str, Any]] | None
    output_file_id: str | None
    error_file_id: str | None
    total: int
    completed: int
    failed: int
    input_tokens: int
    output_tokens: int
    created_at: int
    expires_at: int
    in_progress_at: int | None
    finalizing_at: int | None
    completed_at: int | None
    failed_at: int | None
    expired_at: int | None
    cancelling_at: int | None
    cancelled_at: int | None
    caller: dict[str, Any]  # `Caller.record()` of the key that made it

    @classmethod
    def of(cls, row: BatchRow) -> BatchRecord:
        return cls(
            id=row.id,
            owner=row.owner,
            endpoint=row.endpoint,
            input_file_id=row.input_file_id,
            completion_window=row.completion_window,
            status=row.status,  # type: ignore[arg-type]  # written by this module only
            metadata=row.batch_metadata,
            errors=row.errors,
            output_file_id=row.output_file_id,
            error_file_id=row.error_file_id,
            total=row.total,
            completed=row.completed,
            failed=row.failed,
            input_tokens=row.input_tokens,
            output_tokens=row.output_tokens,
            created_at=row.created_at,
            expires_at=row.expires_at,
            in_progress_at=row.in_progress_at,
            finalizing_at=row.finalizing_at,
            completed_at=row.completed_at,
            failed_at=row.failed_at,
            expired_at=row.expired_at,
            cancelling_at=row.cancelling_at,
            cancelled_at=row.cancelled_at,
            caller=row.caller or {},
        )


@dataclass(frozen=True, slots=True)
class Cancelled:
    record: BatchRecord
    changed: bool  # False: it was not cancellable (the record says why)
    lines: int  # lines cancelled before they ran


@dataclass(frozen=True, slots=True)
class LineRecord:
    """A finished line, as the output and error files need it."""

    line: int
    custom_id: str
    status: LineStatus
    result: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class BatchFiles:
    """The contents `complete` makes files of; None: no such file (nothing to put in it)."""

    output: StoredContent | None
    errors: StoredContent | None
