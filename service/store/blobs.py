"""File contents (blobs), kept in the store's own place: files in the data directory beside
SQLite (`DirectoryBlobs`), rows of chunks in PostgreSQL (`DatabaseBlobs`), so replicas on one
database need no shared volume.

A write is streamed: each piece is stored as it arrives (an upload is never held whole in
memory), and the size limit is checked as the stream passes it (`limited`). A write that fails
or is cancelled leaves nothing behind. A read is streamed out in pieces of `CHUNK_BYTES`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Protocol

import anyio
from sqlalchemy import delete, select

from service.errors import PayloadTooLargeError, StoreUnavailableError
from service.store.database import Database, unavailable_as_error
from service.store.operations import (
    reads_the_callers_stream,
    runs_to_completion,
    store_operations,
)
from service.store.tables import FileChunkRow

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20  # the piece a blob is stored and read in
_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")  # keys are the store's own ids: never a path


class BlobStore(Protocol):
    async def write(self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int) -> int:
        """Store `chunks` under `key` as they come; the number of bytes. More than
        `max_bytes` raises `PayloadTooLargeError` once the stream passes it."""
        ...

    def read(self, key: str) -> AsyncIterator[bytes]:
        """The content under `key`, in pieces of at most `CHUNK_BYTES`."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the content under `key` (none: nothing happens)."""
        ...


async def limited(chunks: AsyncIterable[bytes], max_bytes: int) -> AsyncIterator[bytes]:
    """`chunks`, until their total passes `max_bytes`: then `PayloadTooLargeError`."""
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > max_bytes:
            raise PayloadTooLargeError(
                f"The file is larger than the limit of {max_bytes} bytes.", param="file"
            )
        yield chunk


async def rechunked(chunks: AsyncIterable[bytes], size: int) -> AsyncIterator[bytes]:
    """`chunks` regrouped into pieces of `size` bytes (the last one shorter)."""
    buffer = bytearray()
    async for chunk in chunks:
        buffer += chunk
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


def _checked(key: str) -> str:
    if not _KEY.fullmatch(key):
        raise ValueError(f"not a blob key: {key!r}")
    return key


class DirectoryBlobs:
    """One file per blob in a folder: written to `<key>.part`, synced, then renamed, so a blob
    is whole or absent."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> anyio.Path:
        return anyio.Path(self.root / _checked(key))

    async def write(self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int) -> int:
        final = self._path(key)
        part = final.with_name(final.name + ".part")
        size = 0
        try:
            with unavailable_as_error("file contents"):
                out = await anyio.open_file(part, "wb")
            async with out:
                async for chunk in limited(chunks, max_bytes):
                    with unavailable_as_error("file contents"):
                        await out.write(chunk)
                    size += len(chunk)
                with unavailable_as_error("file contents"):
                    await out.flush()
                    await anyio.to_thread.run_sync(os.fsync, out.wrapped.fileno())
            with unavailable_as_error("file contents"):
                await part.rename(final)
        except BaseException:
            with anyio.CancelScope(shield=True):  # also when the upload was cancelled
                await part.unlink(missing_ok=True)
            raise
        return size

    async def read(self, key: str) -> AsyncIterator[bytes]:
        with unavailable_as_error("file contents"):
            source = await anyio.open_file(self._path(key), "rb")
        async with source:
            while True:
                with unavailable_as_error("file contents"):
                    chunk = await source.read(CHUNK_BYTES)
                if not chunk:
                    return
                yield chunk

    async def delete(self, key: str) -> None:
        with unavailable_as_error("file contents"):
            await self._path(key).unlink(missing_ok=True)


@store_operations
class DatabaseBlobs:
    """Rows of `CHUNK_BYTES` in `file_chunks`, each written in a short transaction of its own
    (a slow upload holds no connection between its pieces); a failed write deletes its rows."""

    def __init__(self, database: Database) -> None:
        self.database = database

    @reads_the_callers_stream
    async def write(self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int) -> int:
        size = 0
        try:
            pieces = rechunked(limited(chunks, max_bytes), CHUNK_BYTES)
            async for seq, piece in _numbered(pieces):
                await self._put(_checked(key), seq, piece)
                size += len(piece)
        except BaseException:
            with anyio.CancelScope(shield=True):  # also when the upload was cancelled
                await self._discard(key)
            raise
        return size

    @runs_to_completion
    async def _put(self, key: str, seq: int, piece: bytes) -> None:
        async with self.database.session("file contents") as session:
            session.add(FileChunkRow(file_id=key, seq=seq, data=piece))

    async def _discard(self, key: str) -> None:
        """Delete a failed write's rows; when the database is what failed, they stay (rows
        without a file are never read) and the error that counts is the write's."""
        try:
            await self.delete(key)
        except StoreUnavailableError:
            logger.warning("could not delete the chunks of a failed write (%s)", key)

    async def read(self, key: str) -> AsyncIterator[bytes]:
        seq = 0
        while True:
            async with self.database.session("file contents") as session:
                piece = await session.scalar(
                    select(FileChunkRow.data).where(
                        FileChunkRow.file_id == key, FileChunkRow.seq == seq
                    )
                )
            if piece is None:
                return
            yield piece
            seq += 1

    async def delete(self, key: str) -> None:
        async with self.database.session("file contents") as session:
            await session.execute(delete(FileChunkRow).where(FileChunkRow.file_id == key))


async def _numbered(pieces: AsyncIterable[bytes]) -> AsyncIterator[tuple[int, bytes]]:
    seq = 0
    async for piece in pieces:
        yield seq, piece
        seq += 1
