"""The `app` level: the whole ASGI app in process, streams driven the way uvicorn drives them
(the request body once, then `receive` waits until the response is complete), no sockets."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from asgi_lifespan import LifespanManager
from starlette.types import ASGIApp, Message

from loadtests.stream_cost.engine import TOOLS, required_pieces, stepping_engine, text_pieces
from service.app import create_app
from service.config import Settings

MODEL = "fake-model"
_MESSAGES = [{"role": "user", "content": "hi"}]


@dataclass(frozen=True, slots=True)
class AppCase:
    name: str
    path: str
    body: dict[str, Any]
    pieces: Callable[[int], list[str]]


CASES = {
    case.name: case
    for case in (
        AppCase(
            "chat",
            "/v1/chat/completions",
            {"model": MODEL, "messages": _MESSAGES, "stream": True},
            text_pieces,
        ),
        AppCase(
            "chat-required",
            "/v1/chat/completions",
            {
                "model": MODEL,
                "messages": _MESSAGES,
                "stream": True,
                "tools": TOOLS,
                "tool_choice": "required",
            },
            required_pieces,
        ),
        AppCase(
            "completions",
            "/v1/completions",
            {"model": MODEL, "prompt": "hi", "stream": True},
            text_pieces,
        ),
        AppCase("generate", "/v1/generate", {"prompt": "hi", "stream": True}, text_pieces),
    )
}


@dataclass(slots=True)
class Exchange:
    status: int = 0
    body: bytearray | None = None


async def _request(app: ASGIApp, path: str, body: bytes) -> Exchange:
    """One POST, as uvicorn would hand it to the app (with a Content-Length)."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    exchange = Exchange(body=bytearray())
    complete = asyncio.Event()
    sent_body = False

    async def receive() -> Message:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        await complete.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            exchange.status = message["status"]
        elif message["type"] == "http.response.body":
            assert exchange.body is not None
            exchange.body += message.get("body", b"")
            if not message.get("more_body", False):
                complete.set()

    await app(scope, receive, send)
    return exchange


@dataclass(slots=True)
class Round:
    cpu_seconds: float
    events: int
    digest: str


async def measure(
    case: AppCase,
    *,
    tokens: int,
    requests: int,
    concurrency: int,
    mask: Callable[[str], str],
) -> Round:
    """`requests` streams, `concurrency` at a time, through a fresh app."""
    engine = stepping_engine(case.pieces(tokens), yield_each_step=True)
    settings = Settings(
        model=MODEL,
        default_max_tokens=tokens * 4,
        max_inflight_sequences=concurrency,
        max_queued_sequences=requests,
        sse_keepalive_seconds=600,
        embedding_model=None,
    )
    app = create_app(settings, engine_factory=lambda: engine)
    body = json.dumps(case.body).encode()
    async with LifespanManager(app, startup_timeout=60) as manager:
        await app.state.gateway.engine_state.wait_started()
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(requests):
            queue.put_nowait(i)
        bodies: list[bytes] = [b""] * requests

        async def user() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                exchange = await _request(manager.app, case.path, body)
                assert exchange.status == 200, exchange.body
                bodies[i] = bytes(exchange.body or b"")

        began = time.process_time()
        await asyncio.gather(*(user() for _ in range(concurrency)))
        cpu = time.process_time() - began
    digest = hashlib.sha256()
    events = 0
    for text in bodies:
        events += text.count(b"data: ")
        digest.update(mask(text.decode()).encode())
    return Round(cpu, events, digest.hexdigest()[:16])
