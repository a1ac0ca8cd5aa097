"""The Batch API (OpenAI's): create, get, list, cancel; a batch is its key's only.

Creating a batch checks its input file's structure first (`validation.py`): a file with bad
lines makes a `failed` batch whose `errors` name them; a good one becomes a batch `in_progress`
with all its lines, in one transaction (the store down: 503, and no batch at all). Its lines then
run on whichever replica's drainer claims them (`drainer.py`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from service.batches.events import count_lines, log_event
from service.batches.files import unknown_file
from service.batches.validation import check_input, lines_of
from service.caller import Caller
from service.config import Settings
from service.errors import ConflictError, InvalidRequestError, NotFoundError
from service.http.deps import GatewayDep
from service.schemas.batches import (
    COMPLETION_WINDOWS,
    Batch,
    BatchCreateRequest,
    BatchError,
    BatchErrors,
    BatchList,
    BatchUsage,
    RequestCounts,
)
from service.store import Store
from service.store.batches import BatchRecord, NewBatch
from service.telemetry.metrics import GatewayMetrics


def batch_object(record: BatchRecord) -> Batch:
    errors = None
    if record.errors:
        errors = BatchErrors(data=[BatchError(**error) for error in record.errors])
    usage = None
    if record.status != "failed":
        usage = BatchUsage(
            input_tokens=record.input_tokens,
            output_tokens=record.output_tokens,
            total_tokens=record.input_tokens + record.output_tokens,
        )
    return Batch(
        id=record.id,
        endpoint=record.endpoint,
        errors=errors,
        input_file_id=record.input_file_id,
        completion_window=record.completion_window,
        status=record.status,
        output_file_id=record.output_file_id,
        error_file_id=record.error_file_id,
        created_at=record.created_at,
        in_progress_at=record.in_progress_at,
        expires_at=record.expires_at,
        finalizing_at=record.finalizing_at,
        completed_at=record.completed_at,
        failed_at=record.failed_at,
        expired_at=record.expired_at,
        cancelling_at=record.cancelling_at,
        cancelled_at=record.cancelled_at,
        request_counts=RequestCounts(
            total=record.total, completed=record.completed, failed=record.failed
        ),
        metadata=record.metadata,
        usage=usage,
    )


def unknown_batch(batch_id: str) -> NotFoundError:
    return NotFoundError(f"No such Batch object: {batch_id}", param="batch_id")


@dataclass(frozen=True, slots=True)
class BatchAPI:
    store: Store
    settings: Settings
    metrics: GatewayMetrics

    async def _content(self, owner: str, file_id: str) -> AsyncIterator[bytes]:
        content = await self.store.files.open_content(owner, file_id)
        if content is None:  # deleted while the batch was made
            raise unknown_file(file_id, "input_file_id")
        async for chunk in content.chunks:
            yield chunk

    async def create(self, caller: Caller, request: BatchCreateRequest) -> Batch:
        owner, file_id = caller.owner, request.input_file_id
        found = await self.store.files.get(owner, file_id)
        if found is None:
            raise unknown_file(file_id, "input_file_id")
        if found.purpose != "batch":
            raise InvalidRequestError(
                f"The input file must be uploaded with purpose 'batch' (it has '{found.purpose}').",
                param="input_file_id",
            )
        endpoint, max_lines = request.endpoint, self.settings.batch_max_lines
        new = NewBatch(
            endpoint=endpoint,
            input_file_id=file_id,
            completion_window=request.completion_window,
            window_seconds=COMPLETION_WINDOWS[request.completion_window],
            metadata=request.metadata,
            caller=caller.record(),
        )
        check = await check_input(self._content(owner, file_id), endpoint, max_lines)
        if check.ok:
            lines = lines_of(self._content(owner, file_id), endpoint, max_lines)
            record = await self.store.batches.create(owner, new, lines)
        else:
            errors = [error.as_dict() for error in check.errors]
            record = await self.store.batches.create_failed(owner, new, errors)
        log_event("created", record)
        return batch_object(record)

    async def get(self, caller: Caller, batch_id: str) -> Batch:
        record = await self.store.batches.get(caller.owner, batch_id)
        if record is None:
            raise unknown_batch(batch_id)
        return batch_object(record)

    async def list(self, caller: Caller, *, after: str | None, limit: int) -> BatchList:
        found = await self.store.batches.list(caller.owner, after=after, limit=limit)
        data = [batch_object(record) for record in found.items]
        return BatchList(
            data=data,
            first_id=data[0].id if data else None,
            last_id=data[-1].id if data else None,
            has_more=found.has_more,
        )

    async def cancel(self, caller: Caller, batch_id: str) -> Batch:
        """`cancelling`, then `cancelled` once its running lines have ended (with the output
        of the lines that finished); cancelling a cancelled batch again changes nothing."""
        cancelled = await self.store.batches.cancel(caller.owner, batch_id)
        if cancelled is None:
            raise unknown_batch(batch_id)
        record = cancelled.record
        if cancelled.changed:
            count_lines(self.metrics, "cancelled", cancelled.lines)
            log_event("cancelling", record)
        elif record.status not in ("cancelling", "cancelled"):
            raise ConflictError(f"Cannot cancel a batch with status '{record.status}'.")
        return batch_object(record)


async def get_batch_api(gateway: GatewayDep) -> BatchAPI:
    return BatchAPI(gateway.store, gateway.settings, gateway.metrics)


BatchAPIDep = Annotated[BatchAPI, Depends(get_batch_api)]
