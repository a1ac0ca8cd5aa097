"""The files repository on each backend: records, lists with `after`/`limit`/`order`/`purpose`,
delete, content, and the ownership rule (another owner's file does not exist for it)."""

from __future__ import annotations

import pytest

from service.store import ANONYMOUS_OWNER, FileRecord, Store
from tests.unit.store.helpers import chunks_of, collect, stored_content_pieces

OWNER = "0123456789ab"  # an API key's public id
OTHER = "ba9876543210"
LIMIT = 1 << 20


async def upload(
    store: Store, owner: str, content: bytes = b"{}\n", *, purpose: str = "batch", name: str = "in"
) -> FileRecord:
    return await store.files.create(
        owner,
        filename=f"{name}.jsonl",
        purpose=purpose,
        content=chunks_of(content, 4),
        max_bytes=LIMIT,
    )


async def test_a_file_is_recorded_with_its_size_and_read_back(store: Store) -> None:
    content = b'{"custom_id": "a"}\n{"custom_id": "b"}\n'
    record = await upload(store, OWNER, content)
    assert record.id.startswith("file-")
    assert (record.owner, record.filename, record.purpose) == (OWNER, "in.jsonl", "batch")
    assert record.size == len(content)
    assert record.created_at > 0 and record.expires_at is None
    assert await store.files.get(OWNER, record.id) == record
    opened = await store.files.open_content(OWNER, record.id)
    assert opened is not None and opened.record == record
    assert await collect(opened.chunks) == content


async def test_an_empty_file_is_a_file(store: Store) -> None:
    record = await upload(store, OWNER, b"")
    opened = await store.files.open_content(OWNER, record.id)
    assert record.size == 0 and opened is not None
    assert await collect(opened.chunks) == b""


async def test_lists_page_with_after_limit_and_order(store: Store) -> None:
    made = [await upload(store, OWNER, name=str(i)) for i in range(5)]
    ids = [record.id for record in made]

    first = await store.files.list(OWNER, limit=2)  # newest first by default
    assert [f.id for f in first.items] == ids[:-3:-1] and first.has_more
    rest = await store.files.list(OWNER, limit=10, after=first.items[-1].id)
    assert [f.id for f in rest.items] == ids[2::-1] and not rest.has_more

    ascending = await store.files.list(OWNER, order="asc", limit=3, after=ids[0])
    assert [f.id for f in ascending.items] == ids[1:4] and ascending.has_more
    last = await store.files.list(OWNER, order="asc", limit=1, after=ids[3])
    assert [f.id for f in last.items] == ids[4:] and not last.has_more


async def test_lists_filter_by_purpose(store: Store) -> None:
    batch = await upload(store, OWNER, purpose="batch")
    output = await upload(store, OWNER, purpose="batch_output")
    assert [f.id for f in (await store.files.list(OWNER, purpose="batch")).items] == [batch.id]
    listed = await store.files.list(OWNER, purpose="batch_output")
    assert [f.id for f in listed.items] == [output.id]
    assert (await store.files.list(OWNER, purpose="vision")).items == []


async def test_an_unknown_cursor_gives_an_empty_page(store: Store) -> None:
    await upload(store, OWNER)
    listed = await store.files.list(OWNER, after="file-000000000000000000000000")
    assert listed.items == [] and not listed.has_more


async def test_delete_removes_the_record_and_its_content(store: Store) -> None:
    kept = await upload(store, OWNER, b"kept")
    gone = await upload(store, OWNER, b"gone")
    assert await store.files.delete(OWNER, gone.id)
    assert await store.files.get(OWNER, gone.id) is None
    assert await store.files.open_content(OWNER, gone.id) is None
    assert not await store.files.delete(OWNER, gone.id)  # a second time: no such file
    assert [f.id for f in (await store.files.list(OWNER)).items] == [kept.id]
    assert await stored_content_pieces(store) == 1


async def test_another_owner_sees_nothing_of_a_file(store: Store) -> None:
    mine = await upload(store, OWNER, b"mine")
    theirs = await upload(store, OTHER, b"theirs")

    assert await store.files.get(OTHER, mine.id) is None
    assert await store.files.open_content(OTHER, mine.id) is None
    assert [f.id for f in (await store.files.list(OTHER)).items] == [theirs.id]
    # Another owner's id as a cursor is unknown to this owner, as any unknown id.
    assert (await store.files.list(OTHER, after=mine.id)).items == []
    assert not await store.files.delete(OTHER, mine.id)

    opened = await store.files.open_content(OWNER, mine.id)  # still there, whole
    assert opened is not None and await collect(opened.chunks) == b"mine"


@pytest.mark.parametrize("owner", [ANONYMOUS_OWNER, OWNER], ids=["anonymous", "key"])
async def test_the_anonymous_owner_is_an_owner_like_any_key(store: Store, owner: str) -> None:
    other = OWNER if owner == ANONYMOUS_OWNER else ANONYMOUS_OWNER
    record = await upload(store, owner)
    assert await store.files.get(owner, record.id) == record
    assert await store.files.get(other, record.id) is None
