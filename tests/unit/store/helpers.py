"""Helpers of the store's tests."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

from sqlalchemy import func, select

from service.store import Store
from service.store.blobs import DirectoryBlobs
from service.store.tables import FileChunkRow


async def stored_content_pieces(store: Store) -> int:
    """How many pieces of file content the backend holds (files on disk, or chunk rows)."""
    if isinstance(store.blobs, DirectoryBlobs):
        return sum(1 for _ in store.blobs.root.iterdir())
    async with store.database.session() as session:
        count = await session.scalar(select(func.count()).select_from(FileChunkRow))
    return int(count or 0)


async def chunks_of(content: bytes, size: int) -> AsyncIterator[bytes]:
    """`content` as an upload arrives: in pieces of `size` bytes."""
    for start in range(0, len(content), size):
        yield content[start : start + size]


async def collect(chunks: AsyncIterable[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])
