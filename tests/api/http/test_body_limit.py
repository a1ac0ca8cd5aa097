"""The request body size limit (413): by Content-Length, and on a chunked body as it arrives."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from service.engine.fake import FakeEngine
from tests.api.helpers import (
    CHAT,
    access_records,
    assert_openai_error,
    chat_body,
    engine_calls,
    fields_of,
    make_app,
    serve,
)


async def test_a_content_length_over_the_limit_is_a_413_before_reading(
    fake_engine: FakeEngine, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(fake_engine, max_body_bytes=1024)
    caplog.set_level(logging.INFO)
    async with serve(app) as http:
        response = await http.post(CHAT, json=chat_body("x" * 2000))
        assert_openai_error(response, 413, code="payload_too_large")
        assert response.headers["x-request-id"]
        assert (await http.post(CHAT, json=chat_body("x" * 500))).status_code == 200
    assert engine_calls(fake_engine) == 1
    record = access_records(caplog)[0]
    assert (fields_of(record)["status"], fields_of(record)["outcome"]) == (413, "client_error")


async def test_a_chunked_body_is_cut_off_as_soon_as_it_passes_the_limit(
    fake_engine: FakeEngine,
) -> None:
    app = make_app(fake_engine, max_body_bytes=1024)
    pulled: list[int] = []

    async def chunks(total: int) -> AsyncIterator[bytes]:
        body = httpx.Request("POST", "/", json=chat_body("x" * total)).content
        for i in range(0, len(body), 256):
            pulled.append(i)
            yield body[i : i + 256]

    async with serve(app) as http:
        response = await http.post(
            CHAT, content=chunks(100_000), headers={"content-type": "application/json"}
        )
        assert_openai_error(response, 413, code="payload_too_large")
        assert len(pulled) == 5  # 1280 bytes: the 5th chunk passed 1024, and nothing more was read
        assert engine_calls(fake_engine) == 0
        pulled.clear()
        response = await http.post(
            CHAT, content=chunks(100), headers={"content-type": "application/json"}
        )
        assert response.status_code == 200, response.text
        assert "content-length" not in response.request.headers
