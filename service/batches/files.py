"""The Files API (OpenAI's): upload, list, get, download, delete; a file is its key's only.

An upload is streamed into the store as it arrives (`service/http/uploads.py`), never held whole
in memory nor spooled to a temporary file, and stopped with 413 once it passes
`max_file_bytes`; it becomes a file (listed, readable) only once it is whole and its form is
valid. Another key's file, admin keys included, is a 404 as an unknown id is.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import anyio
from starlette.requests import Request

from service.caller import Caller
from service.config import Settings
from service.errors import InvalidRequestError, NotFoundError
from service.http.uploads import MultipartUpload
from service.schemas.files import UPLOAD_PURPOSES, FileList, FileObject
from service.store import FileContent, FileRecord, Order, Store

MAX_FILENAME = 1024  # characters: the width of `files.filename`


def file_object(record: FileRecord) -> FileObject:
    return FileObject(
        id=record.id,
        bytes=record.size,
        created_at=record.created_at,
        expires_at=record.expires_at,
        filename=record.filename,
        purpose=record.purpose,
    )


def unknown_file(file_id: str, param: str = "file_id") -> NotFoundError:
    return NotFoundError(f"No such File object: {file_id}", param=param)


def _check_purpose(fields: dict[str, str]) -> str:
    purpose = fields.get("purpose")
    if purpose is None:
        raise InvalidRequestError("The form field `purpose` is required.", param="purpose")
    if purpose not in UPLOAD_PURPOSES:
        raise InvalidRequestError(
            f"purpose must be one of {', '.join(UPLOAD_PURPOSES)}.", param="purpose"
        )
    return purpose


def _expires_at(fields: dict[str, str], now: int) -> int | None:
    """OpenAI's `expires_after[anchor]`/`expires_after[seconds]` as a time (kept, shown)."""
    seconds = fields.get("expires_after[seconds]")
    if seconds is None:
        return None
    if fields.get("expires_after[anchor]", "created_at") != "created_at":
        raise InvalidRequestError(
            "expires_after[anchor] must be created_at.", param="expires_after.anchor"
        )
    if not seconds.isdigit() or not 3600 <= int(seconds) <= 2_592_000:
        raise InvalidRequestError(
            "expires_after[seconds] must be between 3600 and 2592000.",
            param="expires_after.seconds",
        )
    return now + int(seconds)


def _filename(upload: MultipartUpload) -> str:
    if upload.filename is None:
        raise InvalidRequestError("Send the file as the form field `file`.", param="file")
    if len(upload.filename) > MAX_FILENAME:
        raise InvalidRequestError(
            f"The file name is longer than {MAX_FILENAME} characters.", param="file"
        )
    return upload.filename


async def upload(request: Request, store: Store, settings: Settings, caller: Caller) -> FileObject:
    """Stream an upload into the store, then record it as the caller's file."""

    def before_file(fields: dict[str, str]) -> None:
        if "purpose" in fields:  # sent before the file: refuse a bad one before storing it
            _check_purpose(fields)

    form = MultipartUpload(request, before_file=before_file)
    stored = await store.files.write_content(form.file_chunks(), max_bytes=settings.max_file_bytes)
    try:
        filename = _filename(form)
        purpose = _check_purpose(form.fields)
        expires_at = _expires_at(form.fields, int(time.time()))
    except BaseException:
        with anyio.CancelScope(shield=True):
            await store.files.discard(stored)
        raise
    record = await store.files.record(
        caller.owner, stored, filename=filename, purpose=purpose, expires_at=expires_at
    )
    return file_object(record)


async def list_files(
    store: Store,
    caller: Caller,
    *,
    after: str | None,
    limit: int,
    order: Order,
    purpose: str | None,
) -> FileList:
    found = await store.files.list(
        caller.owner, after=after, limit=limit, order=order, purpose=purpose
    )
    data = [file_object(record) for record in found.items]
    return FileList(
        data=data,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
        has_more=found.has_more,
    )


async def get_file(store: Store, caller: Caller, file_id: str) -> FileObject:
    record = await store.files.get(caller.owner, file_id)
    if record is None:
        raise unknown_file(file_id)
    return file_object(record)


async def open_file(
    store: Store, caller: Caller, file_id: str
) -> tuple[FileRecord, AsyncIterator[bytes]]:
    """The file and its content; the first piece is read now, so a store that cannot give it
    is still a 503 status rather than a broken 200."""
    content: FileContent | None = await store.files.open_content(caller.owner, file_id)
    if content is None:
        raise unknown_file(file_id)
    chunks = content.chunks
    first = await anext(chunks, b"")

    async def whole() -> AsyncIterator[bytes]:
        if first:
            yield first
        async for chunk in chunks:
            yield chunk

    return content.record, whole()


async def delete_file(store: Store, caller: Caller, file_id: str) -> None:
    if not await store.files.delete(caller.owner, file_id):
        raise unknown_file(file_id)
