"""A batch's last step: its output and error files, in OpenAI's line format, and its final
status (`completed`, `expired` or `cancelled`).

    {"id": "batch_req_...", "custom_id": "...", "response": {"status_code": 200,
     "request_id": "...", "body": {...}}, "error": null}

The output file holds the lines answered 2xx, the error file those answered otherwise (a 4xx
body as the endpoint would answer it) and those that never ran (`error` set, `response` null:
`batch_expired`, `authentication_error`, `too_many_attempts`), both in input order; a file with
no line is not made. Lines cancelled before they ran are in neither: a cancelled batch's output
is the lines that finished. The files are streamed into the store from the lines' rows, a page at
a time, then recorded with the batch's status in one transaction (`Batches.complete`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from service.store import Store
from service.store.batches import BatchFiles, BatchRecord, LineRecord, LineStatus
from service.store.files import StoredContent

PAGE_LINES = 500  # lines read from the store per query while a file is written
NO_LIMIT = 1 << 62  # an output file is as large as its lines are

EXPIRED_ERROR = {
    "code": "batch_expired",
    "message": "This request could not be run before the batch's completion window ended.",
}


def line_id(batch_id: str, line: int) -> str:
    """A line's id in the output files: the same however often the batch is finalized."""
    digest = hashlib.sha256(f"{batch_id}:{line}".encode()).hexdigest()
    return f"batch_req_{digest[:24]}"


def output_line(batch_id: str, record: LineRecord) -> dict[str, Any]:
    result = record.result or {}
    error = result.get("error")
    if record.status == "expired":
        error = EXPIRED_ERROR
    return {
        "id": line_id(batch_id, record.line),
        "custom_id": record.custom_id,
        "response": result.get("response"),
        "error": error,
    }


class Finalizer:
    """Writes one batch's files under this replica's lease on its last step."""

    def __init__(
        self, store: Store, replica: str, *, clock: Callable[[], float], lease: float
    ) -> None:
        self.store = store
        self.replica = replica
        self.clock = clock
        self.lease = lease

    async def finalize(self, batch_id: str) -> BatchRecord | None:
        """The batch in its final status, or None when it was not this replica's to finish."""
        batches = self.store.batches
        final = await batches.claim_finalization(
            batch_id, self.replica, now=self.clock(), lease=self.lease
        )
        if final is None:
            return None
        batch = await batches.by_id(batch_id)
        if batch is None:
            return None
        output = await self._write(batch, ("succeeded",))
        try:
            errors = await self._write(batch, ("failed", "expired"))
        except BaseException:
            await self._discard(output)
            raise
        files, done = BatchFiles(output, errors), False
        try:
            done = await batches.complete(batch, self.replica, final, files, now=self.clock())
        finally:
            if not done:
                await self._discard(output)
                await self._discard(errors)
        return await batches.by_id(batch_id) if done else None

    async def _discard(self, content: StoredContent | None) -> None:
        if content is not None:
            await self.store.files.discard(content)

    async def _write(
        self, batch: BatchRecord, statuses: Sequence[LineStatus]
    ) -> StoredContent | None:
        content = await self.store.files.write_content(
            self._lines(batch, statuses), max_bytes=NO_LIMIT
        )
        if content.size == 0:
            await self.store.files.discard(content)
            return None
        return content

    async def _lines(
        self, batch: BatchRecord, statuses: Sequence[LineStatus]
    ) -> AsyncIterator[bytes]:
        after, renewed = 0, self.clock()
        while True:
            page = await self.store.batches.results(
                batch.id, statuses, after_line=after, limit=PAGE_LINES
            )
            if not page:
                return
            text = "".join(json.dumps(output_line(batch.id, r)) + "\n" for r in page)
            yield text.encode()
            after = page[-1].line
            if self.clock() - renewed > self.lease / 3:  # a long file: keep the lease
                renewed = self.clock()
                await self.store.batches.renew_finalization(
                    batch.id, self.replica, until=renewed + self.lease
                )
