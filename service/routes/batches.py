"""The Batch API: POST/GET /v1/batches, GET /v1/batches/{id}, POST /v1/batches/{id}/cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from service.batches.api import BatchAPIDep
from service.http.deps import CallerDep
from service.schemas.batches import Batch, BatchCreateRequest, BatchList

router = APIRouter(prefix="/v1", tags=["batches"])


@router.post("/batches")
async def create_batch(
    request: BatchCreateRequest, batches: BatchAPIDep, caller: CallerDep
) -> Batch:
    """A batch of requests from an uploaded JSONL file (purpose `batch`)."""
    return await batches.create(caller, request)


@router.get("/batches")
async def list_batches(
    batches: BatchAPIDep,
    caller: CallerDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> BatchList:
    return await batches.list(caller, after=after, limit=limit)


@router.get("/batches/{batch_id}")
async def get_batch(batch_id: str, batches: BatchAPIDep, caller: CallerDep) -> Batch:
    return await batches.get(caller, batch_id)


@router.post("/batches/{batch_id}/cancel")
async def cancel_batch(batch_id: str, batches: BatchAPIDep, caller: CallerDep) -> Batch:
    return await batches.cancel(caller, batch_id)
