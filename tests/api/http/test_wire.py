"""Wire-level behaviour that needs a real HTTP server (httpx's ASGI transport buffers bodies)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from service.app import create_app
from service.config import Settings
from service.engine.fake import FakeEngine
from tests.conftest import FAKE_MODEL
from tests.servers import serve_in_thread


@pytest.fixture
def gated_engine() -> FakeEngine:
    engine = FakeEngine()
    engine.gate = asyncio.Event()
    return engine


@pytest.fixture
def wire_url(gated_engine: FakeEngine) -> Iterator[str]:
    settings = Settings(model=FAKE_MODEL, sse_keepalive_seconds=0.05)
    # The warm-up request must not wait on the gate: open it, then close it for the test.
    gate = gated_engine.gate
    gated_engine.gate = None
    app = create_app(settings, engine_factory=lambda: gated_engine)
    with serve_in_thread(app, startup_timeout=30) as url:
        gated_engine.gate = gate
        yield url


def test_stream_sends_keepalive_while_waiting(wire_url: str, gated_engine: FakeEngine) -> None:
    body = {"model": FAKE_MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    lines: list[str] = []
    with httpx.stream("POST", f"{wire_url}/v1/chat/completions", json=body, timeout=30) as r:
        assert r.headers["x-accel-buffering"] == "no"
        for line in r.iter_lines():
            lines.append(line)
            if line.startswith(":"):
                # A keep-alive comment came while the engine held the request: release it.
                gated_engine.open_gate()
    data = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    assert any(line.startswith(":") for line in lines)
    assert data[-1] == "[DONE]"
    pings_before_content = lines.index(next(x for x in lines if '"content":"The' in x))
    assert any(x.startswith(":") for x in lines[:pings_before_content])
