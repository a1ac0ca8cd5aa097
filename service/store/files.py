"""The files repository: what the Files API (and a batch's output) needs from the store.

Every call takes the owner (`tables.py`: the API key's public id, or `ANONYMOUS_OWNER`) and sees
only that owner's files: another owner's file is None, absent from lists, not deleted, so the
routes answer 404 for it as for an unknown id.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass

import anyio
from sqlalchemy import delete, select

from service.errors import StoreUnavailableError
from service.store.blobs import BlobStore
from service.store.database import Database
from service.store.operations import reads_the_callers_stream, store_operations
from service.store.paging import Order, Page, keyset, page
from service.store.tables import FileRow

logger = logging.getLogger(__name__)

LIST_LIMIT = 10_000  # OpenAI's default and largest page of files


def new_file_id() -> str:
    return f"file-{secrets.token_hex(12)}"


@dataclass(frozen=True, slots=True)
class FileRecord:
    id: str
    owner: str
    filename: str
    purpose: str
    size: int  # bytes
    created_at: int  # Unix seconds
    expires_at: int | None

    @classmethod
    def of(cls, row: FileRow) -> FileRecord:
        return cls(
            id=row.id,
            owner=row.owner,
            filename=row.filename,
            purpose=row.purpose,
            size=row.size,
            created_at=row.created_at,
            expires_at=row.expires_at,
        )


@dataclass(frozen=True, slots=True)
class StoredContent:
    """Content in the store that no file row names yet (`Files.write_content`)."""

    file_id: str
    size: int  # bytes


@dataclass(frozen=True, slots=True)
class FileContent:
    record: FileRecord
    chunks: AsyncIterator[bytes]  # the content, streamed from the store


@store_operations
class Files:
    def __init__(
        self, database: Database, blobs: BlobStore, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._database = database
        self._blobs = blobs
        self._clock = clock

    @reads_the_callers_stream
    async def create(
        self,
        owner: str,
        *,
        filename: str,
        purpose: str,
        content: AsyncIterable[bytes],
        max_bytes: int,
        expires_at: int | None = None,
    ) -> FileRecord:
        """Stream `content` into the store, then record the file: it is listed only once its
        content is whole. Over `max_bytes`: `PayloadTooLargeError`, and nothing is kept."""
        stored = await self.write_content(content, max_bytes=max_bytes)
        return await self.record(
            owner, stored, filename=filename, purpose=purpose, expires_at=expires_at
        )

    @reads_the_callers_stream
    async def write_content(
        self, content: AsyncIterable[bytes], *, max_bytes: int
    ) -> StoredContent:
        """The first half of `create`: the content, streamed into the store under a new file
        id, not yet a file (no row: never listed nor read). For an upload whose name and
        purpose are known only once its stream has passed (a form field after the file)."""
        file_id = new_file_id()
        size = await self._blobs.write(file_id, content, max_bytes=max_bytes)
        return StoredContent(file_id, size)

    async def record(
        self,
        owner: str,
        content: StoredContent,
        *,
        filename: str,
        purpose: str,
        expires_at: int | None = None,
    ) -> FileRecord:
        """The second half of `create`: the file's row for content already stored; when the
        row cannot be written, the content is discarded."""
        row = self.row(owner, content, filename=filename, purpose=purpose, expires_at=expires_at)
        try:
            async with self._database.session("files") as session:
                session.add(row)
        except BaseException:
            with anyio.CancelScope(shield=True):  # also when the upload was cancelled
                await self.discard(content)
            raise
        return FileRecord.of(row)

    def row(
        self,
        owner: str,
        content: StoredContent,
        *,
        filename: str,
        purpose: str,
        expires_at: int | None = None,
    ) -> FileRow:
        """The row that makes stored content a file, for a caller that writes it in a
        transaction of its own (a batch's output files, with the batch's last update)."""
        return FileRow(
            id=content.file_id,
            owner=owner,
            filename=filename,
            purpose=purpose,
            size=content.size,
            created_at=int(self._clock()),
            expires_at=expires_at,
        )

    async def discard(self, content: StoredContent) -> None:
        """Drop content that will not become a file (a refused upload, a lost race)."""
        await self._discard_content(content.file_id)

    async def list(
        self,
        owner: str,
        *,
        after: str | None = None,
        limit: int = LIST_LIMIT,
        order: Order = "desc",
        purpose: str | None = None,
    ) -> Page[FileRecord]:
        """The owner's files, newest first by default; `after` is the id of the last file of the
        previous page (unknown: an empty page)."""
        statement = select(FileRow).where(FileRow.owner == owner)
        if purpose is not None:
            statement = statement.where(FileRow.purpose == purpose)
        cursor = None
        if after is not None:
            cursor = select(FileRow.seq).where(FileRow.owner == owner, FileRow.id == after)
        statement = keyset(statement, FileRow.seq, after_seq=cursor, order=order, limit=limit)
        async with self._database.session("files") as session:
            rows = (await session.scalars(statement)).all()
        return page([FileRecord.of(row) for row in rows], limit)

    async def get(self, owner: str, file_id: str) -> FileRecord | None:
        async with self._database.session("files") as session:
            row = await session.scalar(
                select(FileRow).where(FileRow.owner == owner, FileRow.id == file_id)
            )
        return None if row is None else FileRecord.of(row)

    async def delete(self, owner: str, file_id: str) -> bool:
        """Delete the owner's file; False when the owner has no such file."""
        async with self._database.session("files") as session:
            deleted = await session.execute(
                delete(FileRow).where(FileRow.owner == owner, FileRow.id == file_id)
            )
        if not deleted.rowcount:  # type: ignore[attr-defined]  # a CursorResult's
            return False
        await self._discard_content(file_id)
        return True

    async def open_content(self, owner: str, file_id: str) -> FileContent | None:
        """The owner's file and its content as a stream; None when the owner has no such file."""
        record = await self.get(owner, file_id)
        if record is None:
            return None
        return FileContent(record, _whole(self._blobs.read(file_id), record))

    async def _discard_content(self, file_id: str) -> None:
        """Delete the content of a file that has (or will have) no row: content without a row is
        never read, so when the store cannot delete it now, it stays and the caller goes on."""
        try:
            await self._blobs.delete(file_id)
        except StoreUnavailableError:
            logger.warning("could not delete the content of file %s", file_id)


async def _whole(chunks: AsyncIterator[bytes], record: FileRecord) -> AsyncIterator[bytes]:
    """`chunks`, failing (instead of ending early) when they fall short of the file's size: the
    content was deleted while it was read, so the response must not look complete."""
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        yield chunk
    if size != record.size:
        raise StoreUnavailableError(f"The content of file {record.id} is no longer whole.")
