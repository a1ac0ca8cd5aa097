"""File contents on each backend: streamed in and out in pieces (never held whole), the size
limit checked as the stream passes it, nothing left behind by a write that fails."""

from __future__ import annotations

import asyncio
import hashlib
import random
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from service.errors import PayloadTooLargeError, StoreUnavailableError
from service.store import Store
from service.store.blobs import CHUNK_BYTES
from tests.unit.store.helpers import collect, stored_content_pieces

OWNER = "0123456789ab"
UPLOAD_PIECE = 64 * 1024  # about what an ASGI server hands over per body message
CONTENT_BYTES = 24 * CHUNK_BYTES + 12345  # many pieces, and a short last one


@dataclass
class Upload:
    """A content made as it is sent, so the test holds no more of it than the store does."""

    total: int
    sent: int = 0
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)

    async def chunks(self) -> AsyncIterator[bytes]:
        rng = random.Random(self.total)
        while self.sent < self.total:
            piece = rng.randbytes(min(UPLOAD_PIECE, self.total - self.sent))
            self.sent += len(piece)
            self.digest.update(piece)
            yield piece


async def upload(store: Store, source: Upload, max_bytes: int) -> str:
    record = await store.files.create(
        OWNER, filename="big.jsonl", purpose="batch", content=source.chunks(), max_bytes=max_bytes
    )
    return record.id


async def test_a_multi_mib_content_streams_in_and_out_in_pieces(store: Store) -> None:
    source = Upload(CONTENT_BYTES)
    tracemalloc.start()
    try:
        file_id = await upload(store, source, max_bytes=CONTENT_BYTES)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Held whole, the content alone would peak past CONTENT_BYTES; streamed, a few copies of
    # one piece (the regrouping buffer, the piece, the driver's message: about 4 on PostgreSQL).
    assert peak < 8 * CHUNK_BYTES < CONTENT_BYTES / 3, f"the write held {peak} bytes at once"

    opened = await store.files.open_content(OWNER, file_id)
    assert opened is not None and opened.record.size == CONTENT_BYTES
    read = hashlib.sha256()
    sizes = []
    async for chunk in opened.chunks:
        sizes.append(len(chunk))
        read.update(chunk)
    assert read.hexdigest() == source.digest.hexdigest()
    assert max(sizes) <= CHUNK_BYTES and len(sizes) >= CONTENT_BYTES // CHUNK_BYTES


@pytest.mark.parametrize(
    "max_bytes",
    [pytest.param(3 * CHUNK_BYTES + 1, id="mid-piece"), pytest.param(UPLOAD_PIECE, id="first")],
)
async def test_the_size_limit_stops_the_stream_as_it_passes(store: Store, max_bytes: int) -> None:
    source = Upload(8 * CHUNK_BYTES)
    with pytest.raises(PayloadTooLargeError) as raised:
        await upload(store, source, max_bytes=max_bytes)
    assert raised.value.status_code == 413 and raised.value.param == "file"
    assert str(max_bytes) in raised.value.message
    # Read no further than the piece that passed the limit, and kept nothing of it.
    assert source.sent <= max_bytes + UPLOAD_PIECE
    assert (await store.files.list(OWNER)).items == []
    assert await stored_content_pieces(store) == 0


async def test_a_content_exactly_at_the_limit_is_kept(store: Store) -> None:
    source = Upload(2 * CHUNK_BYTES)
    file_id = await upload(store, source, max_bytes=2 * CHUNK_BYTES)
    opened = await store.files.open_content(OWNER, file_id)
    assert opened is not None
    assert hashlib.sha256(await collect(opened.chunks)).digest() == source.digest.digest()


async def test_an_upload_that_breaks_off_leaves_nothing(store: Store) -> None:
    """The client leaves mid-upload: the source raises, the pieces stored so far go."""

    async def broken() -> AsyncIterator[bytes]:
        async for piece in Upload(3 * CHUNK_BYTES).chunks():
            yield piece
        raise ConnectionResetError("the client left")

    with pytest.raises(ConnectionResetError):
        await store.files.create(
            OWNER, filename="x", purpose="batch", content=broken(), max_bytes=1 << 30
        )
    assert (await store.files.list(OWNER)).items == []
    assert await stored_content_pieces(store) == 0


async def test_a_cancelled_upload_leaves_nothing(store: Store) -> None:
    started = asyncio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        async for piece in Upload(2 * CHUNK_BYTES).chunks():
            yield piece
        started.set()
        await asyncio.Event().wait()  # the client stops sending
        yield b""

    task = asyncio.create_task(
        store.files.create(
            OWNER, filename="x", purpose="batch", content=stalls(), max_bytes=1 << 30
        )
    )
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await stored_content_pieces(store) == 0


async def test_a_content_deleted_while_read_does_not_end_as_if_whole(store: Store) -> None:
    file_id = await upload(store, Upload(3 * CHUNK_BYTES), max_bytes=1 << 30)
    opened = await store.files.open_content(OWNER, file_id)
    assert opened is not None
    first = await anext(opened.chunks)
    assert len(first) == CHUNK_BYTES
    await store.files.delete(OWNER, file_id)
    if store.database.sqlite_file is not None:
        # A file being read stays readable after it is unlinked: the reader gets it whole.
        assert len(await collect(opened.chunks)) == 2 * CHUNK_BYTES
        return
    with pytest.raises(StoreUnavailableError, match="no longer whole"):
        await collect(opened.chunks)
