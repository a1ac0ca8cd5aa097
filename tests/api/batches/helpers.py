"""Helpers of the Files and Batch API tests: apps on a store of their own, batch input files,
the openai SDK on the app in process, and waiting for a batch to end."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

import httpx
import openai
from fastapi import FastAPI
from openai.types import Batch

from service.app import create_app
from service.batches.drainer import Drainer
from service.config import Settings
from service.engine.fake import FakeEngine
from service.http.deps import GatewayState, gateway_state
from tests.api.helpers import serve
from tests.conftest import FAKE_MODEL, HANG_GUARD

CHAT: Final = "/v1/chat/completions"  # Final: a Literal where the SDK asks for one
FINAL = ("completed", "failed", "expired", "cancelled")


def batch_app(engine: FakeEngine, data_dir: Path, **settings: Any) -> FastAPI:
    """An app on `engine` with a store of its own (batches must not reach other tests' apps,
    whose drainers would run them)."""
    base: dict[str, Any] = {"model": FAKE_MODEL, "default_max_tokens": 8, "data_dir": data_dir}
    return create_app(Settings(**{**base, **settings}), engine_factory=lambda: engine)


def sdk(http: httpx.AsyncClient, key: str = "unused") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url="http://test/v1",
        api_key=key,
        http_client=http,  # type: ignore[arg-type]  # SDK types httpx2 only; accepts httpx too
        max_retries=0,
    )


def line(custom_id: str, body: dict[str, Any], url: str = CHAT) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


def chat_line(custom_id: str, content: str = "hi", **fields: Any) -> dict[str, Any]:
    body = {"model": FAKE_MODEL, "messages": [{"role": "user", "content": content}], **fields}
    return line(custom_id, body)


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(item) + "\n" for item in lines).encode()


async def submit(
    client: openai.AsyncOpenAI, lines: list[dict[str, Any]], endpoint: str = CHAT
) -> Batch:
    uploaded = await client.files.create(file=("input.jsonl", jsonl(lines)), purpose="batch")
    return await client.batches.create(
        input_file_id=uploaded.id,
        endpoint=endpoint,  # type: ignore[arg-type]
        completion_window="24h",
    )


async def reaches(
    client: openai.AsyncOpenAI, batch_id: str, done: Callable[[Batch], bool], what: str
) -> Batch:
    """The batch once `done(batch)` holds (its lines run in the background; bounded like
    `until`, not a timing assertion)."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + HANG_GUARD
    while True:
        batch = await client.batches.retrieve(batch_id)
        if done(batch):
            return batch
        if loop.time() > give_up:
            raise AssertionError(f"never happened: {what} (last: {batch})")
        await asyncio.sleep(0.01)


async def finished(client: openai.AsyncOpenAI, batch_id: str) -> Batch:
    """The batch once it has ended."""
    return await reaches(client, batch_id, lambda b: b.status in FINAL, "the batch ends")


async def results(client: openai.AsyncOpenAI, file_id: str | None) -> dict[str, dict[str, Any]]:
    """An output or error file's lines by custom_id (none: no file)."""
    if file_id is None:
        return {}
    content = await client.files.content(file_id)
    lines = [json.loads(text) for text in content.text.splitlines() if text]
    by_id = {item["custom_id"]: item for item in lines}
    assert len(by_id) == len(lines), "a custom_id twice"
    return by_id


def gateway(app: FastAPI) -> GatewayState:
    return gateway_state(app)


@asynccontextmanager
async def serve_with_drainer(
    app: FastAPI, **drainer: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Drainer]]:
    """An app started with `batch_drain` off and a drainer of the test's, stepped by hand."""
    async with serve(app) as http:
        yield http, Drainer(gateway(app), **drainer)
