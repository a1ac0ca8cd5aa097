"""The Files API on the app in process, through the official openai SDK where it can be: upload,
list (after, limit, order, purpose), retrieve, content, delete; uploads streamed into the store
as they arrive, their own size limit instead of max_body_bytes, one key's files unseen by
another."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import openai
import pytest

from service.engine.fake import FakeEngine
from tests.api.batches.helpers import batch_app, sdk
from tests.api.helpers import KEY, OTHER_KEY, assert_openai_error, serve, until

BOUNDARY = "test-boundary-5f2b"
FORM = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}


def field(name: str, value: str) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
    ).encode()


def file_head(filename: str = "data.jsonl") -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


END = f"\r\n--{BOUNDARY}--\r\n".encode()


def stored_pieces(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "files").iterdir())


async def test_the_openai_sdk_uploads_lists_reads_and_deletes(
    fake_engine: FakeEngine, tmp_path: Path
) -> None:
    async with serve(batch_app(fake_engine, tmp_path)) as http:
        client = sdk(http)
        content = b'{"a": 1}\n' * 1000
        made = await client.files.create(file=("in.jsonl", content), purpose="batch")
        assert made.id.startswith("file-") and made.object == "file"
        assert (made.bytes, made.filename, made.purpose) == (len(content), "in.jsonl", "batch")
        assert made.status == "processed"
        assert await client.files.retrieve(made.id) == made
        assert (await client.files.content(made.id)).content == content
        other = await client.files.create(file=("notes.txt", b"x"), purpose="user_data")

        assert [f.id for f in (await client.files.list()).data] == [other.id, made.id]
        assert [f.id for f in (await client.files.list(order="asc")).data] == [made.id, other.id]
        assert [f.id for f in (await client.files.list(purpose="batch")).data] == [made.id]
        first = await client.files.list(limit=1)
        assert [f.id for f in first.data] == [other.id] and first.has_more
        rest = await client.files.list(limit=1, after=other.id)
        assert [f.id for f in rest.data] == [made.id] and not rest.has_more
        assert [f.id async for f in client.files.list(limit=1)] == [other.id, made.id]  # pages

        deleted = await client.files.delete(made.id)
        assert deleted.deleted and deleted.id == made.id
        with pytest.raises(openai.NotFoundError):
            await client.files.retrieve(made.id)
        with pytest.raises(openai.NotFoundError):
            await client.files.content(made.id)


async def test_purpose_may_come_after_the_file(fake_engine: FakeEngine, tmp_path: Path) -> None:
    body = file_head("late.jsonl") + b"data" + b"\r\n" + field("purpose", "batch") + END[2:]
    async with serve(batch_app(fake_engine, tmp_path)) as http:
        response = await http.post("/v1/files", content=body, headers=FORM)
        assert response.status_code == 200, response.text
        assert response.json()["purpose"] == "batch" and response.json()["bytes"] == 4


@pytest.mark.parametrize(
    ("body", "headers", "status", "param"),
    [
        pytest.param(b'{"purpose": "batch"}', {}, 400, None, id="not-multipart"),
        pytest.param(field("purpose", "batch") + END[2:], FORM, 400, "file", id="no-file"),
        pytest.param(file_head() + b"x" + END, FORM, 400, "purpose", id="no-purpose"),
        pytest.param(
            field("purpose", "batch_output") + file_head() + b"x" + END,
            FORM,
            400,
            "purpose",
            id="output-purpose",
        ),
        pytest.param(
            file_head() + b"x" + b"\r\n" + field("purpose", "nope") + END[2:],
            FORM,
            400,
            "purpose",
            id="bad-purpose-after-the-file",
        ),
        pytest.param(
            field("purpose", "batch") + file_head() + b"x\r\n" + file_head() + b"y" + END,
            FORM,
            400,
            "file",
            id="two-files",
        ),
        pytest.param(b"--nope\r\ngarbage", FORM, 400, None, id="garbage"),
        pytest.param(
            field("note", "n" * 70_000) + file_head() + b"x" + END,
            FORM,
            413,
            "note",
            id="long-field",
        ),
    ],
)
async def test_a_bad_upload_is_a_400_and_leaves_nothing(
    fake_engine: FakeEngine,
    tmp_path: Path,
    body: bytes,
    headers: dict[str, str],
    status: int,
    param: str | None,
) -> None:
    async with serve(batch_app(fake_engine, tmp_path)) as http:
        response = await http.post("/v1/files", content=body, headers=headers)
        assert_openai_error(response, status, param=param)
        assert (await http.get("/v1/files")).json()["data"] == []
    assert stored_pieces(tmp_path) == []


async def test_uploads_are_exempt_from_the_body_limit_and_have_their_own(
    fake_engine: FakeEngine, tmp_path: Path
) -> None:
    app = batch_app(fake_engine, tmp_path, max_body_bytes=1024, max_file_bytes=64 * 1024)
    async with serve(app) as http:
        client = sdk(http)
        made = await client.files.create(file=("big.jsonl", b"x" * 32 * 1024), purpose="batch")
        assert made.bytes == 32 * 1024  # over max_body_bytes: fine here
        big_chat = {"model": "m", "messages": [{"role": "user", "content": "x" * 2048}]}
        assert_openai_error(await http.post("/v1/chat/completions", json=big_chat), 413)

        declared = field("purpose", "batch") + file_head() + b"x" * (2 << 20) + END
        response = await http.post("/v1/files", content=declared, headers=FORM)
        assert_openai_error(response, 413, code="payload_too_large")  # by its Content-Length

        async def streamed() -> AsyncIterator[bytes]:  # chunked: no Content-Length
            yield field("purpose", "batch") + file_head()
            for _ in range(20):
                yield b"y" * 8192
            yield END

        response = await http.post("/v1/files", content=streamed(), headers=FORM)
        assert_openai_error(response, 413, param="file")  # as the file passed the limit
        assert [f.id for f in (await client.files.list()).data] == [made.id]
    assert stored_pieces(tmp_path) == [tmp_path / "files" / made.id]


async def test_an_upload_is_stored_while_it_streams_in(
    fake_engine: FakeEngine, tmp_path: Path
) -> None:
    """The first pieces reach the store before the rest of the body has been sent: the upload
    is not held (nor spooled) whole before it is stored."""
    half = b"z" * 300_000

    async def body() -> AsyncIterator[bytes]:
        yield field("purpose", "batch") + file_head() + half
        await until(
            lambda: any(p.stat().st_size >= len(half) for p in stored_pieces(tmp_path)),
            "the first half is in the store before the second is sent",
        )
        yield half + END

    async with serve(batch_app(fake_engine, tmp_path)) as http:
        response = await http.post("/v1/files", content=body(), headers=FORM)
        assert response.status_code == 200, response.text
        assert response.json()["bytes"] == 2 * len(half)


async def test_a_file_is_its_key_s_only(fake_engine: FakeEngine, tmp_path: Path) -> None:
    app = batch_app(fake_engine, tmp_path, api_keys=[KEY, OTHER_KEY])
    async with serve(app) as http:
        mine, theirs = sdk(http, KEY), sdk(http, OTHER_KEY)
        made = await mine.files.create(file=("in.jsonl", b"{}"), purpose="batch")
        for call in (
            theirs.files.retrieve(made.id),
            theirs.files.content(made.id),
            theirs.files.delete(made.id),
        ):
            with pytest.raises(openai.NotFoundError):
                await call
        assert (await theirs.files.list()).data == []
        assert [f.id for f in (await mine.files.list()).data] == [made.id]  # not deleted


async def test_a_client_that_leaves_mid_upload_leaves_nothing(
    fake_engine: FakeEngine, tmp_path: Path
) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield field("purpose", "batch") + file_head() + b"a" * 1000
        raise httpx.ReadError("the client is gone")

    async with serve(batch_app(fake_engine, tmp_path)) as http:
        with pytest.raises(httpx.ReadError):
            await http.post("/v1/files", content=body(), headers=FORM)
        assert (await http.get("/v1/files")).json()["data"] == []
    assert stored_pieces(tmp_path) == []
