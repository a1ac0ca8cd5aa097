"""The Files API: POST/GET /v1/files, GET/DELETE /v1/files/{id}, GET /v1/files/{id}/content."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from service.batches import files
from service.http.deps import CallerDep, SettingsDep, StoreDep
from service.schemas.files import UPLOAD_PURPOSES, FileDeleted, FileList, FileObject
from service.store import Order

router = APIRouter(prefix="/v1", tags=["files"])

# The body is read as a stream (service/http/uploads.py), not by FastAPI: documented here.
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "purpose"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "purpose": {"type": "string", "enum": list(UPLOAD_PURPOSES)},
                    },
                }
            }
        },
    }
}


@router.post("/files", openapi_extra=UPLOAD_BODY)
async def upload_file(
    request: Request, store: StoreDep, settings: SettingsDep, caller: CallerDep
) -> FileObject:
    """Upload a file (multipart: `file` and `purpose`), streamed into the store."""
    return await files.upload(request, store, settings, caller)


@router.get("/files")
async def list_files(
    store: StoreDep,
    caller: CallerDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
    order: Order = "desc",
    purpose: str | None = None,
) -> FileList:
    return await files.list_files(
        store,
        caller,
        after=after,
        limit=limit,
        order=order,
        purpose=purpose,
    )


@router.get("/files/{file_id}")
async def get_file(file_id: str, store: StoreDep, caller: CallerDep) -> FileObject:
    return await files.get_file(store, caller, file_id)


@router.get("/files/{file_id}/content", response_class=StreamingResponse)
async def file_content(file_id: str, store: StoreDep, caller: CallerDep) -> StreamingResponse:
    """The file's content, streamed from the store."""
    record, chunks = await files.open_file(store, caller, file_id)
    return StreamingResponse(
        chunks,
        media_type="application/octet-stream",
        headers={
            "content-length": str(record.size),
            "content-disposition": f'attachment; filename="{record.id}"',
        },
    )


@router.delete("/files/{file_id}")
async def delete_file(file_id: str, store: StoreDep, caller: CallerDep) -> FileDeleted:
    await files.delete_file(store, caller, file_id)
    return FileDeleted(id=file_id)
